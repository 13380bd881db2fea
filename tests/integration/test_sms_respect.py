"""Texts that respect the person, on SQLite and PostgreSQL (the notification service with fake channels and
contacts, as in test_notification_service): a number that replied STOP gets no more texts (security ones included)
while email goes on; quiet hours are kept on the recipient's clock, across daylight-saving changes; a transient
failure tells the job when the row is due again."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from backend.errors import DomainError
from backend.notifications.catalogue import Event
from backend.notifications.models import SmsSuppression
from backend.notifications.ports import DeliveryError, PermanentDeliveryError, StatusKind, StatusUpdate
from backend.notifications.service import SMS_STOPPED
from backend.notifications.webhooks import parse_twilio_status
from tests.integration.test_notification_service import env  # noqa: F401

PRO_PHONE = "+15125550100"  # the fixture's pro, verified phone, no time zone


def set_zone(env, who: str, zone: str) -> None:  # noqa: F811
    contact = env.contacts.people[env.demo.id][env.users[who].id]
    env.contacts.add(env.demo.id, replace(contact, time_zone=zone))


def sms_row(env, key: str, who: str = "pro"):  # noqa: F811
    (row,) = env.rows(env.demo, dedupe_key=f"{key}:{env.users[who].id}:sms")
    return row


def stopped_numbers(env, tenant) -> list[str]:  # noqa: F811
    with env.db.tenant_session(tenant.id) as s:
        return list(s.exec(select(SmsSuppression.phone)).all())


# ------------------------------------------------------------------------------------------------ STOP

def test_twilio_reports_21610_as_an_opt_out_and_nothing_else():
    stop = parse_twilio_status({"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "21610",
                                "To": PRO_PHONE}, "t1-n2")
    other = parse_twilio_status({"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30003"}, "t1-n3")
    assert stop.opted_out and stop.kind == StatusKind.FAILED and "replied STOP" in stop.reason
    assert not other.opted_out


def test_a_stop_callback_stops_texts_to_the_number_but_not_email(env):  # noqa: F811
    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")
    first = sms_row(env, "m:1")
    assert env.notifications.deliver(env.demo.id, first.id) == "sent"
    env.clock.now = datetime(2026, 6, 10, 23, 0, tzinfo=UTC)  # a text written now waits for the morning
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:2")
    held = sms_row(env, "m:2")
    assert held.next_attempt_at is not None

    stop = StatusUpdate(reference=f"t{env.demo.id}-n{first.id}", provider_id="SM1", kind=StatusKind.FAILED,
                        reason="Twilio undelivered: error 21610, the recipient replied STOP", opted_out=True)
    assert env.notifications.apply_status([stop]) == 1
    row = env.rows(env.demo, id=first.id)[0]
    assert row.status == "failed" and "21610" in row.last_error
    assert stopped_numbers(env, env.demo) == [PRO_PHONE] and stopped_numbers(env, env.acme) == []
    assert env.rows(env.demo, event="admin_delivery_failed") == []  # the recipient's choice, not a fault

    # the text held overnight is not sent in the morning
    env.clock.now = datetime(2026, 6, 11, 8, 0, tzinfo=UTC)
    assert env.notifications.deliver(env.demo.id, held.id) == "skipped"
    assert env.rows(env.demo, id=held.id)[0].last_error == SMS_STOPPED and len(env.sms.sent) == 1
    # new texts are skipped, and say why; the email of the same event still goes
    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:3")
    skipped = sms_row(env, "m:3")
    assert skipped.status == "skipped" and skipped.last_error == SMS_STOPPED and skipped.id not in ids
    (email_id,) = ids
    assert env.notifications.deliver(env.demo.id, email_id) == "sent"
    assert env.email.sent[-1].recipient == "pro@demo.test"
    # the admin cannot push the failed one through
    with pytest.raises(DomainError, match="replied STOP"):
        env.notifications.retry(env.users["admin"], first.id)
    # a repeated report changes nothing
    assert env.notifications.apply_status([stop]) == 0
    assert stopped_numbers(env, env.demo) == [PRO_PHONE]


def test_a_send_refused_with_21610_stops_texts_without_alerting_the_admins(env):  # noqa: F811
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")
    row = sms_row(env, "m:1")
    env.sms.errors.append(PermanentDeliveryError("21610: Attempt to send to unsubscribed recipient", opted_out=True))
    assert env.notifications.deliver(env.demo.id, row.id) == "failed"
    row = env.rows(env.demo, id=row.id)[0]
    assert (row.status, row.last_error) == ("failed", "21610: Attempt to send to unsubscribed recipient")
    assert stopped_numbers(env, env.demo) == [PRO_PHONE]
    assert env.rows(env.demo, event="admin_delivery_failed") == []
    # any other permanent refusal still alerts
    with env.db.tenant_session(env.demo.id) as s:
        env.notifications.resume_sms(s, PRO_PHONE)
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:2")
    env.sms.errors.append(PermanentDeliveryError("21408: Permission to send an SMS has not been enabled"))
    assert env.notifications.deliver(env.demo.id, sms_row(env, "m:2").id) == "failed"
    assert len(env.rows(env.demo, event="admin_delivery_failed")) == 1 and stopped_numbers(env, env.demo) == []


def test_a_phone_code_to_a_stopped_number_goes_only_after_the_user_was_told_to_text_start(env):  # noqa: F811
    """Security texts stop too (the carrier would block them); the phone code is the way back."""
    env.sms.errors.append(PermanentDeliveryError("21610: unsubscribed", opted_out=True))
    (code_id,) = env.notify(env.demo, Event.PHONE_CODE, ["client"], key="phone:1", context={"code": "111111"},
                            sms_to="+15125550199")
    assert env.notifications.deliver(env.demo.id, code_id) == "failed"
    assert env.notify(env.demo, Event.PHONE_CODE, ["client"], key="phone:2", context={"code": "222222"},
                      sms_to="+15125550199") == []
    with env.db.tenant_session(env.demo.id) as s:
        assert env.notifications.sms_paused(s, "+15125550199") and not env.notifications.sms_paused(s, PRO_PHONE)
        assert env.notifications.advise_start(s, "+15125550199") is True  # told once...
        assert env.notifications.advise_start(s, "+15125550199") is False  # ...then the code goes
        assert env.notifications.advise_start(s, PRO_PHONE) is False  # never stopped
    (code_id,) = env.notify(env.demo, Event.PHONE_CODE, ["client"], key="phone:3", context={"code": "333333"},
                            sms_to="+15125550199")
    assert env.notifications.deliver(env.demo.id, code_id) == "sent" and "333333" in env.sms.sent[-1].body
    # only the phone code: other texts to the number stay off until it is verified again
    with env.db.tenant_session(env.demo.id) as s:
        assert env.notifications.sms_paused(s, "+15125550199")
        env.notifications.resume_sms(s, "+15125550199")
        assert not env.notifications.sms_paused(s, "+15125550199")


# ------------------------------------------------------------------------------------------------ quiet hours

@pytest.mark.parametrize(("now", "utc_until", "new_york_until"), [
    # 23:30 UTC is 19:30 in New York (EDT): the New Yorker is texted now
    (datetime(2026, 6, 10, 23, 30, tzinfo=UTC), datetime(2026, 6, 11, 8, 0, tzinfo=UTC), None),
    # 06:00 UTC is 02:00 in New York: both wait, each for their own 08:00
    (datetime(2026, 6, 10, 6, 0, tzinfo=UTC), datetime(2026, 6, 10, 8, 0, tzinfo=UTC),
     datetime(2026, 6, 10, 12, 0, tzinfo=UTC)),
    # 14:00 UTC is 10:00 in New York: nobody waits
    (datetime(2026, 6, 10, 14, 0, tzinfo=UTC), None, None),
    # 01:30 UTC is 21:30 the evening before in New York (UTC: still night too)
    (datetime(2026, 6, 10, 1, 30, tzinfo=UTC), datetime(2026, 6, 10, 8, 0, tzinfo=UTC),
     datetime(2026, 6, 10, 12, 0, tzinfo=UTC)),
])
def test_quiet_hours_are_kept_on_the_recipients_clock(env, now, utc_until, new_york_until):  # noqa: F811
    ny_contact = env.contacts.people[env.demo.id][env.users["pro2"].id]
    env.contacts.add(env.demo.id, replace(ny_contact, phone="+12125550123", time_zone="America/New_York"))
    env.clock.now = now
    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pro", "pro2"], key="m:1")
    utc_row, ny_row = sms_row(env, "m:1", "pro"), sms_row(env, "m:1", "pro2")
    assert (utc_row.next_attempt_at, ny_row.next_attempt_at) == (utc_until, new_york_until)
    assert (utc_row.id in ids, ny_row.id in ids) == (utc_until is None, new_york_until is None)


@pytest.mark.parametrize(("now", "until"), [
    # Saturday 7 March 2026, 22:30 EST; the clocks go forward at 02:00: 08:00 on Sunday is EDT (UTC-4)
    (datetime(2026, 3, 8, 3, 30, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
    # 01:30 EST, just before the change: still that morning's 08:00 EDT
    (datetime(2026, 3, 8, 6, 30, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
    # Saturday 31 October 2026, 23:00 EDT; the clocks go back at 02:00: 08:00 on Sunday is EST (UTC-5)
    (datetime(2026, 11, 1, 3, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    # 01:30 the second time (EST, after the change)
    (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
])
def test_a_night_whose_clocks_change_still_ends_at_eight_local(env, now, until):  # noqa: F811
    set_zone(env, "pro", "America/New_York")
    env.clock.now = now
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")
    held = sms_row(env, "m:1")
    assert held.next_attempt_at == until
    env.clock.now = until - timedelta(minutes=1)
    assert env.notifications.deliver(env.demo.id, held.id) == "later"
    env.clock.now = until
    assert env.notifications.deliver(env.demo.id, held.id) == "sent"


def test_security_texts_never_wait_and_an_unknown_zone_counts_as_utc(env):  # noqa: F811
    set_zone(env, "pro", "Mars/Olympus_Mons")
    env.clock.now = datetime(2026, 6, 10, 23, 30, tzinfo=UTC)
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")
    assert sms_row(env, "m:1").next_attempt_at == datetime(2026, 6, 11, 8, 0, tzinfo=UTC)
    set_zone(env, "client", "Asia/Tokyo")  # 08:30 in Tokyo, but a code never waits anyway
    env.clock.now = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    (code_id,) = env.notify(env.demo, Event.PHONE_CODE, ["client"], key="phone:1", context={"code": "482913"},
                            sms_to="+15125550199")
    assert env.rows(env.demo, id=code_id)[0].next_attempt_at is None


# ------------------------------------------------------------------------------------------------ retries

def test_a_transient_failure_tells_the_job_when_the_row_is_due(env):  # noqa: F811
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")
    row = sms_row(env, "m:1")
    for attempt in (1, 2, 3):
        env.sms.errors.append(DeliveryError("Twilio answered 503"))
        with pytest.raises(DeliveryError) as raised:
            env.notifications.deliver(env.demo.id, row.id)
        stored = env.rows(env.demo, id=row.id)[0]
        assert stored.attempts == attempt and stored.status == "pending"
        assert raised.value.retry_in == (stored.next_attempt_at - env.clock.now).total_seconds()
        assert 2 ** attempt / 2 <= raised.value.retry_in <= 2 ** attempt
        env.clock.now = stored.next_attempt_at
    assert env.notifications.deliver(env.demo.id, row.id) == "sent"
    assert DeliveryError("from a channel").retry_in is None
