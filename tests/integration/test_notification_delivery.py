"""The delivery pipeline end to end, on SQLite and PostgreSQL: services wired by bootstrap with the real SendGrid and
Twilio adapters pointed at the local fakes (tests/fakes/), the provider webhooks and the one-click unsubscribe through
the app's HTTP endpoints.

What the issue asks of delivery: one row per (event, recipient, channel) sent exactly once; 5xx and timeouts retried
after a backoff, 4xx failed at once with the provider's reason and an admin alert; signed status webhooks accepted and
forged ones refused; a hard bounce stops email to the address; an unsubscribe link turns off exactly its cell; with
Redis down the use cases still succeed and the sweeper sends every waiting row once; no tenant touches another's rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select
from twilio.request_validator import RequestValidator

import backend.bootstrap as bootstrap
from backend.accounts.models import User
from backend.bootstrap import Services, build_services
from backend.config import Settings
from backend.db import utcnow
from backend.identity import Caller, Role, TenantPublic
from backend.jobqueue import CeleryJobQueue, InlineJobQueue, make_celery
from backend.notifications.adapters.sendgrid_email import SendGridEmailSender
from backend.notifications.adapters.twilio_sms import TwilioSmsSender
from backend.notifications.catalogue import CATALOGUE, Event
from backend.notifications.models import Channel, DeliveryStatus, EmailSuppression, Notification
from backend.notifications.ports import DeliveryError, format_reference
from backend.notifications.webhooks import SENDGRID_EVENTS_PATH, TWILIO_STATUS_PATH
from backend.tenancy.models import Tenant
from marketplace_app.api import api
from tests.conftest import _truncate, app_url, make_services
from tests.fakes.sendgrid_server import SIGNATURE_HEADER, TIMESTAMP_HEADER, FakeSendGrid, SentMail
from tests.fakes.twilio_server import FakeTwilio

API_KEY = "SG.delivery-test.secret"
SENDER = "hello@demo-homes.example"
TWILIO_SID = "AC" + "d" * 32
TWILIO_TOKEN = "twilio-test-auth-token"
FROM_NUMBER = "+15017122661"
PRO_PHONE = "+14155550123"
PASSWORD = "a-good-password"
APP_URL = "http://localhost:3000"  # the default PUBLIC_URL: demo is served there, acme on acme.localhost:3000
ACME_URL = "http://acme.localhost:3000"
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every enqueue is refused
SHORT_TIMEOUT = 0.4  # the injected hangs last 3 s
# SMS outside 08:00-21:00 UTC waits for the morning: the clock is pinned to an afternoon, one that has passed (so that
# rows it stamps are "old" for the sweeper, which runs on the real time).
AFTERNOON = (datetime.now(UTC) - timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
QUOTE = dict(CATALOGUE[Event.QUOTE_RECEIVED].sample)
MATCH = dict(CATALOGUE[Event.LEAD_MATCHED].sample)


@dataclass
class Clock:
    now: datetime = AFTERNOON

    def __call__(self) -> datetime:
        return self.now

    def pass_(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Env:
    svc: Services
    sendgrid: FakeSendGrid
    twilio: FakeTwilio
    client: TestClient
    clock: Clock
    demo: TenantPublic
    acme: TenantPublic
    users: dict[str, Caller] = field(default_factory=dict)

    # -- acting -----------------------------------------------------------------------------------------------------

    def notify(self, tenant: TenantPublic, event: Event, who: Sequence[str], *, key: str,
               context: dict | None = None) -> list[int]:
        """What a use case does: rows in its transaction, then one job per email/SMS row after commit."""
        with self.svc.db.tenant_session(tenant.id) as session:
            ids = self.svc.notifications.notify(session, tenant, event, [self.users[u].id for u in who], key=key,
                                                context=context or CATALOGUE[event].sample, link="/requests/1")
        return ids

    def deliver(self, tenant: TenantPublic, note_id: int) -> str:
        return self.svc.notifications.deliver(tenant.id, note_id)

    # -- reading ------------------------------------------------------------------------------------------------------

    def row(self, tenant: TenantPublic, note_id: int) -> Notification:
        with self.svc.db.tenant_session(tenant.id) as session:
            return session.get(Notification, note_id)

    def rows(self, tenant: TenantPublic, **where) -> list[Notification]:
        with self.svc.db.tenant_session(tenant.id) as session:
            query = select(Notification).order_by(Notification.id)
            for name, value in where.items():
                query = query.where(getattr(Notification, name) == value)
            return list(session.exec(query).all())

    def one(self, tenant: TenantPublic, ids: Sequence[int], channel: Channel) -> Notification:
        [row] = [r for r in (self.row(tenant, i) for i in ids) if r.channel == channel]
        return row

    def mails(self, tenant: TenantPublic, note_id: int) -> list[SentMail]:
        """What SendGrid accepted for this row (its reference travels as the custom arg "ref")."""
        reference = format_reference(tenant.id, note_id)
        return [m for m in self.sendgrid.sent if m.custom_args.get("ref") == reference]

    def texts(self, tenant: TenantPublic, note_id: int) -> list[dict]:
        reference = format_reference(tenant.id, note_id)
        return [m for m in self.twilio.messages if m["status_callback"].endswith(f"?ref={reference}")]

    def suppressed(self, tenant: TenantPublic) -> list[str]:
        with self.svc.db.tenant_session(tenant.id) as session:
            return list(session.exec(select(EmailSuppression.email)).all())


# ---------------------------------------------------------------------------------------------------------------
# Wiring
# ---------------------------------------------------------------------------------------------------------------

def provider_settings(sendgrid: FakeSendGrid, twilio: FakeTwilio) -> dict:
    """The settings a deployment with SendGrid and Twilio has, pointed at the fakes."""
    return {"sendgrid_api_key": API_KEY, "sendgrid_api_host": sendgrid.url, "email_from": SENDER,
            "sendgrid_webhook_public_key": sendgrid.public_key, "twilio_account_sid": TWILIO_SID,
            "twilio_auth_token": TWILIO_TOKEN, "twilio_from_number": FROM_NUMBER, "twilio_api_base": twilio.url,
            "public_url": APP_URL}


def services_with_dead_redis(database_url: str | None, data_dir, **overrides) -> Services:
    """make_services' settings, but the jobs go to Celery on a broker that refuses every connection. Only the job
    queue's broker is down (chat presence and the rest stay in process, as the suite runs them)."""
    if database_url and database_url.startswith("postgresql"):
        overrides = {"database_app_url": app_url(database_url), **overrides}
    settings = Settings(**{"environment": "test", "database_url": database_url, "data_dir": data_dir,
                           "redis_url": None, "argon2_time_cost": 1, "argon2_memory_kib": 8 * 1024,
                           "argon2_parallelism": 1, **overrides})
    jobs = CeleryJobQueue(make_celery(settings.model_copy(update={"redis_url": DEAD_REDIS})))
    return build_services(settings, jobs=jobs, dev_tools=True)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSendGrid, FakeTwilio]]:
    with FakeSendGrid(api_key=API_KEY, verified_senders={SENDER}) as sendgrid, \
            FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, from_numbers={FROM_NUMBER}) as twilio:
        yield sendgrid, twilio


