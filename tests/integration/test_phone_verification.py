"""Phone verification on SQLite and PostgreSQL: a texted 6-digit code (hashed, 10-minute expiry, 5 tries,
throttled per user and per number) turns the account's number into a verified one, and only a verified number
is a contact for SMS."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from backend.accounts.contacts import AccountContacts
from backend.accounts.models import AttemptKind, LoginAttempt, PhoneVerification, User, UserStatus
from backend.db import utcnow
from backend.errors import DomainError, PermissionDenied, Throttled, ValidationFailed
from backend.identity import Role
from backend.notifications.models import Channel, Notification

PW = "a-good-password"
ANN_PHONE = "+14155550123"


def sign_up(svc, tenant, email="ann@example.com", name="Ann Lee", role="client"):
    actor, _ = svc.accounts.sign_up(tenant, {"email": email, "password": PW, "full_name": name, "role": role})
    return actor


def texted_code(svc, tenant, user_id: int, to: str = ANN_PHONE) -> str:
    """The code of the user's newest SMS, read from the delivery row that notify() wrote."""
    with svc.db.tenant_session(tenant.id) as s:
        sms = s.exec(select(Notification).where(Notification.user_id == user_id, Notification.channel == Channel.SMS)
                     .order_by(Notification.id.desc())).first()
    assert sms is not None, "a text message was written"
    assert (sms.event, sms.recipient) == ("phone_code", to)
    assert sms.status == "sent", "the job handed it to the SMS channel"
    return re.search(r"\b(\d{6})\b", sms.body).group(1)


def user(svc, tenant, user_id: int) -> User:
    with svc.db.tenant_session(tenant.id) as s:
        return s.get(User, user_id)


def newest_code_row(svc, tenant, user_id: int) -> PhoneVerification:
    with svc.db.tenant_session(tenant.id) as s:
        return s.exec(select(PhoneVerification).where(PhoneVerification.user_id == user_id)
                      .order_by(PhoneVerification.id.desc())).first()


def contact_phone(svc, tenant, user_id: int) -> str:
    with svc.db.tenant_session(tenant.id) as s:
        return AccountContacts().contacts(s, [user_id])[user_id].phone


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def code_error(exc_info) -> str:
    return exc_info.value.errors["code"]


# ---------------------------------------------------------------- the happy path


def test_a_texted_code_verifies_the_number(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)

    assert svc.accounts.start_phone_verification(demo, ann, "(415) 555-0123") == "+1 ••• ••• 0123"
    code = texted_code(svc, demo, ann.id)
    row = newest_code_row(svc, demo, ann.id)
    assert code not in row.code_hash and len(row.code_hash) == 64, "only the code's HMAC is stored"
    assert timedelta(minutes=9) < row.expires_at - utcnow() <= timedelta(minutes=10)
    pending = user(svc, demo, ann.id)
    assert (pending.phone_e164, pending.phone_verified_at) == (ANN_PHONE, None)
    assert contact_phone(svc, demo, ann.id) == "", "an unverified number receives no SMS"

    assert svc.accounts.verify_phone(demo, ann, f" {code[:3]} {code[3:]} ") == ANN_PHONE
    verified = user(svc, demo, ann.id)
    assert verified.phone_e164 == ANN_PHONE and verified.phone_verified_at is not None
    assert newest_code_row(svc, demo, ann.id).verified_at is not None
    assert contact_phone(svc, demo, ann.id) == ANN_PHONE
    with pytest.raises(DomainError, match="no code waiting"):  # a code works once
        svc.accounts.verify_phone(demo, ann, code)
    with pytest.raises(DomainError, match="already verified"):
        svc.accounts.start_phone_verification(demo, ann, "+1 415 555 0123")


