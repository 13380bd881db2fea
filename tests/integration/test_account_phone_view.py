"""What the account page shows of the caller's phone (AccountService.phone): masked, whether verified, whether a
texted code is still waiting; on SQLite and PostgreSQL (the phone verification suite's services)."""

from __future__ import annotations

import pytest

from backend.accounts.phones import PhoneView
from backend.errors import PermissionDenied
from tests.integration.test_phone_verification import env, sign_up, texted_code, wrong_code  # noqa: F401


def test_the_phone_as_its_owner_sees_it(env):  # noqa: F811
    demo = env.demo
    ann = sign_up(env, demo)
    assert env.accounts.phone(demo, ann) == PhoneView(masked="", verified=False, code_pending=False)
    env.accounts.start_phone_verification(demo, ann, "(415) 555-0123")
    assert env.accounts.phone(demo, ann) == PhoneView(masked="+1 ••• ••• 0123", verified=False, code_pending=True)
    code = texted_code(env, demo, ann.id)
    env.accounts.verify_phone(demo, ann, code)
    assert env.accounts.phone(demo, ann) == PhoneView(masked="+1 ••• ••• 0123", verified=True, code_pending=False)
    env.accounts.remove_phone(demo, ann)
    assert env.accounts.phone(demo, ann) == PhoneView(masked="", verified=False, code_pending=False)


def test_a_code_killed_by_wrong_tries_is_no_longer_waiting(env):  # noqa: F811
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, "(415) 555-0123")
    code = texted_code(env, demo, ann.id)
    for _ in range(5):
        with pytest.raises(Exception):
            env.accounts.verify_phone(demo, ann, wrong_code(code))
    assert env.accounts.phone(demo, ann).code_pending is False


def test_only_the_owner_reads_it(env):  # noqa: F811
    ann = sign_up(env, env.demo)
    with pytest.raises(PermissionDenied):
        env.accounts.phone(env.acme, ann)  # another marketplace
    with pytest.raises(PermissionDenied):
        env.accounts.phone(env.demo, None)
