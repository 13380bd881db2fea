"""Web push end to end, on SQLite and PostgreSQL: services wired by bootstrap with VAPID keys, the real pywebpush
adapter against the local push service (tests/fakes/push_server.py), which checks the VAPID authorization and
decrypts every payload with the keys of the browser it subscribed, as a browser would.

A device is subscribed the way the account page does it (the browser's `subscription.toJSON()`), a notification is
written and delivered, and the test reads what the service worker would get.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from backend.accounts.models import User
from backend.bootstrap import Services
from backend.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.identity import Caller, Role, TenantPublic
from backend.notifications.adapters.webpush import WebPushSender, generate_keys
from backend.notifications.catalogue import CATALOGUE, Event
from backend.notifications.models import Channel, DeliveryStatus, Notification, PushSubscription
from backend.notifications.ports import DeliveryError, format_reference
from backend.notifications.push import MAX_DEVICES
from backend.notifications.service import PUSH_DEVICE_GONE
from backend.tenancy.models import Tenant
from tests.conftest import _truncate, make_services
from tests.fakes.push_server import FakePushService

PRIVATE_KEY, PUBLIC_KEY = generate_keys()
SUBJECT = "mailto:ops@demo-homes.example"
APP_URL = "http://localhost:3000"
PASSWORD = "a-good-password"
AFTERNOON = (datetime.now(UTC) - timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)


@dataclass
class Clock:
    now: datetime = AFTERNOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    svc: Services
    push: FakePushService
    clock: Clock
    demo: TenantPublic
    acme: TenantPublic
    users: dict[str, Caller] = field(default_factory=dict)

    def subscribe(self, tenant: TenantPublic, who: str, label: str = "Chrome on Android") -> dict:
        """A browser subscribes (pushManager.subscribe) and hands its subscription to the service."""
        subscription = self.push.subscribe(self.svc.notifications.push_key())
        self.svc.notifications.subscribe_push(tenant, self.users[who], subscription, label=label)
        return subscription

    def notify(self, tenant: TenantPublic, event: Event, who: list[str], *, key: str, link: str = "/requests/1"
               ) -> list[int]:
        with self.svc.db.tenant_session(tenant.id) as session:
            return self.svc.notifications.notify(session, tenant, event, [self.users[u].id for u in who], key=key,
                                                 context=CATALOGUE[event].sample, link=link)

    def rows(self, tenant: TenantPublic, **where) -> list[Notification]:
        with self.svc.db.tenant_session(tenant.id) as session:
            query = select(Notification).order_by(Notification.id)
            for name, value in where.items():
                query = query.where(getattr(Notification, name) == value)
            return list(session.exec(query).all())

    def push_rows(self, tenant: TenantPublic, **where) -> list[Notification]:
        return self.rows(tenant, channel=Channel.PUSH.value, **where)

    def row(self, tenant: TenantPublic, note_id: int) -> Notification:
        with self.svc.db.tenant_session(tenant.id) as session:
            return session.get(Notification, note_id)

    def deliver(self, tenant: TenantPublic, note_id: int) -> str:
        return self.svc.notifications.deliver(tenant.id, note_id)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path, monkeypatch) -> Iterator[Env]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with FakePushService() as push:
        svc = make_services(url, tmp_path, vapid_private_key=PRIVATE_KEY, vapid_public_key=PUBLIC_KEY,
                            vapid_subject=SUBJECT, public_url=APP_URL)
        if url:
            _truncate(svc)
        try:
            clock = Clock()
            svc.notifications.clock = clock
            with svc.db.platform_session() as session:
                for slug, name in (("demo", "Demo Homes"), ("acme", "Acme Pros")):
                    session.add(Tenant(slug=slug, name=name, payment_provider="demo"))
            env = Env(svc, push, clock, svc.tenants.by_slug("demo"), svc.tenants.by_slug("acme"))
            _people(env)
            yield env
        finally:
            svc.close()


def _people(env: Env) -> None:
    """Ann (client), Pat (pro), Ada (admin) at demo; Sam (client) at acme."""
    for tenant, name, role in ((env.demo, "ann", Role.CLIENT), (env.demo, "pat", Role.PROFESSIONAL),
                               (env.demo, "ada", Role.CLIENT), (env.acme, "sam", Role.CLIENT)):
        actor, _ = env.svc.accounts.sign_up(tenant, {"email": f"{name}@example.com", "password": PASSWORD,
                                                     "full_name": name.title(), "role": role})
        env.users[name] = actor
    with env.svc.db.tenant_session(env.demo.id) as session:
        session.get(User, env.users["ada"].id).role = Role.ADMIN
    ada = env.users["ada"]
    env.users["ada"] = Caller(role=Role.ADMIN, id=ada.id, tenant_id=ada.tenant_id, email=ada.email)


# ---------------------------------------------------------------------------------------------------------------
# Wiring and devices
# ---------------------------------------------------------------------------------------------------------------

def test_bootstrap_wires_web_push_from_the_vapid_settings(env):
    assert isinstance(env.svc.notifications.push, WebPushSender)
    assert env.svc.notifications.push_key() == PUBLIC_KEY
    assert env.svc.notifications.allow_loopback_push  # ENVIRONMENT=test: the local push service is accepted
    cells = {c.channel: c for r in env.svc.notifications.preferences(env.users["ann"]) if r.group == "quotes"
             for c in r.cells}
    assert cells["push"].available and cells["push"].enabled  # on wherever in-app is


def test_a_device_is_listed_updated_on_resubscribe_and_removed(env):
    ann, notifications = env.users["ann"], env.svc.notifications
    subscription = env.subscribe(env.demo, "ann", label="Firefox on Linux")
    [device] = notifications.push_devices(env.demo, ann)
    assert (device.label, device.endpoint, device.last_used_at) == ("Firefox on Linux", subscription["endpoint"], "")

    # the same browser again (keys renewed): still one device, the new keys kept
    renewed = {**subscription, "keys": env.push.subscribe(PUBLIC_KEY)["keys"]}
    notifications.subscribe_push(env.demo, ann, renewed, label="Firefox on Linux")
    [again] = notifications.push_devices(env.demo, ann)
    assert again.id == device.id
    with env.svc.db.tenant_session(env.demo.id) as session:
        assert session.get(PushSubscription, device.id).p256dh == renewed["keys"]["p256dh"]

    assert notifications.unsubscribe_push(env.demo, ann, subscription["endpoint"]) is True
    assert notifications.unsubscribe_push(env.demo, ann, subscription["endpoint"]) is False
    assert notifications.push_devices(env.demo, ann) == []


def test_subscriptions_are_validated_at_the_service(env):
    good = env.push.subscribe(PUBLIC_KEY)
    with pytest.raises(ValidationFailed) as refused:
        env.svc.notifications.subscribe_push(env.demo, env.users["ann"], {
            "endpoint": "https://169.254.169.254/latest/meta-data", "keys": {"p256dh": "A" * 87, "auth": "x"}})
    assert set(refused.value.errors) == {"endpoint", "p256dh", "auth"}
    with pytest.raises(ValidationFailed) as refused:
        env.svc.notifications.subscribe_push(env.demo, env.users["ann"], "not a subscription")
    assert set(refused.value.errors) == {"subscription"}
    with pytest.raises(PermissionDenied):  # acme's user on demo
        env.svc.notifications.subscribe_push(env.demo, env.users["sam"], good)
    assert env.svc.notifications.push_devices(env.demo, env.users["ann"]) == []


def test_a_user_keeps_at_most_ten_devices_the_longest_unused_goes(env):
    first = env.subscribe(env.demo, "ann", label="Old phone")
    for number in range(MAX_DEVICES):
        env.subscribe(env.demo, "ann", label=f"Device {number}")
    devices = env.svc.notifications.push_devices(env.demo, env.users["ann"])
    assert len(devices) == MAX_DEVICES and first["endpoint"] not in {d.endpoint for d in devices}


# ---------------------------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------------------------

def test_a_push_reaches_every_device_and_decrypts_to_what_the_service_worker_shows(env):
    phone = env.subscribe(env.demo, "ann", label="Chrome on Android")
    laptop = env.subscribe(env.demo, "ann", label="Firefox on Linux")
    ids = env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    pushes = env.push_rows(env.demo)
    assert sorted(r.recipient for r in pushes) == ["Chrome on Android", "Firefox on Linux"]
    assert {r.id for r in pushes} <= set(ids)  # the job delivers them after commit, like email
    [in_app] = env.rows(env.demo, channel=Channel.IN_APP.value)

    for row in pushes:
        assert env.deliver(env.demo, row.id) == "sent"
        assert env.deliver(env.demo, row.id) == "already-sent"
    for subscription, row in zip((phone, laptop), pushes, strict=True):
        [payload] = env.push.messages(subscription["endpoint"])
        assert payload == {"title": in_app.subject, "body": in_app.body, "url": f"{APP_URL}/requests/1",
                           "tag": format_reference(env.demo.id, row.id)}
        sent = env.row(env.demo, row.id)
        assert sent.status == DeliveryStatus.SENT and sent.provider_id.startswith(env.push.url)
    received = env.push.received[0]
    assert received.claims["sub"] == SUBJECT and received.claims["aud"] == env.push.url
    assert received.headers["ttl"] == str(24 * 3600) and received.headers["topic"].startswith(f"t{env.demo.id}-n")
    assert all(d.last_used_at for d in env.svc.notifications.push_devices(env.demo, env.users["ann"]))


def test_a_push_without_a_link_opens_the_notifications_page(env):
    endpoint = env.subscribe(env.demo, "ann")["endpoint"]
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1", link="")
    [row] = env.push_rows(env.demo)
    assert env.deliver(env.demo, row.id) == "sent"
    assert env.push.messages(endpoint)[0]["url"] == f"{APP_URL}/notifications"


def test_preferences_turned_off_mean_no_push(env):
    env.subscribe(env.demo, "ann")
    env.subscribe(env.demo, "pat")
    env.svc.notifications.set_preference(env.users["ann"], "quotes", "push", False)
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    assert env.push_rows(env.demo) == []
    assert {r.channel for r in env.rows(env.demo, event="quote_received")} == {"email", "in_app"}
    # a new lead nobody matched the pro to: in-app only unless they opt in, push included
    env.notify(env.demo, Event.LEAD_NEW, ["pat"], key="lead:1")
    assert env.push_rows(env.demo, event="lead_new") == []
    env.svc.notifications.set_preference(env.users["pat"], "new_leads", "push", True)
    env.notify(env.demo, Event.LEAD_NEW, ["pat"], key="lead:2")
    assert len(env.push_rows(env.demo, event="lead_new")) == 1
    # no device: no push row at all, preferences or not
    env.notify(env.demo, Event.QUOTE_ACCEPTED, ["ada"], key="accepted:1")
    assert env.push_rows(env.demo, event="quote_accepted") == []
    assert env.push.received == []


def test_pushes_wait_out_the_recipients_night(env):
    env.subscribe(env.demo, "ann")
    env.clock.now = AFTERNOON.replace(hour=23)
    ids = env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    [row] = env.push_rows(env.demo)
    assert row.id not in ids and row.next_attempt_at == (AFTERNOON + timedelta(days=1)).replace(hour=8)
    assert env.deliver(env.demo, row.id) == "later"
    env.clock.now = row.next_attempt_at
    assert env.deliver(env.demo, row.id) == "sent" and len(env.push.received) == 1


def test_410_removes_the_device_and_skips_the_delivery_with_the_reason(env):
    gone = env.subscribe(env.demo, "ann", label="Old phone")
    kept = env.subscribe(env.demo, "ann", label="New phone")
    env.push.expire(gone["endpoint"])
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    env.notify(env.demo, Event.ORDER_COMPLETED, ["ann"], key="done:1")
    to_gone = [r for r in env.push_rows(env.demo) if r.recipient == "Old phone"]

    assert env.deliver(env.demo, to_gone[0].id) == "skipped"
    row = env.row(env.demo, to_gone[0].id)
    assert row.status == DeliveryStatus.SKIPPED and "410" in row.last_error and "device was removed" in row.last_error
    assert [d.label for d in env.svc.notifications.push_devices(env.demo, env.users["ann"])] == ["New phone"]
    # the device's other messages are skipped without asking the push service again
    asked = len(env.push.requests)
    assert env.deliver(env.demo, to_gone[1].id) == "skipped"
    assert env.row(env.demo, to_gone[1].id).last_error == PUSH_DEVICE_GONE and len(env.push.requests) == asked
    assert env.svc.notifications.inbox(env.users["ada"]) == []  # the user's browser, not a fault: no admin alert
    for row in env.push_rows(env.demo):
        if row.recipient == "New phone":
            assert env.deliver(env.demo, row.id) == "sent"
    assert len(env.push.messages(kept["endpoint"])) == 2
    with pytest.raises(DomainError):
        env.svc.notifications.retry(env.users["ada"], to_gone[0].id)


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_5xx_are_retried_after_a_backoff(env, status):
    endpoint = env.subscribe(env.demo, "ann")["endpoint"]
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    [row] = env.push_rows(env.demo)
    env.push.fail_next(1, status)
    with pytest.raises(DeliveryError) as transient:
        env.deliver(env.demo, row.id)
    waiting = env.row(env.demo, row.id)
    assert waiting.status == DeliveryStatus.PENDING and waiting.attempts == 1 and str(status) in waiting.last_error
    assert transient.value.retry_in == (waiting.next_attempt_at - env.clock.now).total_seconds() > 0
    assert env.deliver(env.demo, row.id) == "later"
    env.clock.now = waiting.next_attempt_at
    assert (env.demo.id, row.id) in env.svc.notifications.due(env.clock.now)
    assert env.deliver(env.demo, row.id) == "sent" and len(env.push.messages(endpoint)) == 1


def test_a_refused_push_fails_for_good_and_tells_the_admin(env):
    env.subscribe(env.demo, "ann")
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    [row] = env.push_rows(env.demo)
    env.push.fail_next(1, 413)
    assert env.deliver(env.demo, row.id) == "failed"
    assert "413" in env.row(env.demo, row.id).last_error
    [alert] = env.svc.notifications.inbox(env.users["ada"])
    assert "push" in alert.body.lower() or "push" in alert.title.lower()


# ---------------------------------------------------------------------------------------------------------------
# Tenants and owners
# ---------------------------------------------------------------------------------------------------------------

def test_another_tenants_subscription_is_never_used(env):
    sams = env.subscribe(env.acme, "sam")
    anns = env.subscribe(env.demo, "ann")
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    # a demo notification naming acme's user: nobody by that id at demo, so no row, and no push to sam's browser
    with env.svc.db.tenant_session(env.demo.id) as session:
        env.svc.notifications.notify(session, env.demo, Event.QUOTE_RECEIVED, [env.users["sam"].id], key="quote:2",
                                     context=CATALOGUE[Event.QUOTE_RECEIVED].sample, link="/requests/2")
    for row in env.push_rows(env.demo):
        env.deliver(env.demo, row.id)
    assert len(env.push.messages(anns["endpoint"])) == 1 and env.push.messages(sams["endpoint"]) == []
    assert env.push_rows(env.acme) == []
    with env.svc.db.tenant_session(env.demo.id) as session:  # demo's scope sees demo's device only (RLS on PG)
        assert [d.endpoint for d in session.exec(select(PushSubscription)).all()] == [anns["endpoint"]]
    [sam_device] = env.svc.notifications.push_devices(env.acme, env.users["sam"])
    with pytest.raises(PermissionDenied):
        env.svc.notifications.remove_push_device(env.demo, env.users["sam"], sam_device.id)
    with pytest.raises(NotFound):  # another user's device, even in the same marketplace
        [anns_device] = env.svc.notifications.push_devices(env.demo, env.users["ann"])
        env.svc.notifications.remove_push_device(env.demo, env.users["pat"], anns_device.id)
    assert env.svc.notifications.unsubscribe_push(env.demo, env.users["pat"], anns["endpoint"]) is False
    assert len(env.svc.notifications.push_devices(env.demo, env.users["ann"])) == 1


def test_a_browser_taken_over_by_another_user_gets_none_of_the_first_users_pushes(env):
    shared = env.subscribe(env.demo, "ann", label="Family tablet")
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    [anns_row] = env.push_rows(env.demo)
    # pat signs in on the same browser and turns notifications on: the subscription is now pat's
    env.svc.notifications.subscribe_push(env.demo, env.users["pat"], shared, label="Family tablet")
    assert env.svc.notifications.push_devices(env.demo, env.users["ann"]) == []
    assert env.deliver(env.demo, anns_row.id) == "skipped"
    assert env.row(env.demo, anns_row.id).last_error == PUSH_DEVICE_GONE
    assert env.push.received == []


def test_removing_a_device_from_the_list_stops_its_pushes(env):
    env.subscribe(env.demo, "ann")
    [device] = env.svc.notifications.push_devices(env.demo, env.users["ann"])
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["ann"], key="quote:1")
    [row] = env.push_rows(env.demo)
    env.svc.notifications.remove_push_device(env.demo, env.users["ann"], device.id)
    assert env.deliver(env.demo, row.id) == "skipped" and env.push.received == []
    assert env.row(env.demo, row.id).device_id is None  # the link went with the device


def test_without_vapid_keys_there_is_no_push_channel(svc):
    """ENVIRONMENT=test without VAPID_* (the suite's default): fail closed, nobody is offered push."""
    assert svc.notifications.push is None and svc.notifications.push_key() == ""
    tenant = TenantPublic.model_construct(id=1, slug="demo", name="Demo")
    caller = Caller(role=Role.CLIENT, id=1, tenant_id=1, email="ann@example.com")
    with pytest.raises(DomainError, match="not set up"):
        svc.notifications.subscribe_push(tenant, caller, {"endpoint": "http://127.0.0.1:9/push/x", "keys": {}})
