"""The notification service on SQLite and PostgreSQL, with fake channels and a fake Contacts: the preference matrix and
the marketplace's channels decide who gets what, rows are deduplicated, rendered in the tenant's branding, delivered
once however often the job runs (transient errors retried with backoff, permanent ones failed with the provider's
reason and an admin alert), a lost enqueue is found again, provider status updates suppress bounced addresses,
unsubscribe links turn off exactly one cell, and the in-app inbox and admin lists stay within their owner."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from backend.accounts.models import User
from backend.config import Settings
from backend.crypto import SecretBox
from backend.db import CrossTenantWrite, Database
from backend.errors import DomainError, NotFound, PermissionDenied, TokenInvalid, ValidationFailed
from backend.identity import Caller, Role, TenantPublic
from backend.migrate import upgrade
from backend.notifications.catalogue import CATALOGUE, Event, Group
from backend.notifications.models import (ONE_TIME_TOKEN, Channel, EmailSuppression, Notification,
                                          NotificationPreference)
from backend.notifications.ports import (Contact, DeliveryError, OutgoingEmail, OutgoingSms, PermanentDeliveryError,
                                         StatusKind, StatusUpdate)
from backend.notifications.service import MAX_ATTEMPTS, NotificationService
from backend.tenancy.models import Tenant
from backend.tenancy.service import TenantDirectory
from tests.conftest import app_url

DAYTIME = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)
NIGHT = datetime(2026, 6, 10, 23, 30, tzinfo=UTC)
QUOTE = dict(CATALOGUE[Event.QUOTE_RECEIVED].sample)
MATCH = dict(CATALOGUE[Event.LEAD_MATCHED].sample)


# ------------------------------------------------------------------------------------------------ fakes

class FakeEmail:
    """Records what it was given; raises the queued errors first, one per call."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.errors: list[Exception] = []
        self.calls = 0

    def send(self, email: OutgoingEmail) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(email)
        return f"sg-{len(self.sent)}"


class FakeSms:
    def __init__(self) -> None:
        self.sent: list[OutgoingSms] = []
        self.errors: list[Exception] = []

    def send(self, sms: OutgoingSms) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(sms)
        return f"SM{len(self.sent):032d}"


class FakeContacts:
    """People per tenant (the session's binding says which tenant is asking), as accounts would answer."""

    def __init__(self) -> None:
        self.people: dict[int, dict[int, Contact]] = {}

    def add(self, tenant_id: int, contact: Contact) -> None:
        self.people.setdefault(tenant_id, {})[contact.user_id] = contact

    def contacts(self, session: Session, user_ids: Sequence[int]) -> dict[int, Contact]:
        mine = self.people.get(session.info["tenant_id"], {})
        return {i: mine[i] for i in user_ids if i in mine}

    def admins(self, session: Session) -> list[int]:
        mine = self.people.get(session.info["tenant_id"], {})
        return sorted(c.user_id for c in mine.values() if c.role == Role.ADMIN)


@dataclass
class Clock:
    now: datetime = DAYTIME

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    db: Database
    notifications: NotificationService
    email: FakeEmail
    sms: FakeSms
    contacts: FakeContacts
    clock: Clock
    demo: TenantPublic
    acme: TenantPublic
    users: dict[str, Caller] = field(default_factory=dict)

    def rows(self, tenant: TenantPublic, **where) -> list[Notification]:
        with self.db.tenant_session(tenant.id) as s:
            query = select(Notification).order_by(Notification.id)
            for name, value in where.items():
                query = query.where(getattr(Notification, name) == value)
            return list(s.exec(query).all())

    def notify(self, tenant: TenantPublic, event: Event, users: Sequence[str], *, key: str = "k1",
               context: dict | None = None, **kwargs) -> list[int]:
        with self.db.tenant_session(tenant.id) as s:
            return self.notifications.notify(s, tenant, event, [self.users[u].id for u in users], key=key,
                                             context=CATALOGUE[event].sample if context is None else context,
                                             **kwargs)


def _settings(database_url: str | None, data_dir) -> Settings:
    extra = {"database_app_url": app_url(database_url)} if database_url else {}
    return Settings(environment="test", database_url=database_url, data_dir=data_dir, redis_url=None, **extra)