def _environment(request, tmp_path, fakes, monkeypatch, *, redis_down: bool = False) -> Iterator[Env]:
    sendgrid, twilio = fakes
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    build = services_with_dead_redis if redis_down else make_services
    svc = build(url, tmp_path, **provider_settings(sendgrid, twilio))
    if url:
        _truncate(svc)
    try:
        clock = Clock()
        svc.notifications.clock = clock
        with svc.db.platform_session() as session:
            for slug, name in (("demo", "Demo Homes"), ("acme", "Acme Pros")):
                session.add(Tenant(slug=slug, name=name, payment_provider="demo"))
        monkeypatch.setattr(bootstrap, "_services", svc)
        env = Env(svc, sendgrid, twilio, TestClient(api, base_url=APP_URL), clock, svc.tenants.by_slug("demo"),
                  svc.tenants.by_slug("acme"))
        if not redis_down:
            _people(env)
        yield env
    finally:
        svc.close()


def _people(env: Env) -> None:
    """Ann (client) and Pat (pro, verified phone) and Ada (admin) at demo; Sam (client) at acme. Signing up sends the
    verification email through SendGrid already (the legacy path), which the tests tell apart by reference."""
    for tenant, name, email, role in ((env.demo, "ann", "ann@example.com", Role.CLIENT),
                                      (env.demo, "pat", "pat@example.com", Role.PROFESSIONAL),
                                      (env.demo, "ada", "ada@example.com", Role.CLIENT),
                                      (env.acme, "sam", "sam@example.com", Role.CLIENT)):
        actor, _ = env.svc.accounts.sign_up(tenant, {"email": email, "password": PASSWORD,
                                                     "full_name": name.title(), "role": role})
        env.users[name] = actor
    with env.svc.db.tenant_session(env.demo.id) as session:
        pat = session.get(User, env.users["pat"].id)
        pat.phone_e164, pat.phone_verified_at = PRO_PHONE, utcnow()
        session.get(User, env.users["ada"].id).role = Role.ADMIN  # there is no sign-up as admin
    ada = env.users["ada"]
    env.users["ada"] = Caller(role=Role.ADMIN, id=ada.id, tenant_id=ada.tenant_id, email=ada.email)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path, fakes, monkeypatch) -> Iterator[Env]:
    yield from _environment(request, tmp_path, fakes, monkeypatch)


