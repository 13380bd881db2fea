"""Phone verification on SQLite and PostgreSQL: a texted 6-digit code (hashed, 10-minute expiry, 5 tries,
throttled per user and per number) turns the account's number into a verified one, and only a verified number
is a contact for SMS. The services are wired here as bootstrap wires them (AccountContacts behind the notification
service, the dev SMS outbox as the SMS channel, jobs run inline), so the code is read from the outbox like a phone
would show it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlmodel import select

from backend.accounts.contacts import AccountContacts
from backend.accounts.models import AttemptKind, LoginAttempt, PhoneVerification, User, UserStatus
from backend.accounts.security import Passwords
from backend.accounts.service import AccountService
from backend.config import Settings
from backend.crypto import SecretBox
from backend.db import Database, utcnow
from backend.errors import DomainError, PermissionDenied, Throttled, ValidationFailed
from backend.identity import Role, TenantPublic
from backend.jobqueue import InlineJobQueue
from backend.migrate import upgrade
from backend.notifications.adapters.dev_sms import DevSmsOutbox
from backend.notifications.models import Channel, Notification
from backend.notifications.ports import OutgoingEmail
from backend.notifications.service import NotificationService
from backend.profiles.models import ProProfile
from backend.tenancy.models import Tenant
from backend.tenancy.service import TenantDirectory
from tests.conftest import _truncate, app_url

PW = "a-good-password"
ANN_PHONE = "+14155550123"


class Outbox:
    """The email channel: sign-up sends a verification email, which these tests do not read."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    def send(self, email: OutgoingEmail) -> str:
        self.sent.append(email)
        return f"mail-{len(self.sent)}"


@dataclass
class Env:
    db: Database
    accounts: AccountService
    notifications: NotificationService
    tenants: TenantDirectory
    sms: DevSmsOutbox
    demo: TenantPublic
    acme: TenantPublic


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    settings = Settings(environment="test", database_url=url, data_dir=tmp_path, redis_url=None,
                        argon2_time_cost=1, argon2_memory_kib=8 * 1024, argon2_parallelism=1,
                        **({"database_app_url": app_url(url)} if url else {}))
    upgrade(settings.owner_database_url, settings)
    db = Database(settings)
    tenants = TenantDirectory(db, settings)
    if url:
        _truncate(SimpleNamespace(settings=settings, tenants=tenants))
    sms = DevSmsOutbox(tmp_path / "sms")
    secret = settings.secret_key.get_secret_value()
    notifications = NotificationService(db, Outbox(), SecretBox(secret, "notification-token"),
                                        contacts=AccountContacts(), unsubscribe_secret=b"u" * 32, sms=sms, dev_sms=sms)
    jobs = InlineJobQueue(SimpleNamespace(notifications=notifications, tenants=tenants), raise_errors=True)
    accounts = AccountService(db, settings, Passwords(settings), jobs, notifications)
    with db.platform_session() as s:
        for slug, name in (("demo", "Demo"), ("acme", "Acme")):
            s.add(Tenant(slug=slug, name=name, payment_provider="demo"))
    yield Env(db, accounts, notifications, tenants, sms, tenants.by_slug("demo"), tenants.by_slug("acme"))
    db.dispose()


def sign_up(env, tenant, email="ann@example.com", name="Ann Lee", role="client"):
    actor, _ = env.accounts.sign_up(tenant, {"email": email, "password": PW, "full_name": name, "role": role})
    return actor


def texted_code(env, tenant, user_id: int, to: str = ANN_PHONE) -> str:
    """The code of the user's newest SMS, as the phone shows it (the dev SMS outbox), checked against the
    delivery row that notify() wrote."""
    with env.db.tenant_session(tenant.id) as s:
        row = s.exec(select(Notification).where(Notification.user_id == user_id, Notification.channel == Channel.SMS)
                     .order_by(Notification.id.desc())).first()
    assert row is not None, "a text message was written"
    assert (row.event, row.recipient, row.status) == ("phone_code", to, "sent"), "the job handed it to the channel"
    texted = env.sms.messages(to=to, limit=1)[0]
    assert texted.provider_id == row.provider_id
    assert texted.body == row.body
    return re.search(r"\b(\d{6})\b", texted.body).group(1)


def user(env, tenant, user_id: int) -> User:
    with env.db.tenant_session(tenant.id) as s:
        return s.get(User, user_id)


def newest_code_row(env, tenant, user_id: int) -> PhoneVerification:
    with env.db.tenant_session(tenant.id) as s:
        return s.exec(select(PhoneVerification).where(PhoneVerification.user_id == user_id)
                      .order_by(PhoneVerification.id.desc())).first()