def _empty(settings: Settings) -> None:
    engine = sa.create_engine(settings.owner_database_url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"))]
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    settings = _settings(url, tmp_path)
    upgrade(settings.owner_database_url, settings)
    if url:
        _empty(settings)
    db = Database(settings)
    with db.platform_session() as s:
        s.add(Tenant(slug="demo", name="Demo Homes", primary_color="#0F766E", payment_provider="demo"))
        s.add(Tenant(slug="acme", name="Acme Pros", payment_provider="demo"))
    directory = TenantDirectory(db, settings)
    demo, acme = directory.by_slug("demo"), directory.by_slug("acme")
    email, sms, contacts, clock = FakeEmail(), FakeSms(), FakeContacts(), Clock()
    service = NotificationService(db, email, SecretBox("s" * 40, "notification-token"), contacts=contacts,
                                  unsubscribe_secret=b"u" * 32, sms=sms,
                                  public_url=lambda slug: f"https://{slug}.example.test",
                                  status_callback_url="https://demo.example.test/webhooks/twilio", clock=clock)
    e = Env(db, service, email, sms, contacts, clock, demo, acme)
    for tenant, name, role, phone in ((demo, "client", Role.CLIENT, ""),
                                      (demo, "pro", Role.PROFESSIONAL, "+15125550100"),
                                      (demo, "pro2", Role.PROFESSIONAL, ""),
                                      (demo, "admin", Role.ADMIN, ""),
                                      (acme, "stranger", Role.CLIENT, ""),
                                      (acme, "acme_admin", Role.ADMIN, "")):
        address = f"{name}@{tenant.slug}.test"
        with db.tenant_session(tenant.id) as s:
            user = User(email=address, password_hash="x", role=role)
            s.add(user)
            s.flush()
            user_id = user.id
        contacts.add(tenant.id, Contact(user_id=user_id, email=address, name=name.title(), role=role, phone=phone,
                                        email_verified=True))
        e.users[name] = Caller(role=role, id=user_id, tenant_id=tenant.id, email=address)
    yield e
    db.dispose()


# ------------------------------------------------------------------------------------------------ fan-out

def test_the_catalogue_defaults_decide_channels_and_only_a_verified_phone_gets_sms(env):
    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pro", "pro2"], key="match:1")
    pro, pro2 = env.users["pro"].id, env.users["pro2"].id
    made = {(n.user_id, n.channel): n for n in env.rows(env.demo)}
    assert set(made) == {(pro, "email"), (pro, "sms"), (pro, "in_app"), (pro2, "email"), (pro2, "in_app")}
    assert sorted(ids) == sorted(made[k].id for k in ((pro, "email"), (pro, "sms"), (pro2, "email")))
    assert made[(pro, "sms")].recipient == "+15125550100" and made[(pro, "sms")].status == "pending"
    in_app = made[(pro, "in_app")]
    assert in_app.status == "sent" and in_app.sent_at is not None and in_app.link == ""
    assert all(n.event == "lead_matched" and n.group == "leads" for n in made.values())
    # LEAD_NEW may use SMS and email, but only in-app is on by default
    env.notify(env.demo, Event.LEAD_NEW, ["pro"], key="lead:1")
    assert {n.channel for n in env.rows(env.demo, event="lead_new")} == {"in_app"}


def test_stored_preferences_turn_cells_off_and_on(env):
    client, pro2 = env.users["client"], env.users["pro2"]
    env.notifications.set_preference(client, "quotes", "email", False)
    ids = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1", link="/requests/4")
    assert ids == [] and [n.channel for n in env.rows(env.demo)] == ["in_app"]
    # other groups keep their defaults
    env.notify(env.demo, Event.BOOKING_ACCEPTED, ["client"], key="booking:1")
    assert {n.channel for n in env.rows(env.demo, event="booking_accepted")} == {"email", "in_app"}
    # choosing the default again removes the stored row (only differences are stored)
    env.notifications.set_preference(client, "quotes", "email", True)
    with env.db.tenant_session(env.demo.id) as s:
        assert s.exec(select(NotificationPreference)).all() == []
    # opting in to SMS without a verified phone: a SKIPPED row says why (instead of silence)
    env.notifications.set_preference(pro2, "payments", "sms", True)
    ids = env.notify(env.demo, Event.PAYMENT_HELD, ["pro2"], key="held:1")
    sms = env.rows(env.demo, event="payment_held", channel="sms")
    assert [(n.status, n.id in ids) for n in sms] == [("skipped", False)]
    assert "no verified phone" in sms[0].last_error


def test_security_is_locked_on_and_unknown_cells_are_refused(env):
    client = env.users["client"]
    for group, channel, field_name in (("security", "email", "group"), ("nonsense", "email", "group"),
                                       ("quotes", "pigeon", "channel"), ("quotes", "sms", "channel"),
                                       ("admin", "email", "group")):
        with pytest.raises(ValidationFailed) as refused:
            env.notifications.set_preference(client, group, channel, False)
        assert field_name in refused.value.errors
    with pytest.raises(PermissionDenied):
        env.notifications.set_preference(None, "quotes", "email", False)
    # a security email goes even where the marketplace turned email off
    env.notifications.set_channels(env.users["admin"], ["in_app"])
    ids = env.notify(env.demo, Event.VERIFY_EMAIL, ["client"], key="verify:1",
                     link=f"/verify?token={ONE_TIME_TOKEN}", one_time_token="tok-" + "A" * 40)
    (row,) = env.rows(env.demo, event="verify_email")
    assert ids == [row.id] and row.channel == "email" and row.unsubscribe_url == ""


def test_the_marketplace_chooses_its_channels_in_app_always_stays(env):
    admin, client = env.users["admin"], env.users["client"]
    assert env.notifications.channels(env.demo.id) == {Channel.EMAIL, Channel.SMS, Channel.IN_APP}
    env.notifications.set_channels(admin, ["email"])
    assert env.notifications.channels(env.demo.id) == {Channel.EMAIL, Channel.IN_APP}
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")  # the cached TenantPublic still says sms: not used
    assert {n.channel for n in env.rows(env.demo)} == {"email", "in_app"}
    cells = {(r.group, c.channel): c for r in env.notifications.preferences(env.users["pro"]) for c in r.cells}
    assert not cells[("leads", "sms")].available and cells[("leads", "email")].available
    with pytest.raises(PermissionDenied):
        env.notifications.set_channels(client, ["email", "sms", "in_app"])
    with pytest.raises(ValidationFailed):
        env.notifications.set_channels(admin, ["email", "fax"])
    env.notifications.set_channels(env.users["acme_admin"], ["in_app"])  # acme's admin changes acme only
    assert env.notifications.channels(env.demo.id) == {Channel.EMAIL, Channel.IN_APP}
    assert env.notifications.channels(env.acme.id) == {Channel.IN_APP}


def test_a_repeated_call_creates_nothing_new(env):
    first = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:7")
    count = len(env.rows(env.demo))
    assert env.notify(env.demo, Event.QUOTE_RECEIVED, ["client", "client"], key="quote:7") == []
    assert len(env.rows(env.demo)) == count == 2 and len(first) == 1
    # the same key in another marketplace is another message
    with env.db.tenant_session(env.acme.id) as s:
        assert len(env.notifications.notify(s, env.acme, Event.QUOTE_RECEIVED, [env.users["stranger"].id],
                                            key="quote:7", context=QUOTE)) == 1
    # users outside the tenant (or unknown) get nothing
    assert env.notify(env.demo, Event.QUOTE_RECEIVED, ["stranger"], key="quote:8") == []
    with env.db.tenant_session(env.acme.id) as s, pytest.raises(CrossTenantWrite):  # demo's rows in acme's session
        env.notifications.notify(s, env.demo, Event.QUOTE_RECEIVED, [env.users["client"].id], key="quote:9",
                                 context=QUOTE)


def test_two_transactions_racing_on_one_key_write_it_once(env, caplog):
    """PostgreSQL runs writers side by side: the unique index stops the second, which then finds the first's rows."""
    if not env.db.is_postgres:
        pytest.skip("SQLite has one writer at a time")
    caplog.set_level(logging.INFO, logger="backend.notifications.service")
    results: list = []

    def second() -> None:
        results.append(env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1"))

    with env.db.tenant_session(env.demo.id) as s:
        first = env.notifications.notify(s, env.demo, Event.QUOTE_RECEIVED, [env.users["client"].id],
                                         key="quote:1", context=QUOTE)
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(1.0)
        assert racer.is_alive()  # waiting on the unique index for this transaction
    racer.join(10)
    assert results == [[]] and len(first) == 1
    assert "dedupe race" in caplog.text  # it did collide, and recovered
    assert len(env.rows(env.demo)) == 2


def test_rows_are_rendered_in_the_tenants_branding_with_an_unsubscribe_link(env):
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1", link="/requests/4")
    email, in_app = env.rows(env.demo)
    assert email.channel == "email" and email.recipient == "client@demo.test"
    assert "Alex Rivera" in email.subject
    assert "https://demo.example.test/requests/4" in email.body and "Demo Homes" in email.body
    assert "#0F766E" in email.html_body and "https://demo.example.test/requests/4" in email.html_body
    assert email.unsubscribe_url.startswith("https://demo.example.test/unsubscribe?token=")
    assert email.unsubscribe_url in email.body and f'href="{email.unsubscribe_url}"' in email.html_body
    assert "unsubscribe.invalid" not in email.body + email.html_body
    # each recipient gets their own link
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["pro2"], key="quote:1")
    other = env.rows(env.demo, user_id=env.users["pro2"].id, channel="email")[0]
    assert other.unsubscribe_url != email.unsubscribe_url and other.unsubscribe_url in other.html_body
    assert in_app.link == "/requests/4" and in_app.subject and in_app.body


def test_a_one_time_token_is_sealed_until_sent_and_erased_after(env):
    token = "tok-" + "Z" * 40
    (note_id,) = env.notify(env.demo, Event.RESET_PASSWORD, ["client"], key="reset:1",
                            link=f"/reset?token={ONE_TIME_TOKEN}", one_time_token=token)
    (row,) = env.rows(env.demo)
    assert row.sealed_token and token not in row.body + row.html_body + row.sealed_token
    assert env.notifications.deliver(env.demo.id, note_id) == "sent"
    (sent,) = env.email.sent
    assert f"/reset?token={token}" in sent.text and f"/reset?token={token}" in sent.html
    (row,) = env.rows(env.demo)
    assert row.sealed_token == "" and token not in row.body + row.html_body
    with pytest.raises(ValueError, match="one-time token"):
        env.notify(env.demo, Event.RESET_PASSWORD, ["client"], key="reset:2", link="/reset", one_time_token=token)


# ------------------------------------------------------------------------------------------------ delivery

def test_email_goes_once_with_one_click_unsubscribe_headers(env):
    (note_id,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    assert env.notifications.deliver(env.demo.id, note_id) == "sent"
    assert env.notifications.deliver(env.demo.id, note_id) == "already-sent"  # a duplicated job
    (sent,) = env.email.sent
    row = env.rows(env.demo, id=note_id)[0]
    assert "/unsubscribe?token=" in row.unsubscribe_url  # the footer's link: a page saying what changed
    one_click = row.unsubscribe_url.replace("/unsubscribe?", "/api/v1/unsubscribe?")  # mail clients POST here
    assert sent.headers == {"List-Unsubscribe": f"<{one_click}>",
                            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert sent.reference == f"t{env.demo.id}-n{note_id}" and sent.sender_name == "Demo Homes"
    assert sent.category == "quote_received" and sent.recipient == "client@demo.test"
    assert (row.status, row.attempts, row.provider_id) == ("sent", 1, "sg-1")
    assert env.notifications.deliver(env.demo.id, 10_000) == "missing"


def test_a_transient_error_waits_out_its_backoff_then_sends_exactly_once(env):
    (note_id,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    env.email.errors.append(DeliveryError("503 Service Unavailable"))
    with pytest.raises(DeliveryError):
        env.notifications.deliver(env.demo.id, note_id)
    row = env.rows(env.demo, id=note_id)[0]
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "503 Service Unavailable")
    assert DAYTIME < row.next_attempt_at <= DAYTIME + timedelta(seconds=2)
    assert env.notifications.deliver(env.demo.id, note_id) == "later" and env.email.calls == 1
    env.clock.now = DAYTIME + timedelta(seconds=3)
    assert env.notifications.due() == [(env.demo.id, note_id)]
    assert env.notifications.deliver(env.demo.id, note_id) == "sent"
    assert env.notifications.deliver(env.demo.id, note_id) == "already-sent"
    assert len(env.email.sent) == 1 and env.notifications.due() == []
    row = env.rows(env.demo, id=note_id)[0]
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == ("sent", 2, "", None)


def test_a_permanent_refusal_fails_at_once_and_alerts_the_admins_in_the_app(env):
    (note_id,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    env.email.errors.append(PermanentDeliveryError("400 Bad Request: invalid recipient"))
    assert env.notifications.deliver(env.demo.id, note_id) == "failed"  # no raise: nothing to retry
    assert env.notifications.deliver(env.demo.id, note_id) == "failed" and env.email.calls == 1
    row = env.rows(env.demo, id=note_id)[0]
    assert (row.status, row.last_error) == ("failed", "400 Bad Request: invalid recipient")
    alerts = env.rows(env.demo, event="admin_delivery_failed")
    assert [(a.user_id, a.channel, a.status) for a in alerts] == [(env.users["admin"].id, "in_app", "sent")]
    (item,) = env.notifications.inbox(env.users["admin"])
    assert item.link == "/admin/notifications" and not item.read
    assert env.rows(env.acme) == []  # acme's admin hears nothing of demo
    # a provider failing every message the same way alerts once an hour, not once per message
    for i, reason in enumerate(("400 Bad Request: invalid recipient", "400 Bad Request: invalid recipient",
                                "413 Payload Too Large")):
        (other,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key=f"quote:{i + 2}")
        env.email.errors.append(PermanentDeliveryError(reason))
        assert env.notifications.deliver(env.demo.id, other) == "failed"
    assert len(env.rows(env.demo, event="admin_delivery_failed")) == 2
    env.clock.now += timedelta(hours=1)
    (other,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:9")
    env.email.errors.append(PermanentDeliveryError("400 Bad Request: invalid recipient"))
    env.notifications.deliver(env.demo.id, other)
    assert len(env.rows(env.demo, event="admin_delivery_failed")) == 3


def test_retries_are_given_up_after_max_attempts(env):
    (note_id,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    env.email.errors.extend(DeliveryError("timed out") for _ in range(MAX_ATTEMPTS))
    for _ in range(1, MAX_ATTEMPTS):
        with pytest.raises(DeliveryError):
            env.notifications.deliver(env.demo.id, note_id)
        env.clock.now += timedelta(minutes=11)  # past any backoff
    assert env.notifications.deliver(env.demo.id, note_id) == "failed"
    row = env.rows(env.demo, id=note_id)[0]
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS and "timed out" in row.last_error
    assert env.email.sent == [] and len(env.rows(env.demo, event="admin_delivery_failed")) == 1


def test_sms_carries_its_status_callback_and_waits_out_the_night(env):
    (email_id, sms_id) = env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")
    assert env.notifications.deliver(env.demo.id, sms_id) == "sent"
    (text,) = env.sms.sent
    assert text.to == "+15125550100" and text.body.startswith("Demo Homes:")
    assert text.status_callback == f"https://demo.example.test/webhooks/twilio?ref=t{env.demo.id}-n{sms_id}"
    env.clock.now = NIGHT
    ids = env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:2")
    (held,) = env.rows(env.demo, dedupe_key=f"m:2:{env.users['pro'].id}:sms")
    assert held.id not in ids and held.next_attempt_at == datetime(2026, 6, 11, 8, 0, tzinfo=UTC)
    assert env.notifications.deliver(env.demo.id, held.id) == "later"
    env.clock.now = datetime(2026, 6, 11, 7, 59, tzinfo=UTC)
    assert (env.demo.id, held.id) not in env.notifications.due()
    env.clock.now = datetime(2026, 6, 11, 8, 0, tzinfo=UTC)
    assert (env.demo.id, held.id) in env.notifications.due()
    assert env.notifications.deliver(env.demo.id, held.id) == "sent"
    # a phone code never waits, and goes to the number being verified
    env.clock.now = NIGHT
    (code_id,) = env.notify(env.demo, Event.PHONE_CODE, ["client"], key="phone:1", context={"code": "482913"},
                            sms_to="+15125550199")
    assert env.notifications.deliver(env.demo.id, code_id) == "sent"
    assert env.sms.sent[-1].to == "+15125550199" and "482913" in env.sms.sent[-1].body


def test_a_lost_enqueue_is_found_again_by_the_sweeper(env):
    """Redis down: the rows were committed but no job ran. Nothing is lost; nothing is sent twice."""
    demo_ids = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    with env.db.tenant_session(env.acme.id) as s:
        acme_ids = env.notifications.notify(s, env.acme, Event.QUOTE_RECEIVED, [env.users["stranger"].id],
                                            key="quote:1", context=QUOTE)
    assert env.notifications.due(DAYTIME + timedelta(seconds=30)) == []  # its job is probably on its way
    env.clock.now = DAYTIME + timedelta(minutes=2)
    due = env.notifications.due()
    assert due == [(env.demo.id, demo_ids[0]), (env.acme.id, acme_ids[0])]
    assert env.notifications.due(limit=1) == due[:1]
    for tenant_id, note_id in due:
        assert env.notifications.deliver(tenant_id, note_id) == "sent"
    assert env.notifications.due() == [] and len(env.email.sent) == 2


# ------------------------------------------------------------------------------------------------ status updates

def test_status_updates_mark_delivery_and_a_hard_bounce_stops_email_to_that_address(env):
    ids = [env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key=f"quote:{i}")[0] for i in range(3)]
    for note_id in ids:
        env.notifications.deliver(env.demo.id, note_id)
    first, second, third = ids
    ref = f"t{env.demo.id}-n{first}"
    assert env.notifications.apply_status([StatusUpdate(reference=ref, provider_id="sg-1",
                                                        kind=StatusKind.DELIVERED)]) == 1
    assert env.notifications.apply_status([StatusUpdate(reference=ref, provider_id="sg-1",
                                                        kind=StatusKind.DELIVERED)]) == 0  # repeated: no change
    row = env.rows(env.demo, id=first)[0]
    assert row.status == "delivered" and row.delivered_at is not None
    # found by the provider's id when the reference did not come back
    assert env.notifications.apply_status([StatusUpdate(reference="", provider_id="sg-2",
                                                        kind=StatusKind.DELIVERED)]) == 1
    assert env.rows(env.demo, id=second)[0].status == "delivered"
    assert env.notifications.apply_status([StatusUpdate(reference="", provider_id="nope",
                                                        kind=StatusKind.DELIVERED)]) == 0
    bounce = StatusUpdate(reference=f"t{env.demo.id}-n{third}", provider_id="sg-3", kind=StatusKind.BOUNCED,
                          reason="550 5.1.1 user unknown", hard_bounce=True, recipient="Client@Demo.test")
    assert env.notifications.apply_status([bounce]) == 1
    row = env.rows(env.demo, id=third)[0]
    assert row.status == "failed" and "550 5.1.1 user unknown" in row.last_error
    with env.db.tenant_session(env.demo.id) as s:
        assert [x.email for x in s.exec(select(EmailSuppression)).all()] == ["client@demo.test"]
    with env.db.tenant_session(env.acme.id) as s:
        assert s.exec(select(EmailSuppression)).all() == []
    # the next email to that address is not sent, and says why
    assert env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:9") == []
    (skipped,) = env.rows(env.demo, dedupe_key=f"quote:9:{env.users['client'].id}:email")
    assert skipped.status == "skipped" and "bounced" in skipped.last_error
    listed = {r.id: r for r in env.notifications.failed_deliveries(env.users["admin"])}
    assert listed[third].can_retry and not listed[skipped.id].can_retry
    with pytest.raises(DomainError, match="bounced"):
        env.notifications.retry(env.users["admin"], third)
    # once the user changes their address, email resumes
    client = env.contacts.people[env.demo.id][env.users["client"].id]
    env.contacts.add(env.demo.id, replace(client, email="client.new@demo.test"))
    (new_id,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:10")
    assert env.notifications.deliver(env.demo.id, new_id) == "sent"
    assert env.email.sent[-1].recipient == "client.new@demo.test"


def test_a_queued_email_to_an_address_that_bounced_meanwhile_is_skipped(env):
    (note_id,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    (other,) = env.notify(env.demo, Event.QUOTE_ACCEPTED, ["client"], key="accepted:1")
    env.notifications.deliver(env.demo.id, other)
    env.notifications.apply_status([StatusUpdate(reference=f"t{env.demo.id}-n{other}", provider_id="sg-1",
                                                 kind=StatusKind.BOUNCED, hard_bounce=True)])
    assert env.notifications.deliver(env.demo.id, note_id) == "skipped" and len(env.email.sent) == 1


# ------------------------------------------------------------------------------------------------ unsubscribe

def test_an_unsubscribe_link_turns_off_exactly_its_cell(env):
    client = env.users["client"]
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    url = env.rows(env.demo, channel="email")[0].unsubscribe_url
    token = url.split("token=")[1]
    assert env.notifications.unsubscribe(env.demo, token) == "You will no longer get emails about Quotes."
    assert env.notifications.unsubscribe(env.demo, token) == "You will no longer get emails about Quotes."
    cells = {(r.group, c.channel): c.enabled for r in env.notifications.preferences(client) for c in r.cells}
    assert cells[("quotes", "email")] is False
    assert cells[("quotes", "in_app")] and cells[("bookings", "email")] and cells[("reviews", "email")]
    # every event of the group loses its email, keeps its in-app item; other groups keep their email
    assert env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:2") == []
    assert env.notify(env.demo, Event.QUOTE_ACCEPTED, ["client"], key="accepted:2") == []
    assert {n.channel for n in env.rows(env.demo, event="quote_accepted")} == {"in_app"}
    assert len(env.notify(env.demo, Event.BOOKING_ACCEPTED, ["client"], key="booking:2")) == 1


def test_forged_foreign_and_security_unsubscribe_links_are_refused(env):
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    token = env.rows(env.demo, channel="email")[0].unsubscribe_url.split("token=")[1]
    for bad in ("", "garbage", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        with pytest.raises(TokenInvalid):
            env.notifications.unsubscribe(env.demo, bad)
    with pytest.raises(TokenInvalid):  # demo's link presented on acme
        env.notifications.unsubscribe(env.acme, token)
    with pytest.raises(ValueError):
        env.notifications.unsubscribe_url(env.demo, env.users["client"].id, Group.SECURITY, Channel.EMAIL)
    # a link signed with our key that names security (never issued) still cannot turn it off
    forged = env.notifications._unsubscribe_tokens.dumps([env.demo.id, env.users["client"].id, "security", "email"])
    with pytest.raises(DomainError, match="cannot be turned off"):
        env.notifications.unsubscribe(env.demo, forged)
    with env.db.tenant_session(env.demo.id) as s:
        assert s.exec(select(NotificationPreference)).all() == []


def test_the_preference_matrix(env):
    rows = {r.group: r for r in env.notifications.preferences(env.users["pro"])}
    assert "admin" not in rows and set(rows) == {g.value for g in Group} - {"admin"}
    assert rows["quotes"].label == "Quotes"
    cells = {c.channel: c for c in rows["leads"].cells}
    assert [c.channel for c in rows["leads"].cells] == ["email", "sms", "in_app", "push"]
    assert not cells["push"].available  # no VAPID keys here: no push channel (tests/integration/test_web_push.py)
    assert cells["sms"].available and cells["sms"].enabled and not cells["sms"].locked
    quotes = {c.channel: c for c in rows["quotes"].cells}
    assert not quotes["sms"].available and not quotes["sms"].enabled
    security = {c.channel: c for c in rows["security"].cells}
    assert all(c.locked for c in security.values()) and security["email"].enabled
    assert not security["in_app"].available
    admin_groups = {r.group for r in env.notifications.preferences(env.users["admin"])}
    assert "admin" in admin_groups and "leads" not in admin_groups
    client_groups = {r.group for r in env.notifications.preferences(env.users["client"])}
    assert client_groups == {g.value for g in Group} - {"admin", "leads", "new_leads"}  # leads are for pros


# ------------------------------------------------------------------------------------------------ in-app

def test_the_inbox_shows_and_marks_only_the_callers_own_items(env):
    client, pro, stranger = env.users["client"], env.users["pro"], env.users["stranger"]
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1", link="/requests/1")
    env.clock.now += timedelta(seconds=1)
    env.notify(env.demo, Event.BOOKING_ACCEPTED, ["client"], key="booking:1", link="/orders/2")
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="m:1")
    items = env.notifications.inbox(client)
    assert [i.link for i in items] == ["/orders/2", "/requests/1"] and not any(i.read for i in items)
    assert items[0].created_at.startswith("2026-06-10T14:00:01")
    assert env.notifications.unread_count(client) == 2 and env.notifications.unread_count(pro) == 1
    env.notifications.mark_read(client, items[1].id)
    env.notifications.mark_read(client, items[1].id)  # again: harmless
    assert env.notifications.unread_count(client) == 1
    assert [i.id for i in env.notifications.inbox(client, unread_only=True)] == [items[0].id]
    pro_item = env.notifications.inbox(pro)[0]
    with pytest.raises(NotFound):
        env.notifications.mark_read(client, pro_item.id)  # another user's
    with pytest.raises(NotFound):
        env.notifications.mark_read(stranger, pro_item.id)  # another marketplace's user
    email_row = env.rows(env.demo, channel="email")[0]
    with pytest.raises(NotFound):
        env.notifications.mark_read(client, email_row.id)  # not an in-app item
    assert env.notifications.inbox(stranger) == [] and env.notifications.unread_count(stranger) == 0
    assert env.notifications.mark_all_read(stranger) == 0
    assert env.notifications.mark_all_read(client) == 1 and env.notifications.unread_count(client) == 0
    assert env.notifications.unread_count(pro) == 1
    with pytest.raises(PermissionDenied):
        env.notifications.inbox(None)


# ------------------------------------------------------------------------------------------------ admin

def test_failed_deliveries_and_retry_are_the_tenant_admins(env):
    admin, client, acme_admin = env.users["admin"], env.users["client"], env.users["acme_admin"]
    (note_id,) = env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    env.email.errors.append(PermanentDeliveryError("403 Forbidden: sender not verified"))
    assert env.notifications.deliver(env.demo.id, note_id) == "failed"
    (row,) = env.notifications.failed_deliveries(admin)
    assert (row.id, row.status, row.last_error, row.can_retry) == (
        note_id, "failed", "403 Forbidden: sender not verified", True)
    for refused in (client, None):
        with pytest.raises(PermissionDenied):
            env.notifications.failed_deliveries(refused)
        with pytest.raises(PermissionDenied):
            env.notifications.retry(refused, note_id)
    assert env.notifications.failed_deliveries(acme_admin) == []
    with pytest.raises(NotFound):
        env.notifications.retry(acme_admin, note_id)
    assert env.notifications.retry(admin, note_id) == note_id
    with pytest.raises(DomainError, match="Only a failed delivery"):
        env.notifications.retry(admin, note_id)
    assert env.notifications.deliver(env.demo.id, note_id) == "sent" and len(env.email.sent) == 1
    assert env.notifications.failed_deliveries(admin) == []


# ------------------------------------------------------------------------------------------------ legacy rows

def test_rows_queued_before_the_catalogue_still_deliver(env):
    """Plain-text emails queued by the old queue_email (event "", no HTML, a sealed token) may be pending at
    deploy time: they go out as they were written."""
    with env.db.tenant_session(env.demo.id) as s:
        note = Notification(user_id=env.users["client"].id, recipient="ann@demo.test", subject="Reset your password",
                            body=f"Open https://demo.example.test/reset?token={ONE_TIME_TOKEN}",
                            sealed_token=env.notifications.secrets.seal("raw-" + "Q" * 30))
        s.add(note)
        s.flush()
        note_id = note.id
    assert env.notifications.deliver(env.demo.id, note_id) == "sent"
    (sent,) = env.email.sent
    assert "reset?token=raw-" in sent.text and sent.headers == {} and sent.html == ""