@pytest.fixture(params=["sqlite", "postgresql"])
def redis_down(request, tmp_path, fakes, monkeypatch) -> Iterator[Env]:
    yield from _environment(request, tmp_path, fakes, monkeypatch, redis_down=True)


def short_timeouts(env: Env) -> None:
    """The adapters as bootstrap builds them, with a timeout the injected hangs outlast (bootstrap's is 10 s and
    there is no setting for it)."""
    settings = env.svc.settings
    env.svc.notifications.email = SendGridEmailSender(API_KEY, SENDER, host=settings.sendgrid_api_host,
                                                      timeout=SHORT_TIMEOUT)
    env.svc.notifications.sms = TwilioSmsSender(TWILIO_SID, TWILIO_TOKEN, from_number=FROM_NUMBER,
                                                base_url=settings.twilio_api_base, timeout=SHORT_TIMEOUT)


def test_bootstrap_wires_the_providers_from_the_settings(env):
    assert isinstance(env.svc.notifications.email, SendGridEmailSender)
    assert isinstance(env.svc.notifications.sms, TwilioSmsSender)
    assert env.svc.notifications.status_callback_url == f"{APP_URL}{TWILIO_STATUS_PATH}"
    # each sign-up's verification email went to SendGrid, from the marketplace's name
    assert sorted(m.recipients[0] for m in env.sendgrid.sent) == ["ada@example.com", "ann@example.com",
                                                                   "pat@example.com", "sam@example.com"]
    assert {m.sender["name"] for m in env.sendgrid.sent} == {"Demo Homes", "Acme Pros"}


# ---------------------------------------------------------------------------------------------------------------
# Email through SendGrid
# ---------------------------------------------------------------------------------------------------------------

def test_an_email_reaches_sendgrid_once_with_both_bodies_and_one_click_unsubscribe(env):
    ids = env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    [note_id] = ids  # the in-app row is stored, not delivered

    assert env.svc.jobs.deliver_notification(env.demo.id, note_id) == "sent"
    assert env.svc.jobs.deliver_notification(env.demo.id, note_id) == "already-sent"  # a retried job

    [mail] = env.mails(env.demo, note_id)
    row = env.row(env.demo, note_id)
    assert (row.status, row.attempts, row.provider_id) == (DeliveryStatus.SENT, 1, mail.message_id)
    assert mail.recipients == ["ann@example.com"]
    assert mail.sender == {"email": SENDER, "name": "Demo Homes"}
    assert mail.subject == row.subject and "Alex Rivera" in mail.subject
    assert [c["type"] for c in mail.payload["content"]] == ["text/plain", "text/html"]
    assert "Alex Rivera" in mail.content("text/plain") and "<html" in mail.content("text/html").lower()
    assert row.unsubscribe_url.startswith(f"{APP_URL}/unsubscribe?token=")
    one_click = row.unsubscribe_url.replace("/unsubscribe?", "/api/v1/unsubscribe?")
    assert mail.headers["List-Unsubscribe"] == f"<{one_click}>"
    assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert row.unsubscribe_url in mail.content("text/plain")  # the footer link opens the page
    assert mail.categories == ["quote_received"]
    [item] = env.svc.notifications.inbox(env.users["ann"])  # and the app shows it, linked to the request
    assert "Alex Rivera" in item.title and item.link == "/requests/1"


def test_a_503_waits_out_its_backoff_and_the_email_is_sent_exactly_once(env):
    [note_id] = env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    env.sendgrid.fail_next(1, 503)

    with pytest.raises(DeliveryError, match="SendGrid answered 503"):  # raised for Celery's retry
        env.svc.jobs.deliver_notification(env.demo.id, note_id)

    row = env.row(env.demo, note_id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1) and "503" in row.last_error
    assert env.clock.now < row.next_attempt_at <= env.clock.now + timedelta(seconds=2)
    tried = len(env.sendgrid.requests)
    assert env.deliver(env.demo, note_id) == "later"  # Celery retrying too early does not call SendGrid
    assert len(env.sendgrid.requests) == tried and env.mails(env.demo, note_id) == []

    env.clock.pass_(timedelta(seconds=3))
    assert (env.demo.id, note_id) in env.svc.notifications.due()
    assert env.deliver(env.demo, note_id) == "sent"
    assert env.deliver(env.demo, note_id) == "already-sent"

    assert len(env.mails(env.demo, note_id)) == 1
    row = env.row(env.demo, note_id)
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == (DeliveryStatus.SENT, 2, "", None)