def contact_phone(env, tenant, user_id: int) -> str:
    with env.db.tenant_session(tenant.id) as s:
        return AccountContacts().contacts(s, [user_id])[user_id].phone


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def code_error(exc_info) -> str:
    return exc_info.value.errors["code"]


# ---------------------------------------------------------------- the happy path


def test_a_texted_code_verifies_the_number(env):
    demo = env.demo
    ann = sign_up(env, demo)

    assert env.accounts.start_phone_verification(demo, ann, "(415) 555-0123") == "+1 ••• ••• 0123"
    code = texted_code(env, demo, ann.id)
    row = newest_code_row(env, demo, ann.id)
    assert code not in row.code_hash and len(row.code_hash) == 64, "only the code's HMAC is stored"
    assert timedelta(minutes=9) < row.expires_at - utcnow() <= timedelta(minutes=10)
    pending = user(env, demo, ann.id)
    assert (pending.phone_e164, pending.phone_verified_at) == (ANN_PHONE, None)
    assert contact_phone(env, demo, ann.id) == "", "an unverified number receives no SMS"

    assert env.accounts.verify_phone(demo, ann, f" {code[:3]} {code[3:]} ") == ANN_PHONE
    verified = user(env, demo, ann.id)
    assert verified.phone_e164 == ANN_PHONE and verified.phone_verified_at is not None
    assert newest_code_row(env, demo, ann.id).verified_at is not None
    assert contact_phone(env, demo, ann.id) == ANN_PHONE
    with pytest.raises(DomainError, match="no code waiting"):  # a code works once
        env.accounts.verify_phone(demo, ann, code)
    with pytest.raises(DomainError, match="already verified"):
        env.accounts.start_phone_verification(demo, ann, "+1 415 555 0123")


def test_numbers_are_read_with_the_region_hint_and_refused_with_the_reason(env):
    demo = env.demo
    ann = sign_up(env, demo)
    assert env.accounts.start_phone_verification(demo, ann, "07400 123456", region="GB") == "+44 •••• ••3456"
    assert user(env, demo, ann.id).phone_e164 == "+447400123456"
    for typed, reason in (("+44 20 7946 0958", "landline"), ("+1 900 555 0123", "premium-rate"),
                          ("12", "not a valid phone number"), ("", "Enter your mobile number")):
        with pytest.raises(ValidationFailed) as exc:
            env.accounts.start_phone_verification(demo, ann, typed)
        assert reason in exc.value.errors["phone"]
    with env.db.tenant_session(demo.id) as s:
        assert s.exec(select(sa.func.count()).select_from(PhoneVerification)).one() == 1, "refused: no code"


# ---------------------------------------------------------------- wrong, expired, too many


def test_a_wrong_code_says_how_many_tries_are_left_and_the_fifth_kills_the_code(env):
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    code = texted_code(env, demo, ann.id)

    for left in (4, 3, 2):
        with pytest.raises(ValidationFailed) as exc:
            env.accounts.verify_phone(demo, ann, wrong_code(code))
        assert code_error(exc) == f"That code is not right. {left} tries left."
    with pytest.raises(ValidationFailed) as exc:
        env.accounts.verify_phone(demo, ann, wrong_code(code))
    assert code_error(exc) == "That code is not right. 1 try left."
    with pytest.raises(DomainError, match="Too many wrong codes. Ask for a new one."):
        env.accounts.verify_phone(demo, ann, wrong_code(code))
    assert newest_code_row(env, demo, ann.id).attempts == 5
    with pytest.raises(DomainError, match="Too many wrong codes. Ask for a new one."):
        env.accounts.verify_phone(demo, ann, code)  # even the right one: the code is dead
    assert user(env, demo, ann.id).phone_verified_at is None

    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)  # a new code starts afresh
    assert env.accounts.verify_phone(demo, ann, texted_code(env, demo, ann.id)) == ANN_PHONE


def test_something_that_is_not_six_digits_is_not_counted_as_a_try(env):
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    for typed in ("12345", "abcdef", "", "1234567"):
        with pytest.raises(ValidationFailed) as exc:
            env.accounts.verify_phone(demo, ann, typed)
        assert code_error(exc) == "Enter the 6-digit code from the text message."
    assert newest_code_row(env, demo, ann.id).attempts == 0