def test_numbers_are_read_with_the_region_hint_and_refused_with_the_reason(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    assert svc.accounts.start_phone_verification(demo, ann, "07400 123456", region="GB") == "+44 •••• ••3456"
    assert user(svc, demo, ann.id).phone_e164 == "+447400123456"
    for typed, reason in (("+44 20 7946 0958", "landline"), ("+1 900 555 0123", "premium-rate"),
                          ("12", "not a valid phone number"), ("", "Enter your mobile number")):
        with pytest.raises(ValidationFailed) as exc:
            svc.accounts.start_phone_verification(demo, ann, typed)
        assert reason in exc.value.errors["phone"]
    with svc.db.tenant_session(demo.id) as s:
        assert s.exec(select(sa.func.count()).select_from(PhoneVerification)).one() == 1, "refused: no code"


# ---------------------------------------------------------------- wrong, expired, too many


def test_a_wrong_code_says_how_many_tries_are_left_and_the_fifth_kills_the_code(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    code = texted_code(svc, demo, ann.id)

    for left in (4, 3, 2):
        with pytest.raises(ValidationFailed) as exc:
            svc.accounts.verify_phone(demo, ann, wrong_code(code))
        assert code_error(exc) == f"That code is not right. {left} tries left."
    with pytest.raises(ValidationFailed) as exc:
        svc.accounts.verify_phone(demo, ann, wrong_code(code))
    assert code_error(exc) == "That code is not right. 1 try left."
    with pytest.raises(DomainError, match="Too many wrong codes. Ask for a new one."):
        svc.accounts.verify_phone(demo, ann, wrong_code(code))
    assert newest_code_row(svc, demo, ann.id).attempts == 5
    with pytest.raises(DomainError, match="Too many wrong codes. Ask for a new one."):
        svc.accounts.verify_phone(demo, ann, code)  # even the right one: the code is dead
    assert user(svc, demo, ann.id).phone_verified_at is None

    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)  # a new code starts afresh
    assert svc.accounts.verify_phone(demo, ann, texted_code(svc, demo, ann.id)) == ANN_PHONE


def test_something_that_is_not_six_digits_is_not_counted_as_a_try(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    for typed in ("12345", "abcdef", "", "1234567"):
        with pytest.raises(ValidationFailed) as exc:
            svc.accounts.verify_phone(demo, ann, typed)
        assert code_error(exc) == "Enter the 6-digit code from the text message."
    assert newest_code_row(svc, demo, ann.id).attempts == 0


def test_an_expired_code_is_refused(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    code = texted_code(svc, demo, ann.id)
    with svc.db.tenant_session(demo.id) as s:  # ten minutes later
        row = s.exec(select(PhoneVerification).where(PhoneVerification.user_id == ann.id)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(DomainError, match="The code expired. Ask for a new one."):
        svc.accounts.verify_phone(demo, ann, code)
    assert user(svc, demo, ann.id).phone_verified_at is None


def test_a_new_code_makes_the_older_ones_worthless(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    first = texted_code(svc, demo, ann.id)
    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    second = texted_code(svc, demo, ann.id)
    if first != second:  # one in a million they are equal
        with pytest.raises(ValidationFailed) as exc:
            svc.accounts.verify_phone(demo, ann, first)
        assert "4 tries left" in code_error(exc)
    with svc.db.tenant_session(demo.id) as s:
        rows = s.exec(select(PhoneVerification).order_by(PhoneVerification.id)).all()
    assert rows[0].expires_at <= rows[1].created_at, "the older code was expired when the new one was made"
    assert svc.accounts.verify_phone(demo, ann, second) == ANN_PHONE


# ---------------------------------------------------------------- throttling


def test_at_most_three_codes_per_user_in_fifteen_minutes(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    for number in ("+14155550123", "+14155550124", "+14155550125"):
        svc.accounts.start_phone_verification(demo, ann, number)
    with pytest.raises(Throttled, match=r"already sent 3 codes to you in the last 15 minutes\. "
                                        r"Try again in 15 minutes\."):
        svc.accounts.start_phone_verification(demo, ann, "+14155550126")
    with svc.db.tenant_session(demo.id) as s:
        assert s.exec(select(sa.func.count()).select_from(Notification)
                      .where(Notification.channel == Channel.SMS)).one() == 3, "the refused request texted nothing"

    with svc.db.platform_session() as s:  # fifteen minutes later
        s.exec(sa.update(LoginAttempt).where(LoginAttempt.kind == AttemptKind.PHONE_CODE)
               .values(at=utcnow() - timedelta(minutes=16)))
    svc.accounts.start_phone_verification(demo, ann, "+14155550126")


def test_at_most_three_codes_per_number_whoever_asks(svc, tenants):
    demo, acme = tenants
    askers = [sign_up(svc, demo, f"user{i}@example.com") for i in range(3)]
    for asker in askers:
        svc.accounts.start_phone_verification(demo, asker, ANN_PHONE)
    stranger = sign_up(svc, acme, "stranger@example.com")  # another marketplace, the same phone
    with pytest.raises(Throttled, match="to this number"):
        svc.accounts.start_phone_verification(acme, stranger, "(415) 555-0123")
    with svc.db.platform_session() as s:
        keys = s.exec(select(LoginAttempt.ip).where(LoginAttempt.kind == AttemptKind.PHONE_CODE)).all()
    assert len(keys) == 3 and not any("4155550123" in key for key in keys), "no number in clear in the table"


# ---------------------------------------------------------------- changing and removing the number


def test_a_changed_number_is_unverified_until_its_own_code_comes_back(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    svc.accounts.verify_phone(demo, ann, texted_code(svc, demo, ann.id))

    svc.accounts.start_phone_verification(demo, ann, "+447400123456")
    changed = user(svc, demo, ann.id)
    assert (changed.phone_e164, changed.phone_verified_at) == ("+447400123456", None)
    assert contact_phone(svc, demo, ann.id) == ""
    assert svc.accounts.verify_phone(demo, ann, texted_code(svc, demo, ann.id, to="+447400123456")) == "+447400123456"
    assert contact_phone(svc, demo, ann.id) == "+447400123456"


def test_two_accounts_may_verify_one_shared_phone(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    bob = sign_up(svc, demo, "bob@example.com", "Bob Lee")
    for person in (ann, bob):
        svc.accounts.start_phone_verification(demo, person, ANN_PHONE)
        svc.accounts.verify_phone(demo, person, texted_code(svc, demo, person.id))
    assert contact_phone(svc, demo, ann.id) == contact_phone(svc, demo, bob.id) == ANN_PHONE


def test_removing_the_number_clears_it_and_its_pending_code(svc, tenants):
    demo, _ = tenants
    ann = sign_up(svc, demo)
    svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    svc.accounts.verify_phone(demo, ann, texted_code(svc, demo, ann.id))
    svc.accounts.start_phone_verification(demo, ann, "+14155550124")
    code = texted_code(svc, demo, ann.id, to="+14155550124")

    svc.accounts.remove_phone(demo, ann)
    removed = user(svc, demo, ann.id)
    assert (removed.phone_e164, removed.phone_verified_at) == ("", None)
    with pytest.raises(DomainError, match="expired"):
        svc.accounts.verify_phone(demo, ann, code)
    assert user(svc, demo, ann.id).phone_e164 == ""


# ---------------------------------------------------------------- who may ask


def test_only_a_logged_in_active_user_of_the_marketplace_can_verify_a_phone(svc, tenants):
    demo, acme = tenants
    ann = sign_up(svc, demo)
    with pytest.raises(PermissionDenied):
        svc.accounts.start_phone_verification(acme, ann, ANN_PHONE)  # another marketplace
    with pytest.raises(PermissionDenied):
        svc.accounts.start_phone_verification(demo, None, ANN_PHONE)
    with svc.db.tenant_session(demo.id) as s:
        s.get(User, ann.id).status = UserStatus.SUSPENDED
    with pytest.raises(PermissionDenied):
        svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)


def test_a_marketplace_without_sms_refuses_before_spending_a_code(svc, tenants):
    demo, _ = tenants
    boss = sign_up(svc, demo, "boss@example.com", "Boss Person")
    with svc.db.tenant_session(demo.id) as s:
        s.get(User, boss.id).role = Role.ADMIN
    boss = svc.accounts.login(demo, "boss@example.com", PW)[0]
    svc.notifications.set_channels(boss, ["email", "in_app"])
    demo = svc.tenants.by_slug("demo")
    ann = sign_up(svc, demo)
    with pytest.raises(DomainError, match="does not send text messages"):
        svc.accounts.start_phone_verification(demo, ann, ANN_PHONE)
    with svc.db.platform_session() as s:
        assert s.exec(select(sa.func.count()).select_from(LoginAttempt)
                      .where(LoginAttempt.kind == AttemptKind.PHONE_CODE)).one() == 0


# ---------------------------------------------------------------- the Contacts port


def test_contacts_are_the_active_users_of_the_sessions_tenant(svc, tenants):
    demo, acme = tenants
    ann = sign_up(svc, demo)
    pro = sign_up(svc, demo, "pro@example.com", "Pat Pro", role="professional")
    gone = sign_up(svc, demo, "gone@example.com", "Gone Away")
    other = sign_up(svc, acme, "other@example.com", "Other Tenant")
    with svc.db.tenant_session(demo.id) as s:
        s.get(User, gone.id).status = UserStatus.SUSPENDED
        s.get(User, pro.id).role = Role.ADMIN
        s.get(User, ann.id).email_verified_at = utcnow()
        seeded = User(email="seeded@example.com", password_hash="-", role=Role.CLIENT, tenant_id=demo.id)
        s.add(seeded)  # made by hand: no profile, so no full name
        s.flush()
        seeded_id = seeded.id
    with svc.db.tenant_session(demo.id) as s:
        found = AccountContacts().contacts(s, [ann.id, pro.id, gone.id, other.id, seeded_id, 10_000])
        admins = AccountContacts().admins(s)
    assert set(found) == {ann.id, pro.id, seeded_id}, "suspended, other-tenant and unknown users are absent"
    assert found[seeded_id].name == "seeded", "no profile: the email's local part"
    assert (found[ann.id].email, found[ann.id].name, found[ann.id].role) == ("ann@example.com", "Ann Lee", "client")
    assert found[ann.id].email_verified and not found[pro.id].email_verified
    assert found[ann.id].phone == ""
    assert admins == [pro.id]
    with svc.db.tenant_session(acme.id) as s:
        assert AccountContacts().admins(s) == []
        assert set(AccountContacts().contacts(s, [ann.id, other.id])) == {other.id}