def test_a_400_fails_at_once_with_sendgrids_reason_and_alerts_the_admin_in_the_app(env):
    [note_id] = env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    env.sendgrid.fail_next(1, 400, message="Does not contain a valid address.")
    sent_before = len(env.sendgrid.sent)

    assert env.svc.jobs.deliver_notification(env.demo.id, note_id) == "failed"  # no raise: Celery does not retry
    tried = len(env.sendgrid.requests)
    assert env.deliver(env.demo, note_id) == "failed"
    env.clock.pass_(timedelta(hours=1))
    assert (env.demo.id, note_id) not in env.svc.notifications.due()

    assert len(env.sendgrid.requests) == tried  # never retried
    row = env.row(env.demo, note_id)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 1)
    assert row.last_error == "SendGrid refused the message: Does not contain a valid address."
    admin = env.users["ada"]
    [alert] = env.svc.notifications.inbox(admin)
    assert alert.title == "Email to ann@example.com failed" and alert.link == "/admin/notifications"
    assert row.last_error in alert.body
    assert [(d.id, d.last_error, d.can_retry) for d in env.svc.notifications.failed_deliveries(admin)] == [
        (note_id, row.last_error, True)]
    # the alert is in-app only: a failing email channel sends no email about itself
    assert len(env.sendgrid.sent) == sent_before
    assert env.rows(env.demo, event="admin_delivery_failed", channel=Channel.EMAIL) == []


def test_a_sendgrid_timeout_is_transient_and_the_retry_carries_the_same_message_id(env):
    short_timeouts(env)
    [note_id] = env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    env.sendgrid.hang_next(1, seconds=3)
    started = time.monotonic()

    with pytest.raises(DeliveryError, match="SendGrid could not be reached"):
        env.deliver(env.demo, note_id)

    assert time.monotonic() - started < 2
    row = env.row(env.demo, note_id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    env.clock.pass_(timedelta(seconds=3))
    assert env.deliver(env.demo, note_id) == "sent"
    assert env.deliver(env.demo, note_id) == "already-sent"
    # SendGrid took the first attempt without answering in time: the second carries the same Message-ID, by which
    # the receiving server drops the copy
    first, second = env.mails(env.demo, note_id)
    assert first.headers["Message-ID"] == second.headers["Message-ID"]
    assert env.row(env.demo, note_id).attempts == 2


# ---------------------------------------------------------------------------------------------------------------
# SMS through Twilio
# ---------------------------------------------------------------------------------------------------------------

def test_a_text_goes_to_the_verified_phone_and_twilios_signed_status_marks_it_delivered(env):
    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1")
    sms = env.one(env.demo, ids, Channel.SMS)
    reference = format_reference(env.demo.id, sms.id)

    assert env.svc.jobs.deliver_notification(env.demo.id, sms.id) == "sent"
    assert env.svc.jobs.deliver_notification(env.demo.id, sms.id) == "already-sent"

    [text] = env.twilio.messages
    assert (text["to"], text["from"], text["body"]) == (PRO_PHONE, FROM_NUMBER, sms.body)
    assert text["status_callback"] == f"{APP_URL}{TWILIO_STATUS_PATH}?ref={reference}"
    assert len(text["body"]) <= 160
    row = env.row(env.demo, sms.id)
    assert (row.status, row.attempts, row.provider_id) == (DeliveryStatus.SENT, 1, text["sid"])

    callback = env.twilio.status_callback(text["sid"], "delivered")
    # signed with another account's token: a signature anyone could make
    forged_signature = RequestValidator("not-the-accounts-token").compute_signature(callback.url, callback.params)
    forged = {**callback.headers, "X-Twilio-Signature": forged_signature}
    assert env.client.post(callback.url, content=callback.body, headers=forged).status_code == 403
    unsigned = {"Content-Type": callback.headers["Content-Type"]}
    assert env.client.post(callback.url, content=callback.body, headers=unsigned).status_code == 403
    moved = callback.url.replace(f"n{sms.id}", f"n{sms.id + 1}")  # Twilio signed the URL: its ref cannot change
    assert env.client.post(moved, content=callback.body, headers=callback.headers).status_code == 403
    assert env.row(env.demo, sms.id).status == DeliveryStatus.SENT

    response = env.client.post(callback.url, content=callback.body, headers=callback.headers)
    assert response.status_code == 200 and response.json() == {"updated": 1}
    row = env.row(env.demo, sms.id)
    assert row.status == DeliveryStatus.DELIVERED and row.delivered_at is not None


def test_twilio_failure_callback_fails_the_text_with_the_carriers_reason(env):
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)
    env.deliver(env.demo, sms.id)
    [text] = env.twilio.messages

    callback = env.twilio.status_callback(text["sid"], "undelivered")
    assert env.client.post(callback.url, content=callback.body, headers=callback.headers).json() == {"updated": 1}

    row = env.row(env.demo, sms.id)
    assert row.status == DeliveryStatus.FAILED
    assert row.last_error.endswith("Twilio undelivered: error 30003, unreachable destination handset")
    late = env.twilio.status_callback(text["sid"], "delivered")  # a late "delivered" does not undo the failure
    assert env.client.post(late.url, content=late.body, headers=late.headers).json() == {"updated": 0}
    assert env.row(env.demo, sms.id).status == DeliveryStatus.FAILED


