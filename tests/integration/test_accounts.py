"""Auth service use cases on SQLite and on PostgreSQL (RLS on, app role)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from backend.identity import Role
from backend.accounts.models import AuthSession, OneTimeToken, TokenPurpose, User, UserStatus
from backend.errors import AuthenticationFailed, PermissionDenied, Throttled, TokenInvalid, ValidationFailed
from backend.notifications.models import Notification
from backend.profiles.models import Profile

PW = "a-good-password"


def sign_up(svc, tenant, email="ann@example.com", role="client", name="Ann Lee", password=PW):
    return svc.accounts.sign_up(tenant, {"email": email, "password": password, "full_name": name, "role": role})


def count(svc, tenant, model) -> int:
    with svc.db.tenant_session(tenant.id) as s:
        return s.exec(select(sa.func.count()).select_from(model)).one()


def make_admin(svc, tenant, email="boss@example.com"):
    actor, _ = sign_up(svc, tenant, email=email, name="Boss Person")
    with svc.db.tenant_session(tenant.id) as s:
        s.get(User, actor.id).role = Role.ADMIN
    return svc.accounts.login(tenant, email, PW)[0]


def latest_link(svc, tenant, marker: str) -> str:
    """The one-time token of the newest email, read as its recipient would: from the delivered message."""
    with svc.db.tenant_session(tenant.id) as s:
        note = s.exec(select(Notification).order_by(Notification.id.desc())).first()
    assert note.status == "sent", "the job delivered the message"
    token = svc.notifications.dev_mailbox.read(note.provider_id).split(marker)[1].split()[0]
    assert token not in note.body and not note.sealed_token, "no usable token stays in the outbox row"
    return token


def test_sign_up_creates_user_profile_session_and_verification_email(svc, tenants):
    demo, _ = tenants
    actor, token = sign_up(svc, demo)
    assert actor.role == Role.CLIENT and actor.tenant_id == demo.id and not actor.email_verified
    assert svc.accounts.resolve_session(demo, token) == actor
    assert count(svc, demo, Profile) == 1
    token = latest_link(svc, demo, "/verify?token=")
    assert svc.accounts.verify_email(demo, token) == "ann@example.com"
    with pytest.raises(TokenInvalid, match="already been used"):
        svc.accounts.verify_email(demo, token)


@pytest.mark.parametrize(("field", "data"), [
    ("email", {"email": "nope"}),
    ("password", {"password": "123456789"}),
    ("full_name", {"full_name": "x" * 81}),
    ("email", {"email": ("x" * 250) + "@example.com"}),
])
def test_bad_sign_up_writes_nothing(svc, tenants, field, data):
    demo, _ = tenants
    form = {"email": "ann@example.com", "password": PW, "full_name": "Ann", "role": "client"} | data
    with pytest.raises(ValidationFailed) as exc:
        svc.accounts.sign_up(demo, form)
    assert field in exc.value.errors
    assert count(svc, demo, User) == 0 and count(svc, demo, Notification) == 0


def test_duplicate_email_is_refused_per_tenant_only(svc, tenants):
    demo, acme = tenants
    sign_up(svc, demo)
    with pytest.raises(ValidationFailed) as exc:
        sign_up(svc, demo, email="ANN@example.com")
    assert "already exists" in exc.value.errors["email"]
    assert count(svc, demo, User) == 1 and count(svc, demo, Profile) == 1
    sign_up(svc, acme)  # the same address in another marketplace is another account
    assert count(svc, acme, User) == 1


def test_login_logout_and_wrong_password(svc, tenants):
    demo, acme = tenants
    sign_up(svc, demo)
    with pytest.raises(AuthenticationFailed, match="incorrect"):
        svc.accounts.login(demo, "ann@example.com", "wrong-password")
    with pytest.raises(AuthenticationFailed):  # the account lives in demo only
        svc.accounts.login(acme, "ann@example.com", PW)
    actor, token = svc.accounts.login(demo, " Ann@Example.com ", PW)
    assert svc.accounts.resolve_session(demo, token) == actor
    assert svc.accounts.resolve_session(acme, token) is None  # a token is bound to its tenant
    svc.accounts.logout(demo, token)
    assert svc.accounts.resolve_session(demo, token) is None


def test_expired_session_is_rejected(svc, tenants):
    demo, _ = tenants
    _, token = sign_up(svc, demo)
    with svc.db.tenant_session(demo.id) as s:
        for row in s.exec(select(AuthSession)).all():
            row.expires_at = row.expires_at - timedelta(days=30)
    assert svc.accounts.resolve_session(demo, token) is None


def test_throttling_per_account(svc, tenants):
    demo, _ = tenants
    sign_up(svc, demo)
    for _ in range(svc.settings.login_max_failures_per_account):
        with pytest.raises(AuthenticationFailed):
            svc.accounts.login(demo, "ann@example.com", "wrong-password", ip="10.0.0.1")
    with pytest.raises(Throttled, match="Too many failed login attempts for this account"):
        svc.accounts.login(demo, "ann@example.com", PW, ip="10.0.0.2")  # even the right password waits


def test_throttling_per_address(svc, tenants):
    demo, _ = tenants
    svc.settings.login_max_failures_per_address = 3
    for i in range(3):
        with pytest.raises(AuthenticationFailed):
            svc.accounts.login(demo, f"user{i}@example.com", "wrong-password", ip="10.9.9.9")
    with pytest.raises(Throttled, match="your network address"):
        svc.accounts.login(demo, "someone@example.com", "whatever-pw", ip="10.9.9.9")


def test_password_reset_flow_and_token_rules(svc, tenants):
    demo, _ = tenants
    _, old_session = sign_up(svc, demo)
    svc.accounts.request_password_reset(demo, "ann@example.com")
    token = latest_link(svc, demo, "/reset?token=")
    with pytest.raises(ValidationFailed):
        svc.accounts.reset_password(demo, token, "short")
    svc.accounts.reset_password(demo, token, "a-brand-new-password")  # the failed try did not burn the token
    assert svc.accounts.resolve_session(demo, old_session) is None  # other sessions ended
    svc.accounts.login(demo, "ann@example.com", "a-brand-new-password")
    with pytest.raises(TokenInvalid, match="already been used"):
        svc.accounts.reset_password(demo, token, "yet-another-password")
    with pytest.raises(TokenInvalid, match="not valid"):
        svc.accounts.reset_password(demo, "made-up-token", "yet-another-password")


def test_expired_reset_token(svc, tenants):
    demo, _ = tenants
    sign_up(svc, demo)
    svc.accounts.request_password_reset(demo, "ann@example.com")
    token = latest_link(svc, demo, "/reset?token=")
    with svc.db.tenant_session(demo.id) as s:
        row = s.exec(select(OneTimeToken).where(OneTimeToken.purpose == TokenPurpose.RESET_PASSWORD)).one()
        row.expires_at = row.expires_at - timedelta(hours=2)
    with pytest.raises(TokenInvalid, match="expired"):
        svc.accounts.reset_password(demo, token, "a-brand-new-password")
    svc.accounts.login(demo, "ann@example.com", PW)  # password unchanged


def test_reset_for_unknown_email_reveals_nothing(svc, tenants):
    demo, _ = tenants
    svc.accounts.request_password_reset(demo, "ghost@example.com")
    assert count(svc, demo, Notification) == 0


def test_admin_suspends_and_reinstates(svc, tenants):
    demo, acme = tenants
    client, client_token = sign_up(svc, demo)
    admin = make_admin(svc, demo)
    svc.accounts.set_user_status(demo, admin, client.id, UserStatus.SUSPENDED)
    assert svc.accounts.resolve_session(demo, client_token) is None
    with pytest.raises(AuthenticationFailed, match="suspended"):
        svc.accounts.login(demo, "ann@example.com", PW)
    svc.accounts.set_user_status(demo, admin, client.id, UserStatus.ACTIVE)
    svc.accounts.login(demo, "ann@example.com", PW)
    emails = [u.email for u in svc.accounts.list_users(demo, admin)]
    assert sorted(emails) == ["ann@example.com", "boss@example.com"]
    assert svc.accounts.list_users(demo, admin, search="ann")[0].email == "ann@example.com"
    svc.accounts.set_user_status(demo, admin, client.id, UserStatus.SUSPENDED)
    assert svc.accounts.user_counts(demo, admin) == {"client": 1, "professional": 0, "admin": 1, "suspended": 1}


def test_only_admins_manage_users_and_only_their_own(svc, tenants):
    demo, acme = tenants
    client, _ = sign_up(svc, demo)
    other, _ = sign_up(svc, demo, email="bob@example.com")
    with pytest.raises(PermissionDenied):
        svc.accounts.list_users(demo, client)
    with pytest.raises(PermissionDenied):
        svc.accounts.user_counts(demo, client)
    with pytest.raises(PermissionDenied):
        svc.accounts.set_user_status(demo, client, other.id, UserStatus.SUSPENDED)
    acme_admin = make_admin(svc, acme, email="boss@acme.example")
    with pytest.raises(PermissionDenied):  # an admin of acme presenting itself to demo
        svc.accounts.set_user_status(demo, acme_admin, other.id, UserStatus.SUSPENDED)
    from backend.errors import NotFound
    with pytest.raises(NotFound):  # and on its own tenant, demo's user ids do not exist
        svc.accounts.set_user_status(acme, acme_admin, other.id, UserStatus.SUSPENDED)
    assert svc.accounts.login(demo, "bob@example.com", PW)


def test_suspended_tenant_refuses_login_and_sessions(svc, tenants):
    from backend.identity import TenantStatus

    demo, _ = tenants
    _, token = sign_up(svc, demo)
    op_id = svc.accounts.create_operator("op@example.com", PW)
    op, _ = svc.accounts.operator_login("op@example.com", PW)
    assert op.id == op_id
    svc.platform.set_status(op, demo.id, TenantStatus.SUSPENDED)
    suspended = svc.tenants.by_slug("demo")
    assert not suspended.is_active
    assert svc.accounts.resolve_session(suspended, token) is None
    with pytest.raises(Exception, match="suspended"):
        svc.accounts.login(suspended, "ann@example.com", PW)