def test_an_expired_code_is_refused(env):
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    code = texted_code(env, demo, ann.id)
    with env.db.tenant_session(demo.id) as s:  # ten minutes later
        row = s.exec(select(PhoneVerification).where(PhoneVerification.user_id == ann.id)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(DomainError, match="The code expired. Ask for a new one."):
        env.accounts.verify_phone(demo, ann, code)
    assert user(env, demo, ann.id).phone_verified_at is None


def test_a_new_code_makes_the_older_ones_worthless(env):
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    first = texted_code(env, demo, ann.id)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    second = texted_code(env, demo, ann.id)
    if first != second:  # one in a million they are equal
        with pytest.raises(ValidationFailed) as exc:
            env.accounts.verify_phone(demo, ann, first)
        assert "4 tries left" in code_error(exc)
    with env.db.tenant_session(demo.id) as s:
        rows = s.exec(select(PhoneVerification).order_by(PhoneVerification.id)).all()
    assert rows[0].expires_at <= rows[1].created_at, "the older code was expired when the new one was made"
    assert env.accounts.verify_phone(demo, ann, second) == ANN_PHONE


# ---------------------------------------------------------------- throttling


def test_at_most_three_codes_per_user_in_fifteen_minutes(env):
    demo = env.demo
    ann = sign_up(env, demo)
    for number in ("+14155550123", "+14155550124", "+14155550125"):
        env.accounts.start_phone_verification(demo, ann, number)
    with pytest.raises(Throttled, match=r"already sent 3 codes to you in the last 15 minutes\. "
                                        r"Try again in 15 minutes\."):
        env.accounts.start_phone_verification(demo, ann, "+14155550126")
    with env.db.tenant_session(demo.id) as s:
        assert s.exec(select(sa.func.count()).select_from(Notification)
                      .where(Notification.channel == Channel.SMS)).one() == 3, "the refused request texted nothing"

    with env.db.platform_session() as s:  # fifteen minutes later
        s.exec(sa.update(LoginAttempt).where(LoginAttempt.kind == AttemptKind.PHONE_CODE)
               .values(at=utcnow() - timedelta(minutes=16)))
    env.accounts.start_phone_verification(demo, ann, "+14155550126")


def test_at_most_three_codes_per_number_whoever_asks(env):
    demo, acme = env.demo, env.acme
    askers = [sign_up(env, demo, f"user{i}@example.com") for i in range(3)]
    for asker in askers:
        env.accounts.start_phone_verification(demo, asker, ANN_PHONE)
    stranger = sign_up(env, acme, "stranger@example.com")  # another marketplace, the same phone
    with pytest.raises(Throttled, match="to this number"):
        env.accounts.start_phone_verification(acme, stranger, "(415) 555-0123")
    with env.db.platform_session() as s:
        keys = s.exec(select(LoginAttempt.ip).where(LoginAttempt.kind == AttemptKind.PHONE_CODE)).all()
    assert len(keys) == 3 and not any("4155550123" in key for key in keys), "no number in clear in the table"


# ---------------------------------------------------------------- changing and removing the number


def test_a_changed_number_is_unverified_until_its_own_code_comes_back(env):
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    env.accounts.verify_phone(demo, ann, texted_code(env, demo, ann.id))

    env.accounts.start_phone_verification(demo, ann, "+447400123456")
    changed = user(env, demo, ann.id)
    assert (changed.phone_e164, changed.phone_verified_at) == ("+447400123456", None)
    assert contact_phone(env, demo, ann.id) == ""
    assert env.accounts.verify_phone(demo, ann, texted_code(env, demo, ann.id, to="+447400123456")) == "+447400123456"
    assert contact_phone(env, demo, ann.id) == "+447400123456"


def test_two_accounts_may_verify_one_shared_phone(env):
    demo = env.demo
    ann = sign_up(env, demo)
    bob = sign_up(env, demo, "bob@example.com", "Bob Lee")
    for person in (ann, bob):
        env.accounts.start_phone_verification(demo, person, ANN_PHONE)
        env.accounts.verify_phone(demo, person, texted_code(env, demo, person.id))
    assert contact_phone(env, demo, ann.id) == contact_phone(env, demo, bob.id) == ANN_PHONE


def test_removing_the_number_clears_it_and_its_pending_code(env):
    demo = env.demo
    ann = sign_up(env, demo)
    env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    env.accounts.verify_phone(demo, ann, texted_code(env, demo, ann.id))
    env.accounts.start_phone_verification(demo, ann, "+14155550124")
    code = texted_code(env, demo, ann.id, to="+14155550124")

    env.accounts.remove_phone(demo, ann)
    removed = user(env, demo, ann.id)
    assert (removed.phone_e164, removed.phone_verified_at) == ("", None)
    with pytest.raises(DomainError, match="expired"):
        env.accounts.verify_phone(demo, ann, code)
    assert user(env, demo, ann.id).phone_e164 == ""


# ---------------------------------------------------------------- who may ask


def test_only_a_logged_in_active_user_of_the_marketplace_can_verify_a_phone(env):
    demo, acme = env.demo, env.acme
    ann = sign_up(env, demo)
    with pytest.raises(PermissionDenied):
        env.accounts.start_phone_verification(acme, ann, ANN_PHONE)  # another marketplace
    with pytest.raises(PermissionDenied):
        env.accounts.start_phone_verification(demo, None, ANN_PHONE)
    with env.db.tenant_session(demo.id) as s:
        s.get(User, ann.id).status = UserStatus.SUSPENDED
    with pytest.raises(PermissionDenied):
        env.accounts.start_phone_verification(demo, ann, ANN_PHONE)


def test_a_marketplace_without_sms_refuses_before_spending_a_code(env):
    demo = env.demo
    boss = sign_up(env, demo, "boss@example.com", "Boss Person")
    with env.db.tenant_session(demo.id) as s:
        s.get(User, boss.id).role = Role.ADMIN
    boss = env.accounts.login(demo, "boss@example.com", PW)[0]
    env.notifications.set_channels(boss, ["email", "in_app"])
    demo = env.tenants.by_slug("demo")
    ann = sign_up(env, demo)
    with pytest.raises(DomainError, match="does not send text messages"):
        env.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    with env.db.platform_session() as s:
        assert s.exec(select(sa.func.count()).select_from(LoginAttempt)
                      .where(LoginAttempt.kind == AttemptKind.PHONE_CODE)).one() == 0


# ---------------------------------------------------------------- the Contacts port


def test_contacts_are_the_active_users_of_the_sessions_tenant(env):
    demo, acme = env.demo, env.acme
    ann = sign_up(env, demo)
    pro = sign_up(env, demo, "pro@example.com", "Pat Pro", role="professional")
    gone = sign_up(env, demo, "gone@example.com", "Gone Away")
    other = sign_up(env, acme, "other@example.com", "Other Tenant")
    with env.db.tenant_session(demo.id) as s:
        s.get(User, gone.id).status = UserStatus.SUSPENDED
        s.get(User, pro.id).role = Role.ADMIN
        s.get(User, ann.id).email_verified_at = utcnow()
        seeded = User(email="seeded@example.com", password_hash="-", role=Role.CLIENT, tenant_id=demo.id)
        s.add(seeded)  # made by hand: no profile, so no full name
        s.flush()
        seeded_id = seeded.id
    with env.db.tenant_session(demo.id) as s:
        found = AccountContacts().contacts(s, [ann.id, pro.id, gone.id, other.id, seeded_id, 10_000])
        admins = AccountContacts().admins(s)
    assert set(found) == {ann.id, pro.id, seeded_id}, "suspended, other-tenant and unknown users are absent"
    assert found[seeded_id].name == "seeded", "no profile: the email's local part"
    assert (found[ann.id].email, found[ann.id].name, found[ann.id].role) == ("ann@example.com", "Ann Lee", "client")
    assert found[ann.id].email_verified and not found[pro.id].email_verified
    assert found[ann.id].phone == ""
    assert admins == [pro.id]
    with env.db.tenant_session(acme.id) as s:
        assert AccountContacts().admins(s) == []
        assert set(AccountContacts().contacts(s, [ann.id, other.id])) == {other.id}


def test_a_professionals_verified_phone_shows_as_a_badge_on_the_profile(env):
    # profiles keep their own copy of the flag (they sit below accounts), written with the number
    demo = env.demo
    pro = sign_up(env, demo, email="pro@example.com", name="Pat Pro", role="professional")

    def badge() -> bool:
        with env.db.tenant_session(demo.id) as s:
            return s.get(ProProfile, pro.id).phone_verified

    env.accounts.start_phone_verification(demo, pro, "(415) 555-0123")
    assert badge() is False, "a number waiting for its code is not a badge"
    env.accounts.verify_phone(demo, pro, texted_code(env, demo, pro.id))
    assert badge() is True
    env.accounts.start_phone_verification(demo, pro, "(415) 555-0199")  # a new number: unverified again
    assert badge() is False
    env.accounts.verify_phone(demo, pro, texted_code(env, demo, pro.id, to="+14155550199"))
    assert badge() is True
    env.accounts.remove_phone(demo, pro)
    assert badge() is False