def test_twilio_503_then_success_sends_one_text_in_two_attempts(env):
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)
    env.twilio.fail_next(1, 503)

    with pytest.raises(DeliveryError, match="Twilio answered 503"):
        env.deliver(env.demo, sms.id)
    assert env.twilio.messages == [] and env.deliver(env.demo, sms.id) == "later"

    env.clock.pass_(timedelta(seconds=3))
    assert env.deliver(env.demo, sms.id) == "sent"
    assert env.deliver(env.demo, sms.id) == "already-sent"
    assert len(env.texts(env.demo, sms.id)) == 1
    assert (env.row(env.demo, sms.id).status, env.row(env.demo, sms.id).attempts) == (DeliveryStatus.SENT, 2)


def test_twilio_400_fails_at_once_with_its_code_and_alerts_the_admin(env):
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)
    env.twilio.fail_next(1, 400, code=21408, message="Permission to send an SMS has not been enabled for the region")

    assert env.deliver(env.demo, sms.id) == "failed"
    tried = len(env.twilio.requests)
    env.clock.pass_(timedelta(hours=1))
    assert env.deliver(env.demo, sms.id) == "failed"
    assert (env.demo.id, sms.id) not in env.svc.notifications.due()

    assert len(env.twilio.requests) == tried and env.twilio.messages == []
    row = env.row(env.demo, sms.id)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 1)
    assert row.last_error == "21408: Permission to send an SMS has not been enabled for the region"
    [alert] = env.svc.notifications.inbox(env.users["ada"])
    assert PRO_PHONE in alert.title and row.last_error in alert.body


