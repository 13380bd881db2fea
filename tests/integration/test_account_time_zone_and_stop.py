"""The account's side of texts that respect the person, on SQLite and PostgreSQL (the phone verification suite's
services: AccountContacts, the dev SMS outbox, jobs inline): the time zone a user chooses (validated, nothing stored
when refused) or that their verified number gives them, and a number that replied STOP: paused on the phone card,
told once to text START, verified again with a new code, which resumes texts."""

from __future__ import annotations

import pytest
from sqlmodel import select

from backend.accounts.contacts import AccountContacts
from backend.accounts.models import User
from backend.accounts.service import STOPPED_NUMBER
from backend.errors import DomainError, PermissionDenied, ValidationFailed
from backend.notifications.catalogue import CATALOGUE, Event
from backend.notifications.models import Channel, Notification
from backend.notifications.ports import StatusKind, StatusUpdate
from tests.integration.test_phone_verification import ANN_PHONE, env, sign_up, texted_code  # noqa: F401

NEW_YORK_PHONE = "+12125550123"


def stored_zone(env, tenant, user_id: int) -> str | None:  # noqa: F811
    with env.db.tenant_session(tenant.id) as s:
        return s.get(User, user_id).time_zone


def contact(env, tenant, user_id: int):  # noqa: F811
    with env.db.tenant_session(tenant.id) as s:
        return AccountContacts().contacts(s, [user_id])[user_id]


def verify(env, tenant, actor, number: str) -> None:  # noqa: F811
    env.accounts.start_phone_verification(tenant, actor, number)
    env.accounts.verify_phone(tenant, actor, texted_code(env, tenant, actor.id, to=number))


def report_stop(env, tenant, user_id: int) -> None:  # noqa: F811
    """Twilio's status callback for the user's newest text: undelivered, 21610 (they replied STOP)."""
    with env.db.tenant_session(tenant.id) as s:
        note = s.exec(select(Notification).where(Notification.user_id == user_id, Notification.channel == Channel.SMS)
                      .order_by(Notification.id.desc())).first()
        reference = f"t{tenant.id}-n{note.id}"
    update = StatusUpdate(reference=reference, provider_id=note.provider_id, kind=StatusKind.FAILED,
                          reason="Twilio undelivered: error 21610", opted_out=True)
    assert env.notifications.apply_status([update]) == 1


# ---------------------------------------------------------------- time zone


def test_a_chosen_time_zone_is_stored_and_reaches_the_contact(env):  # noqa: F811
    demo = env.demo
    ann = sign_up(env, demo)
    view = env.accounts.time_zone(demo, ann)
    assert (view.name, view.quiet_hours) == ("", "21:00–08:00") and len(view.local_time) == 5
    assert env.accounts.set_time_zone(demo, ann, " Europe/Paris ").name == "Europe/Paris"
    assert stored_zone(env, demo, ann.id) == "Europe/Paris"
    assert contact(env, demo, ann.id).time_zone == "Europe/Paris"
    assert env.accounts.time_zone(demo, ann).name == "Europe/Paris"
    assert env.accounts.set_time_zone(demo, ann, "").name == ""  # not set: UTC
    assert stored_zone(env, demo, ann.id) is None and contact(env, demo, ann.id).time_zone == ""


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "america/new_york", "../../etc/passwd", "New York",
                                 "Europe/" + "x" * 80])
def test_an_unknown_time_zone_is_a_field_error_and_changes_nothing(env, bad):  # noqa: F811
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.set_time_zone(demo, ann, "Asia/Tokyo")
    with pytest.raises(ValidationFailed) as refused:
        env.accounts.set_time_zone(demo, ann, bad)
    assert refused.value.errors == {"time_zone": "Choose a time zone from the list."}
    assert stored_zone(env, demo, ann.id) == "Asia/Tokyo"


def test_only_the_owner_reads_or_sets_it(env):  # noqa: F811
    ann = sign_up(env, env.demo)
    for call in (lambda: env.accounts.time_zone(env.acme, ann),
                 lambda: env.accounts.set_time_zone(env.acme, ann, "UTC"),
                 lambda: env.accounts.set_time_zone(env.demo, None, "UTC")):
        with pytest.raises(PermissionDenied):
            call()
    assert stored_zone(env, env.demo, ann.id) is None


