"""Money and messages are never lost when Redis is down, on SQLite and PostgreSQL: every enqueue of CeleryJobQueue
returns (no raise into a use case that has committed), and the periodic timers redo what a lost job would have done:
an order's invoice and payout (its review window too), a stored provider webhook. What was done is not redone."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from backend.accounts.models import User
from backend.config import Settings
from backend.db import utcnow
from backend.jobqueue import CeleryJobQueue, InlineJobQueue, make_celery
from backend.orders.models import Order
from backend.payments.models import LedgerTransaction, Payout, WebhookEvent
from backend.payments.ports import PaymentDeclined
from backend.reviews.models import ReviewWindow
from backend.tenancy.models import Tenant

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every enqueue is refused
PW = "pw-1234567890"
CARD = "4242 4242 4242 4242"


def dead_queue() -> CeleryJobQueue:
    return CeleryJobQueue(make_celery(Settings(redis_url=DEAD_REDIS)))


class RecordingJobs(InlineJobQueue):
    """The inline queue (jobs run at once), noting each invoice and payout it is asked for."""

    def __init__(self, services):
        super().__init__(services, raise_errors=True)
        self.asked: list[tuple[str, int]] = []

    def generate_invoice(self, tenant_id: int, order_id: int):
        self.asked.append(("invoice", order_id))
        return super().generate_invoice(tenant_id, order_id)

    def pay_out_order(self, tenant_id: int, order_id: int):
        self.asked.append(("payout", order_id))
        return super().pay_out_order(tenant_id, order_id)


# ---------------------------------------------------------------------------------------------------------------
# The queue: nothing raises, and after a refusal nothing is even tried for a while
# ---------------------------------------------------------------------------------------------------------------

JOBS = [("deliver_notification", (1, 2)), ("generate_invoice", (1, 2)), ("process_webhook", (3,)),
        ("pay_out_order", (1, 2)), ("open_reviews", (1, 2)), ("index_pro", (1, 2)), ("index_request", (1, 2)),
        ("reindex_tenant", (1,))]


@pytest.mark.parametrize("method, args", JOBS)
def test_every_enqueue_returns_when_the_broker_refuses_and_the_next_one_is_not_tried(method, args, monkeypatch):
    jobs = dead_queue()
    sends = []
    real_send = jobs.app.send_task
    monkeypatch.setattr(jobs.app, "send_task", lambda *a, **kw: (sends.append((a, kw)), real_send(*a, **kw))[1])
    assert not jobs.paused

    assert getattr(jobs, method)(*args) is None  # the broker refused it: logged, not raised

    assert jobs.paused and len(sends) == 1
    assert sends[0][1]["ignore_result"] is True  # no result backend to wait on
    for other, other_args in JOBS:  # paused: no job of any kind tries the broker again
        assert getattr(jobs, other)(*other_args) is None
    assert len(sends) == 1


def test_jobs_reach_a_live_broker_by_name_with_no_result_stored(servers):
    import redis

    app = make_celery(Settings(redis_url=servers.redis_url))
    queue = f"mp-test-lost-{id(app)}"
    app.conf.task_default_queue = queue
    client = redis.Redis.from_url(servers.redis_url)
    client.delete(queue)
    jobs = CeleryJobQueue(app)
    try:
        jobs.generate_invoice(1, 2)
        jobs.pay_out_order(1, 2)
        assert not jobs.paused
        sent = [json.loads(m) for m in client.lrange(queue, 0, -1)]
        assert [m["headers"]["task"] for m in reversed(sent)] == ["orders.generate_invoice",
                                                                 "payments.pay_out_order"]
        assert {m["headers"]["ignore_result"] for m in sent} == {True}
    finally:
        client.delete(queue)


# ---------------------------------------------------------------------------------------------------------------
# The timers redo an order's lost follow-ups, and only those
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def market(svc):
    with svc.db.platform_session() as session:
        session.add(Tenant(slug="demo", name="Demo", payment_provider="demo"))
    t = svc.tenants.by_slug("demo")
    svc.catalog.seed_defaults(t.id)
    plumbing = next(c.id for c in svc.catalog.categories(t.id) if c.slug == "plumbing")
    people = {}
    for name, role in (("client", "client"), ("pro", "professional"), ("newpro", "professional"),
                       ("boss", "client")):
        people[name], _ = svc.accounts.sign_up(t, {"email": f"{name}@example.com", "password": PW,
                                                   "full_name": name.title(), "role": role})
    with svc.db.tenant_session(t.id) as session:  # the marketplace's admin: there is no sign-up as admin
        session.get(User, people["boss"].id).role = "admin"
    for name in ("pro", "newpro"):
        svc.pros.update_own(t, people[name], {
            "headline": "Good work, done well", "city": "Austin", "radius_km": 30, "hourly_rate": "80",
            "category_ids": [plumbing], "availability": {d: ["09:00", "17:00"] for d in
                                                         ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})
    return svc, t, people


def delivered_order(svc, t, client, pro) -> int:
    order_id = svc.orders.book(t, client, pro.id, {"hours": 2, "day": (date.today() + timedelta(days=1)).isoformat()})
    svc.orders.apply(t, pro, order_id, "accept")
    session_id = svc.orders.start_checkout(t, client, order_id).rsplit("/", 1)[-1]
    svc.payments.gateways["demo"].pay_hosted(session_id, number=CARD, exp_month=12, exp_year=date.today().year + 2,
                                             cvc="123")
    svc.orders.confirm_checkout(t, session_id, client)
    svc.orders.apply(t, pro, order_id, "start")
    svc.orders.apply(t, pro, order_id, "deliver")
    return order_id


def age_orders(svc, t, minutes: int) -> None:
    with svc.db.tenant_session(t.id) as session:
        for order in session.exec(select(Order)).all():
            order.state_changed_at -= timedelta(minutes=minutes)


def follow_ups(svc, t, order_id) -> tuple[bool, bool, bool]:
    """(has its invoice, its payout, its review window)."""
    with svc.db.tenant_session(t.id) as session:
        return (bool(session.get(Order, order_id).invoice_key),
                session.exec(select(Payout).where(Payout.order_id == order_id)).first() is not None,
                session.get(ReviewWindow, order_id) is not None)


def test_an_order_completed_while_redis_was_down_gets_its_invoice_payout_and_reviews_from_the_timers(market):
    svc, t, people = market
    client, pro = people["client"], people["pro"]
    assert svc.payments.payout_onboarding(t, pro) == ""  # a payout account before the work is paid for
    done = delivered_order(svc, t, client, pro)
    svc.orders.apply(t, client, done, "complete")  # Redis up: its follow-ups ran
    assert follow_ups(svc, t, done) == (True, True, True)

    lost = delivered_order(svc, t, client, pro)
    svc.orders.jobs = dead = dead_queue()
    view = svc.orders.apply(t, client, lost, "complete")  # Redis down: the step still succeeds

    assert view.state == "completed" and dead.paused
    assert follow_ups(svc, t, lost) == (False, False, False)

    svc.orders.jobs = svc.jobs = recorder = RecordingJobs(svc)  # Redis is back
    assert svc.orders.redo_lost_follow_ups(t) == {"invoices_redone": 0, "payouts_redone": 0}  # may still run
    age_orders(svc, t, 11)
    totals = svc.run_timers()

    assert (totals["invoices_redone"], totals["payouts_redone"]) == (1, 1)
    assert sorted(recorder.asked) == [("invoice", lost), ("payout", lost)]  # the completed one is left alone
    assert follow_ups(svc, t, lost) == (True, True, True)
    assert svc.payments.earnings(t, pro).available == "$0.00"

    recorder.asked.clear()
    totals = svc.run_timers()  # the next run: nothing left to redo
    assert (totals["invoices_redone"], totals["payouts_redone"]) == (0, 0) and recorder.asked == []


def test_a_share_released_before_the_pro_set_up_payouts_waits_for_their_own_pay_out(market):
    svc, t, people = market
    client, newpro = people["client"], people["newpro"]
    order_id = delivered_order(svc, t, client, newpro)
    svc.orders.apply(t, client, order_id, "complete")  # no payout account yet: the payout job sent nothing
    assert svc.payments.payout_onboarding(t, newpro) == ""
    with svc.db.tenant_session(t.id) as session:  # the account was made after the release
        session.execute(sa.update(LedgerTransaction).values(created_at=utcnow() - timedelta(hours=1)))
    age_orders(svc, t, 11)
    svc.orders.jobs = svc.jobs = recorder = RecordingJobs(svc)

    assert svc.run_timers()["payouts_redone"] == 0 and recorder.asked == []
    assert follow_ups(svc, t, order_id) == (True, False, True)
    assert svc.payments.pay_out(t, newpro) == 14400  # 2 h at $80, less the fee: the pro's own click


def test_a_payout_the_provider_refused_is_left_to_a_person(market, monkeypatch):
    svc, t, people = market
    client, pro = people["client"], people["pro"]
    assert svc.payments.payout_onboarding(t, pro) == ""
    order_id = delivered_order(svc, t, client, pro)

    def refuse(**_):
        raise PaymentDeclined("The payee's account is closed.")

    monkeypatch.setattr(svc.payments.gateways["demo"], "transfer", refuse)
    svc.orders.jobs = InlineJobQueue(svc)  # as a worker: the refused job fails, the admins are alerted
    svc.orders.apply(t, client, order_id, "complete")
    age_orders(svc, t, 11)
    svc.orders.jobs = svc.jobs = recorder = RecordingJobs(svc)

    assert svc.run_timers()["payouts_redone"] == 0 and recorder.asked == []  # not asked again every five minutes
    assert follow_ups(svc, t, order_id) == (True, False, True)
    monkeypatch.undo()  # the professional fixes their account and asks for it
    assert svc.payments.pay_out(t, pro) == 14400


# ---------------------------------------------------------------------------------------------------------------
# A provider webhook stored while its job could not be enqueued
# ---------------------------------------------------------------------------------------------------------------

def test_a_webhook_whose_job_was_lost_is_processed_by_the_timers_once(market):
    svc, t, people = market
    client, pro = people["client"], people["pro"]
    order_id = svc.orders.book(t, client, pro.id, {"hours": 1, "day": (date.today() + timedelta(days=1)).isoformat()})
    svc.orders.apply(t, pro, order_id, "accept")
    session_id = svc.orders.start_checkout(t, client, order_id).rsplit("/", 1)[-1]
    gateway = svc.payments.gateways["demo"]
    gateway.pay_hosted(session_id, number=CARD, exp_month=12, exp_year=date.today().year + 2, cvc="123")
    # the payer never comes back; the provider's event is stored, and its job is lost (Redis down)
    rows = []
    for event_id in ("evt_lost", "evt_recent", "evt_given_up"):
        payload = json.dumps({"id": event_id, "kind": "checkout_completed", "session_id": session_id,
                              "tenant_id": t.id}).encode()
        rows.append(svc.payments.record_webhook("demo", payload, {"demo-signature": gateway.sign(payload)}))
    svc.jobs = dead = dead_queue()
    svc.jobs.process_webhook(rows[0])
    assert dead.paused
    with svc.db.tenant_session(t.id) as session:
        for row_id, minutes, attempts in zip(rows, (20, 1, 20), (0, 0, 9), strict=True):
            session.execute(sa.update(WebhookEvent).where(WebhookEvent.id == row_id).values(
                received_at=utcnow() - timedelta(minutes=minutes), attempts=attempts))
    assert svc.orders.get(t, client, order_id).state == "accepted"

    svc.orders.jobs = svc.jobs = InlineJobQueue(svc, raise_errors=True)  # Redis is back
    assert svc.run_timers()["webhooks_redone"] == 1  # not the one just in, nor the one that alerted the admins

    assert svc.orders.get(t, client, order_id).state == "paid"
    with svc.db.tenant_session(t.id) as session:
        status = dict(session.exec(select(WebhookEvent.id, WebhookEvent.status)).all())
    assert status == {rows[0]: "processed", rows[1]: "received", rows[2]: "received"}
    assert svc.run_timers()["webhooks_redone"] == 0