def test_a_twilio_timeout_is_transient(env):
    short_timeouts(env)
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)
    env.twilio.hang_next(1, seconds=3)
    started = time.monotonic()

    with pytest.raises(DeliveryError, match="Twilio could not be reached"):
        env.deliver(env.demo, sms.id)

    assert time.monotonic() - started < 2
    row = env.row(env.demo, sms.id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    env.clock.pass_(timedelta(seconds=3))
    assert env.deliver(env.demo, sms.id) == "sent"
    assert env.row(env.demo, sms.id).attempts == 2


def test_no_text_without_a_verified_phone(env):
    with env.svc.db.tenant_session(env.demo.id) as session:
        pat = session.get(User, env.users["pat"].id)
        pat.phone_verified_at = None  # the number is there, its code never came back

    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1")

    assert {env.row(env.demo, i).channel for i in ids} == {Channel.EMAIL}
    assert env.rows(env.demo, channel=Channel.SMS) == []


# ---------------------------------------------------------------------------------------------------------------
# SendGrid's Event Webhook
# ---------------------------------------------------------------------------------------------------------------

def sent_email(env: Env, tenant: TenantPublic, who: str, key: str) -> tuple[Notification, SentMail]:
    [note_id] = env.notify(tenant, Event.QUOTE_RECEIVED, [who], key=key)
    assert env.deliver(tenant, note_id) == "sent"
    [mail] = env.mails(tenant, note_id)
    return env.row(tenant, note_id), mail


def post_events(env: Env, headers: dict[str, str], body: bytes):
    return env.client.post(SENDGRID_EVENTS_PATH, content=body, headers=headers)


def test_a_signed_delivered_event_marks_the_email_delivered(env):
    row, mail = sent_email(env, env.demo, "ann", "quote:1")
    headers, body = env.sendgrid.signed_request([env.sendgrid.event(mail, "processed"),
                                                 env.sendgrid.event(mail, "delivered"),
                                                 env.sendgrid.event(mail, "open")])

    response = post_events(env, headers, body)

    assert response.status_code == 200 and response.json() == {"updated": 1}
    assert env.row(env.demo, row.id).status == DeliveryStatus.DELIVERED
    assert post_events(env, headers, body).json() == {"updated": 0}  # SendGrid's retry of the same post


def test_a_hard_bounce_fails_the_email_and_stops_email_to_the_address(env):
    row, mail = sent_email(env, env.demo, "ann", "quote:1")
    headers, body = env.sendgrid.signed_request([env.sendgrid.event(mail, "bounce")])

    assert post_events(env, headers, body).json() == {"updated": 1}

    bounced = env.row(env.demo, row.id)
    assert bounced.status == DeliveryStatus.FAILED
    assert "550 5.1.1 The email account that you tried to reach does not exist." in bounced.last_error
    assert env.suppressed(env.demo) == ["ann@example.com"]
    assert env.suppressed(env.acme) == []

    sent_before = len(env.sendgrid.sent)
    ids = env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:2")
    assert ids == []  # nothing to deliver
    skipped = env.rows(env.demo, dedupe_key=f"quote:2:{env.users['ann'].id}:email")
    assert [(r.status, "bounced" in r.last_error) for r in skipped] == [(DeliveryStatus.SKIPPED, True)]
    assert [r.channel for r in env.rows(env.demo, dedupe_key=f"quote:2:{env.users['ann'].id}:in_app")] == [
        Channel.IN_APP]  # the app still tells her
    assert len(env.sendgrid.sent) == sent_before


def test_a_soft_bounce_fails_the_email_but_suppresses_nothing(env):
    row, mail = sent_email(env, env.demo, "ann", "quote:1")
    headers, body = env.sendgrid.signed_request([env.sendgrid.event(mail, "bounce", type="blocked")])

    assert post_events(env, headers, body).json() == {"updated": 1}

    assert env.row(env.demo, row.id).status == DeliveryStatus.FAILED
    assert env.suppressed(env.demo) == []


def test_forged_stale_tampered_and_unsigned_events_are_refused_and_change_nothing(env):
    row, mail = sent_email(env, env.demo, "ann", "quote:1")
    events = [env.sendgrid.event(mail, "bounce")]
    headers, body = env.sendgrid.signed_request(events)
    with FakeSendGrid() as impostor:  # its own key pair
        forged, _ = impostor.signed_request(events)
    stale, stale_body = env.sendgrid.signed_request(events, timestamp=int(time.time()) - 3600)
    tampered = body.replace(b'"bounce"', b'"delivered"', 1)
    assert tampered != body

    attempts = [({**headers, SIGNATURE_HEADER: forged[SIGNATURE_HEADER]}, body),
                (stale, stale_body),
                (headers, tampered),
                ({"Content-Type": "application/json"}, body),
                ({**headers, SIGNATURE_HEADER: ""}, body),
                ({**headers, TIMESTAMP_HEADER: str(int(headers[TIMESTAMP_HEADER]) + 1)}, body)]
    for attempt_headers, attempt_body in attempts:
        assert post_events(env, attempt_headers, attempt_body).status_code == 403

    assert env.row(env.demo, row.id).status == DeliveryStatus.SENT
    assert env.suppressed(env.demo) == []


def test_without_a_configured_verification_key_every_event_is_refused(env):
    row, mail = sent_email(env, env.demo, "ann", "quote:1")
    headers, body = env.sendgrid.signed_request([env.sendgrid.event(mail, "bounce")])
    env.svc.settings.sendgrid_webhook_public_key = None

    assert post_events(env, headers, body).status_code == 403

    env.svc.settings.sendgrid_webhook_public_key = "bm90IGEga2V5"  # unreadable: refused as well, not a 500
    assert post_events(env, headers, body).status_code == 403
    assert env.row(env.demo, row.id).status == DeliveryStatus.SENT
    assert env.suppressed(env.demo) == []


def test_a_twilio_callback_is_refused_without_a_configured_auth_token(env):
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)
    env.deliver(env.demo, sms.id)
    callback = env.twilio.status_callback(env.twilio.messages[0]["sid"], "delivered")
    env.svc.settings.twilio_auth_token = None

    assert env.client.post(callback.url, content=callback.body, headers=callback.headers).status_code == 403
    assert env.row(env.demo, sms.id).status == DeliveryStatus.SENT


