"""STOP end to end, on SQLite and PostgreSQL: services wired by bootstrap, the real Twilio adapter against the local
fake (tests/fakes/twilio_server.py), its signed status callback through the app's HTTP endpoint (the delivery suite's
environment). A recipient who replied STOP gets no more texts, their email goes on, and verifying the number again
with a texted code resumes texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from backend.accounts.models import User
from backend.accounts.service import STOPPED_NUMBER
from backend.errors import DomainError
from backend.notifications.catalogue import Event
from backend.notifications.models import Channel, DeliveryStatus, SmsSuppression
from backend.notifications.service import SMS_STOPPED
from tests.integration.test_notification_delivery import PRO_PHONE, env, fakes  # noqa: F401

OPTED_OUT_PHONE = "+15005550004"  # the fake answers every send to it with 21610, as Twilio does after a STOP


def stopped(env, tenant) -> list[str]:  # noqa: F811
    with env.svc.db.tenant_session(tenant.id) as session:
        return list(session.exec(select(SmsSuppression.phone)).all())


def post_callback(env, callback) -> dict:  # noqa: F811
    response = env.client.post(callback.url, content=callback.body, headers=callback.headers)
    assert response.status_code == 200
    return response.json()


def test_a_stop_callback_pauses_texts_email_goes_on_and_a_new_code_resumes_them(env):  # noqa: F811
    pat = env.users["pat"]
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)
    assert env.deliver(env.demo, sms.id) == "sent"
    [text] = env.twilio.messages

    assert post_callback(env, env.twilio.status_callback(text["sid"], "undelivered", error_code="21610")) == {
        "updated": 1}
    row = env.row(env.demo, sms.id)
    assert row.status == DeliveryStatus.FAILED and "21610" in row.last_error
    assert stopped(env, env.demo) == [PRO_PHONE] and stopped(env, env.acme) == []
    assert env.svc.notifications.inbox(env.users["ada"]) == []  # no alert: the recipient chose it
    assert env.svc.accounts.phone(env.demo, pat).texts_paused

    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:2")
    [skipped] = env.rows(env.demo, dedupe_key=f"match:2:{pat.id}:sms")
    assert (skipped.status, skipped.last_error) == (DeliveryStatus.SKIPPED, SMS_STOPPED)
    [email_id] = ids
    assert env.deliver(env.demo, email_id) == "sent" and len(env.mails(env.demo, email_id)) == 1
    assert len(env.twilio.messages) == 1

    # pat texted START; the first code asked for gets the advice, the next one is texted
    with pytest.raises(DomainError) as told:
        env.svc.accounts.resend_phone_code(env.demo, pat)
    assert told.value.message == STOPPED_NUMBER and len(env.twilio.messages) == 1
    env.svc.accounts.resend_phone_code(env.demo, pat)
    code = re.search(r"\b(\d{6})\b", env.twilio.messages[-1]["body"]).group(1)
    assert env.twilio.messages[-1]["to"] == PRO_PHONE
    env.svc.accounts.verify_phone(env.demo, pat, code)
    assert stopped(env, env.demo) == [] and not env.svc.accounts.phone(env.demo, pat).texts_paused

    # texts resume, on pat's clock now: the verified number gave the account its time zone (14:00 UTC is 07:00
    # in Los Angeles, so this one waits for 08:00 there)
    assert env.svc.accounts.time_zone(env.demo, pat).name == "America/Los_Angeles"
    env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:3")
    [sms] = env.rows(env.demo, dedupe_key=f"match:3:{pat.id}:sms")
    los_angeles = ZoneInfo("America/Los_Angeles")
    eight_there = datetime.combine(env.clock.now.astimezone(los_angeles).date(), time(8), tzinfo=los_angeles)
    assert sms.status == DeliveryStatus.PENDING and sms.next_attempt_at == eight_there.astimezone(UTC)
    env.clock.now = sms.next_attempt_at
    assert env.deliver(env.demo, sms.id) == "sent" and env.twilio.messages[-1]["to"] == PRO_PHONE


def test_a_send_twilio_refuses_with_21610_pauses_texts_to_the_number(env):  # noqa: F811
    pat = env.users["pat"]
    with env.svc.db.tenant_session(env.demo.id) as session:
        session.get(User, pat.id).phone_e164 = OPTED_OUT_PHONE
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)

    assert env.deliver(env.demo, sms.id) == "failed"
    row = env.row(env.demo, sms.id)
    assert (row.status, row.last_error) == (DeliveryStatus.FAILED, "21610: Attempt to send to unsubscribed recipient")
    assert stopped(env, env.demo) == [OPTED_OUT_PHONE]
    assert env.svc.notifications.inbox(env.users["ada"]) == []

    tried = len(env.twilio.requests)
    env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:2")
    [skipped] = env.rows(env.demo, dedupe_key=f"match:2:{pat.id}:sms")
    assert skipped.status == DeliveryStatus.SKIPPED and len(env.twilio.requests) == tried