def test_a_verified_number_in_one_zone_gives_an_account_without_one_its_zone(env):  # noqa: F811
    demo = env.demo
    ann = sign_up(env, demo)
    verify(env, demo, ann, NEW_YORK_PHONE)
    assert stored_zone(env, demo, ann.id) == "America/New_York"
    assert contact(env, demo, ann.id).time_zone == "America/New_York"
    # a zone the user has is never replaced by a guess
    bob = sign_up(env, demo, email="bob@example.com", name="Bob Roe")
    env.accounts.set_time_zone(demo, bob, "Europe/London")
    verify(env, demo, bob, NEW_YORK_PHONE)
    assert stored_zone(env, demo, bob.id) == "Europe/London"


def test_a_number_spanning_several_zones_guesses_none(env):  # noqa: F811
    demo = env.demo
    cat = sign_up(env, demo, email="cat@example.com", name="Cat Poe")
    verify(env, demo, cat, "+61412345678")  # Australian mobiles: Perth to Sydney
    assert stored_zone(env, demo, cat.id) is None and contact(env, demo, cat.id).time_zone == ""


# ---------------------------------------------------------------- STOP


def test_stop_pauses_texts_until_the_number_is_verified_again(env):  # noqa: F811
    demo = env.demo
    ann = sign_up(env, demo)
    verify(env, demo, ann, ANN_PHONE)
    report_stop(env, demo, ann.id)
    view = env.accounts.phone(demo, ann)
    assert (view.verified, view.texts_paused, view.code_pending) == (True, True, False)
    assert contact(env, demo, ann.id).phone == ANN_PHONE  # still verified: the carrier blocks, not us
    with env.db.tenant_session(demo.id) as s:  # no texts to it meanwhile; email goes on
        ids = env.notifications.notify(s, demo, Event.LEAD_MATCHED, [ann.id], key="m:1",
                                       context=CATALOGUE[Event.LEAD_MATCHED].sample)
        s.flush()
        rows = {n.channel: n for n in s.exec(select(Notification).where(Notification.dedupe_key.like("m:1:%")))}
    assert [rows[Channel.EMAIL].id] == ids and rows[Channel.SMS].status == "skipped"

    # asking for a code: told once to text START first (and no code spent from the allowance)...
    sent_before = len(env.sms.messages(to=ANN_PHONE))
    with pytest.raises(DomainError) as told:
        env.accounts.resend_phone_code(demo, ann)
    assert told.value.message == STOPPED_NUMBER and len(env.sms.messages(to=ANN_PHONE)) == sent_before
    # ...then the code goes (the carrier decides) and shows on the card
    assert env.accounts.resend_phone_code(demo, ann) == "+1 ••• ••• 0123"
    view = env.accounts.phone(demo, ann)
    assert (view.verified, view.texts_paused, view.code_pending) == (True, True, True)
    env.accounts.verify_phone(demo, ann, texted_code(env, demo, ann.id))
    view = env.accounts.phone(demo, ann)
    assert (view.verified, view.texts_paused, view.code_pending) == (True, False, False)
    with pytest.raises(DomainError, match="already verified"):
        env.accounts.start_phone_verification(demo, ann, ANN_PHONE)


def test_typing_a_stopped_number_again_gets_the_same_advice(env):  # noqa: F811
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    report_stop(env, demo, ann.id)  # the code itself came back 21610
    assert env.accounts.phone(demo, ann).texts_paused
    with pytest.raises(DomainError) as told:
        env.accounts.start_phone_verification(demo, ann, "(415) 555-0123")
    assert told.value.message == STOPPED_NUMBER
    env.accounts.start_phone_verification(demo, ann, "(415) 555-0123")
    env.accounts.verify_phone(demo, ann, texted_code(env, demo, ann.id))
    assert not env.accounts.phone(demo, ann).texts_paused
    # a STOP is the number's, per marketplace: acme knows nothing of it
    bob = sign_up(env, env.acme, email="bob@example.com")
    report_stop(env, demo, ann.id)
    assert env.accounts.phone(env.acme, bob).texts_paused is False
    env.accounts.start_phone_verification(env.acme, bob, ANN_PHONE)  # no advice here: the carrier decides
    assert texted_code(env, env.acme, bob.id)


def test_without_a_number_there_is_nothing_to_resend(env):  # noqa: F811
    ann = sign_up(env, env.demo)
    with pytest.raises(DomainError, match="no number"):
        env.accounts.resend_phone_code(env.demo, ann)