# ---------------------------------------------------------------------------------------------------------------
# One-click unsubscribe (RFC 8058)
# ---------------------------------------------------------------------------------------------------------------

def one_click_url(mail: SentMail) -> str:
    header = mail.headers["List-Unsubscribe"]
    assert header.startswith("<") and header.endswith(">")
    return header[1:-1]


def matrix(env: Env, who: str) -> dict[tuple[str, str], bool]:
    return {(row.group, cell.channel): cell.enabled
            for row in env.svc.notifications.preferences(env.users[who]) for cell in row.cells}


def test_one_click_unsubscribe_turns_off_exactly_the_cell_it_names(env):
    _, mail = sent_email(env, env.demo, "ann", "quote:1")
    url = one_click_url(mail)
    assert urlsplit(url).path == "/api/v1/unsubscribe"
    token = parse_qs(urlsplit(url).query)["token"][0]
    before = matrix(env, "ann")
    assert before[("quotes", "email")] is True
    one_click = {"Content-Type": "application/x-www-form-urlencoded"}

    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert env.client.post(f"{APP_URL}/api/v1/unsubscribe?token={tampered}", content=b"List-Unsubscribe=One-Click",
                           headers=one_click).status_code == 400
    elsewhere = env.client.post(f"{ACME_URL}/api/v1/unsubscribe?token={token}", content=b"List-Unsubscribe=One-Click",
                                headers=one_click)
    assert elsewhere.status_code == 400 and "not valid" in elsewhere.text
    assert matrix(env, "ann") == before

    response = env.client.post(url, content=b"List-Unsubscribe=One-Click", headers=one_click)

    assert response.status_code == 200
    assert response.text == "You will no longer get emails about Quotes."
    after = matrix(env, "ann")
    assert after == {**before, ("quotes", "email"): False}
    assert env.client.post(url, content=b"List-Unsubscribe=One-Click", headers=one_click).status_code == 200
    # the next quote: in the app, not by email
    assert env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:2") == []
    assert [r.channel for r in env.rows(env.demo, event="quote_received") if r.dedupe_key.startswith("quote:2:")] == [
        Channel.IN_APP]
    # another user's matrix is untouched
    assert matrix(env, "pat")[("quotes", "email")] is True


# ---------------------------------------------------------------------------------------------------------------
# Redis down: deliveries wait, nothing is lost
# ---------------------------------------------------------------------------------------------------------------

def test_with_redis_down_use_cases_succeed_and_the_sweeper_sends_every_waiting_row_once(redis_down):
    env = redis_down
    started = time.monotonic()
    # use cases whose deliveries cannot be enqueued: each still succeeds (its rows are committed)
    ann, _ = env.svc.accounts.sign_up(env.demo, {"email": "ann@example.com", "password": PASSWORD,
                                                 "full_name": "Ann", "role": "client"})
    pat, _ = env.svc.accounts.sign_up(env.demo, {"email": "pat@example.com", "password": PASSWORD,
                                                 "full_name": "Pat", "role": "professional"})
    sam, _ = env.svc.accounts.sign_up(env.acme, {"email": "sam@example.com", "password": PASSWORD,
                                                 "full_name": "Sam", "role": "client"})
    env.users.update(ann=ann, pat=pat, sam=sam)
    assert env.svc.accounts.start_phone_verification(env.demo, pat, PRO_PHONE).endswith("0123")
    with env.svc.db.tenant_session(env.demo.id) as session:  # as if Pat had typed the code
        user = session.get(User, pat.id)
        user.phone_verified_at = utcnow()
    for tenant, event, who, key in ((env.demo, Event.QUOTE_RECEIVED, ["ann"], "quote:1"),
                                    (env.demo, Event.LEAD_MATCHED, ["pat"], "match:1"),
                                    (env.acme, Event.QUOTE_RECEIVED, ["sam"], "quote:7")):
        for note_id in env.notify(tenant, event, who, key=key):
            env.svc.jobs.deliver_notification(tenant.id, note_id)  # refused by the broker: logged, not raised
    assert time.monotonic() - started < 15  # the first refusal pauses enqueuing: no request waits on each row

    waiting = [(t, r) for t in (env.demo, env.acme) for r in env.rows(t) if r.channel != Channel.IN_APP]
    # 3 verification emails, the phone code, the quote email (demo), the match email and text, the quote (acme)
    assert len(waiting) == 8
    assert {(r.status, r.attempts) for _, r in waiting} == {(DeliveryStatus.PENDING, 0)}
    assert env.sendgrid.sent == [] and env.twilio.messages == []

    # Redis is back (a worker runs the jobs) and two minutes have passed: the timers find every waiting row
    env.svc.jobs = InlineJobQueue(env.svc, raise_errors=True)
    for tenant in (env.demo, env.acme):
        with env.svc.db.tenant_session(tenant.id) as session:
            session.execute(sa.update(Notification).values(created_at=utcnow() - timedelta(minutes=2)))
    totals = env.svc.run_timers()

    assert totals["deliveries_due"] == 8
    for tenant, row in waiting:
        after = env.row(tenant, row.id)
        assert (after.status, after.attempts) == (DeliveryStatus.SENT, 1), (row.channel, row.event)
        sent = env.texts(tenant, row.id) if row.channel == Channel.SMS else env.mails(tenant, row.id)
        assert len(sent) == 1, (row.channel, row.event)
    assert len(env.sendgrid.sent) == 6 and len(env.twilio.messages) == 2

    assert env.svc.run_timers()["deliveries_due"] == 0  # the next sweep finds nothing to send again
    assert len(env.sendgrid.sent) == 6 and len(env.twilio.messages) == 2


# ---------------------------------------------------------------------------------------------------------------
# Tenant isolation and idempotence
# ---------------------------------------------------------------------------------------------------------------

def test_a_status_update_naming_another_tenant_touches_no_row_of_the_wrong_tenant(env):
    demo_row, demo_mail = sent_email(env, env.demo, "ann", "quote:1")
    acme_row, acme_mail = sent_email(env, env.acme, "sam", "quote:1")
    # signed (as if SendGrid relayed what a sender put in the custom arg), but the reference names the other tenant
    crossed = [env.sendgrid.event(demo_mail, "bounce", ref=format_reference(env.acme.id, demo_row.id)),
               env.sendgrid.event(acme_mail, "delivered", ref=format_reference(env.demo.id, acme_row.id))]
    headers, body = env.sendgrid.signed_request(crossed)

    assert post_events(env, headers, body).json() == {"updated": 0}

    assert env.row(env.demo, demo_row.id).status == DeliveryStatus.SENT
    assert env.row(env.acme, acme_row.id).status == DeliveryStatus.SENT
    assert env.suppressed(env.demo) == [] and env.suppressed(env.acme) == []
    # and a reference-less event is matched by SendGrid's message id to its own tenant's row only
    by_id = env.sendgrid.event(acme_mail, "delivered", ref="")
    headers, body = env.sendgrid.signed_request([by_id])
    assert post_events(env, headers, body).json() == {"updated": 1}
    assert env.row(env.acme, acme_row.id).status == DeliveryStatus.DELIVERED
    assert env.row(env.demo, demo_row.id).status == DeliveryStatus.SENT


def test_a_twilio_callback_naming_another_tenants_row_changes_nothing(env):
    sms = env.one(env.demo, env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1"), Channel.SMS)
    env.deliver(env.demo, sms.id)
    sid = env.twilio.messages[0]["sid"]
    # Twilio signs whatever callback URL it was given; one naming acme with demo's row id must not reach demo's row
    foreign = f"{APP_URL}{TWILIO_STATUS_PATH}?ref={format_reference(env.acme.id, sms.id)}"
    callback = env.twilio.status_callback(sid, "undelivered")
    signed = env.twilio.status_callback(sid, "undelivered", url=foreign)
    assert callback.url != signed.url

    assert env.client.post(signed.url, content=signed.body, headers=signed.headers).json() == {"updated": 0}
    assert env.row(env.demo, sms.id).status == DeliveryStatus.SENT


def test_a_celery_retry_after_success_sends_nothing(env, monkeypatch):
    from backend.jobs import deliver_notification as task

    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pat"], key="match:1")
    for note_id in ids:
        assert task.apply(args=(env.demo.id, note_id)).get() == "sent"  # the worker's task body, run here
    mails, texts = len(env.sendgrid.sent), len(env.twilio.messages)

    for note_id in ids:  # the broker redelivers (acks_late: a worker died before acking), twice
        assert task.apply(args=(env.demo.id, note_id)).get() == "already-sent"
        assert env.svc.jobs.deliver_notification(env.demo.id, note_id) == "already-sent"

    assert (len(env.sendgrid.sent), len(env.twilio.messages)) == (mails, texts)
    assert {env.row(env.demo, i).attempts for i in ids} == {1}
