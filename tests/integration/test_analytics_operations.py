"""The admin's operations queues on SQLite and PostgreSQL, with the real services (demo gateway, dev outbox, inline
jobs): a disputed order, a reported review, a refused payout, a failed webhook, a failed email, professionals without
the verified badge and a suspended user each show in their queue with the right count and link, and leave it when the
admin acts; another marketplace's never show; only the marketplace's admin may look."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.accounts.models import UserStatus
from backend.analytics.operations import QUEUES, Operations
from backend.errors import PermissionDenied
from backend.identity import Caller, Role
from backend.money import fee_for
from backend.notifications.ports import PermanentDeliveryError
from backend.payments.models import WebhookEvent
from backend.payments.ports import PaymentDeclined
from tests.integration.test_orders import TODAY, act, make_admin, make_pro, user

CLIENT_REVIEW = {"stars": "1", "text": "Left water all over the floor.", "quality": "1", "communication": "2",
                 "punctuality": "3", "value": "1"}
PRO_REVIEW = {"stars": 4, "text": "Clear instructions and paid on time."}
PRICE_MINOR = 16000  # 2 h at the professional's $80 rate


def booked(svc, t, client, pro) -> int:
    order_id = svc.orders.book(t, client, pro.id, {"day": (TODAY + timedelta(days=1)).isoformat(), "hours": 2})
    for action, who in (("accept", pro), ("pay", client), ("start", pro), ("deliver", pro)):
        act(svc, t, who, order_id, action)
    return order_id


def world(svc, t, domain: str, monkeypatch) -> dict:
    """One marketplace with one item in every queue (two in pros awaiting verification)."""
    svc.catalog.seed_defaults(t.id)
    w = dict(t=t, admin=make_admin(svc, t, f"boss@{domain}"),
             client=user(svc, t, f"client@{domain}", name="Maria Lopez"),
             reporter=user(svc, t, f"reporter@{domain}"),
             pro=make_pro(svc, t, f"pro@{domain}"), verified=make_pro(svc, t, f"verified@{domain}"),
             gone=make_pro(svc, t, f"gone@{domain}"))
    svc.accounts.set_pro_verified(t, w["admin"], w["verified"].id, True)
    svc.accounts.set_user_status(t, w["admin"], w["gone"].id, UserStatus.SUSPENDED)  # suspended: not "awaiting"

    # a dispute
    w["disputed"] = booked(svc, t, w["client"], w["pro"])
    svc.orders.apply(t, w["client"], w["disputed"], "dispute", note="The tap still drips.")

    # a completed order, its reviews published, the client's reported
    w["completed"] = booked(svc, t, w["client"], w["pro"])
    act(svc, t, w["client"], w["completed"], "complete")  # no payout account yet: the payout waits
    w["review"] = svc.reviews.submit(t, w["client"], w["completed"], CLIENT_REVIEW).id
    svc.reviews.submit(t, w["pro"], w["completed"], PRO_REVIEW)
    svc.reviews.report(t, w["reporter"], w["review"], "It is about another job")

    # the completed order's payout, refused by the provider
    svc.payments.payout_onboarding(t, w["pro"])
    with monkeypatch.context() as patch:
        refused = PaymentDeclined("The bank account was closed (account_closed).")
        patch.setattr(svc.payments.gateways["demo"], "transfer", lambda **kw: (_ for _ in ()).throw(refused))
        with pytest.raises(PaymentDeclined):
            svc.payments.pay_out(t, w["pro"])

    # a provider event whose processing failed
    with svc.db.tenant_session(t.id) as s:
        row = WebhookEvent(provider="demo", event_id=f"evt_{domain}", kind="checkout_completed", tenant_id=t.id,
                           session_id="cs_demo_missing")
        s.add(row)
        s.flush()
        w["webhook"] = row.id

    def broken(tenant_id, session_id):
        raise RuntimeError("database connection reset while booking")

    with pytest.raises(RuntimeError):
        svc.payments.process_webhook(w["webhook"], broken)

    # an email the provider refused for good: the new user's confirmation
    email = svc.notifications.email
    send = email.send

    def bouncing(message):
        if message.recipient.startswith("bounce@"):
            raise PermanentDeliveryError("550 5.1.1 mailbox unavailable")
        return send(message)

    with monkeypatch.context() as patch:
        patch.setattr(email, "send", bouncing)
        w["bounce"] = user(svc, t, f"bounce@{domain}")

    w["newest_pro"] = make_pro(svc, t, f"new@{domain}")  # a second pro awaiting verification, the newest
    return w


@pytest.fixture
def ops(svc, tenants, monkeypatch):
    """The marketplace `demo` with one item in every queue; Operations' clock three days later."""
    later = datetime.now(UTC) + timedelta(days=3, hours=1)
    return dict(svc=svc, demo=world(svc, tenants[0], "demo.example.com", monkeypatch),
                ops=Operations(svc.orders, svc.payments, svc.reviews, svc.notifications, svc.accounts,
                               clock=lambda: later))


@pytest.fixture
def two(ops, tenants, monkeypatch):
    """And the same in the marketplace `acme`."""
    return ops | {"acme": world(ops["svc"], tenants[1], "acme.example.com", monkeypatch)}


EXPECTED_COUNTS = {"disputes": 1, "reported_reviews": 1, "failed_payouts": 1, "failed_webhooks": 1,
                   "failed_notifications": 1, "pros_awaiting_verification": 2, "suspended_users": 1}


def test_every_queue_lists_its_item_with_a_link_where_the_admin_acts(ops):
    svc, w = ops["svc"], ops["demo"]
    t, admin = w["t"], w["admin"]
    queues = ops["ops"].queues(t, admin)
    assert queues.counts == EXPECTED_COUNTS
    assert list(queues.counts) == [q.key for q in QUEUES]
    assert ops["ops"].counts(t, admin) == EXPECTED_COUNTS

    [dispute] = queues.disputes
    assert dispute["order_id"] == w["disputed"] and dispute["link"] == f"/orders/{w['disputed']}"
    assert (dispute["amount"], dispute["amount_minor"], dispute["age_days"]) == ("$160.00", PRICE_MINOR, 3)
    assert (dispute["client"], dispute["pro"]) == ("Maria Lopez", "pro")
    assert dispute["title"] == "2 h with pro"

    [review] = queues.reported_reviews
    assert (review["review_id"], review["order_id"], review["open_reports"]) == (w["review"], w["completed"], 1)
    assert review["reasons"] == ["It is about another job"] and review["link"] == "/admin/reviews"
    assert (review["author"], review["subject"], review["stars"], review["age_days"]) == ("Maria Lopez", "pro", 1, 3)
    assert review["excerpt"] == CLIENT_REVIEW["text"]

    [payout] = queues.failed_payouts
    share = PRICE_MINOR - fee_for(PRICE_MINOR, t.platform_fee_bps)
    assert (payout["order_id"], payout["amount_minor"], payout["pro"]) == (w["completed"], share, "pro")
    assert payout["amount"] == f"${share / 100:,.2f}" and payout["link"] == "/admin/payments"
    assert payout["alert"].startswith("Payout of") and "failed" in payout["alert"]

    [webhook] = queues.failed_webhooks
    assert (webhook["id"], webhook["status"], webhook["link"]) == (w["webhook"], "failed", "/admin/payments")
    assert "connection reset" in webhook["error"]

    [failed] = queues.failed_notifications
    assert failed["recipient"] == "bounce@demo.example.com" and failed["channel"] == "email"
    assert "mailbox unavailable" in failed["error"] and failed["link"] == "/admin/notifications"

    assert [(p["user_id"], p["link"]) for p in queues.pros_awaiting_verification] == [
        (w["newest_pro"].id, "/admin/users"), (w["pro"].id, "/admin/users")]  # newest first; not the verified one
    assert [(u["user_id"], u["status"], u["link"]) for u in queues.suspended_users] == [
        (w["gone"].id, "suspended", "/admin/users")]
    assert datetime.fromisoformat(queues.generated_at) > datetime.now(UTC) + timedelta(days=3)

    # the services' reads: the whole queue counted, at most `limit` rows, none for limit=0 (the badges)
    total, rows = svc.accounts.pros_awaiting_verification(t, admin, limit=1)
    assert (total, [r.id for r in rows]) == (2, [w["newest_pro"].id])
    assert svc.accounts.pros_awaiting_verification(t, admin, limit=0) == (2, [])
    assert svc.orders.disputes_waiting(t, admin, limit=0) == (1, [])
    assert svc.reviews.open_reports(t, admin, limit=0) == (1, [])
    assert svc.payments.failed_payouts(t, admin, limit=0) == (1, [])
    assert svc.payments.failed_webhooks(t, admin, limit=0) == (1, [])
    assert svc.notifications.failed_queue(admin, limit=0) == (1, [])
    assert svc.accounts.suspended_users(t, admin, limit=0) == (1, [])


def test_another_marketplace_never_shows_and_its_admin_is_refused(two):
    demo, acme, operations = two["demo"], two["acme"], two["ops"]
    mine, theirs = operations.queues(demo["t"], demo["admin"]), operations.queues(acme["t"], acme["admin"])
    assert theirs.counts == EXPECTED_COUNTS  # each sees exactly its own
    for key in ("disputes", "failed_payouts"):
        assert {r["order_id"] for r in getattr(mine, key)} == {demo["disputed" if key == "disputes" else "completed"]}
        assert {r["order_id"] for r in getattr(theirs, key)} == {acme["disputed" if key == "disputes" else "completed"]}
    assert [r["review_id"] for r in theirs.reported_reviews] == [acme["review"]]
    assert [r["id"] for r in theirs.failed_webhooks] == [acme["webhook"]]
    assert [r["recipient"] for r in theirs.failed_notifications] == ["bounce@acme.example.com"]
    demo_people = {demo[k].id for k in ("pro", "newest_pro", "gone")}
    acme_people = {acme[k].id for k in ("pro", "newest_pro", "gone")}
    shown = lambda q: {u["user_id"] for u in q.pros_awaiting_verification + q.suspended_users}  # noqa: E731
    assert shown(mine) == demo_people and shown(theirs) == acme_people
    with pytest.raises(PermissionDenied):
        operations.queues(demo["t"], acme["admin"])
    with pytest.raises(PermissionDenied):
        operations.counts(demo["t"], acme["admin"])


def test_only_the_marketplace_admin_may_see_the_queues_or_the_service_reads(ops):
    svc, w = ops["svc"], ops["demo"]
    t = w["t"]
    operator = Caller(role=Role.OPERATOR, id=1, tenant_id=None)
    for caller in (w["client"], w["pro"], operator, None):
        reads = [ops["ops"].queues, ops["ops"].counts, svc.orders.disputes_waiting, svc.reviews.open_reports,
                 svc.payments.failed_payouts, svc.payments.failed_webhooks, svc.accounts.pros_awaiting_verification,
                 svc.accounts.suspended_users, lambda _, c: svc.notifications.failed_queue(c)]
        for read in reads:
            with pytest.raises(PermissionDenied):
                read(t, caller)


def test_items_leave_their_queue_when_the_admin_acts(ops):
    svc, w, operations = ops["svc"], ops["demo"], ops["ops"]
    t, admin = w["t"], w["admin"]
    svc.orders.apply(t, admin, w["disputed"], "resolve_release", note="Photos show the tap fixed.")
    svc.reviews.hide(t, admin, w["review"], "Describes another job")
    assert svc.payments.pay_out(t, w["pro"]) > 0  # the provider takes it this time
    [failed] = svc.notifications.failed_queue(admin)[1]
    svc.notifications.retry(admin, failed.id)
    svc.jobs.deliver_notification(t.id, failed.id)  # delivered now (the patch that bounced it is gone)
    svc.accounts.set_pro_verified(t, admin, w["pro"].id, True)
    svc.accounts.set_user_status(t, admin, w["gone"].id, UserStatus.ACTIVE)
    assert operations.counts(t, admin) == {"disputes": 0, "reported_reviews": 0, "failed_payouts": 0,
                                           "failed_webhooks": 1, "failed_notifications": 0,
                                           "pros_awaiting_verification": 2, "suspended_users": 0}
    # the reactivated pro is unverified again in the queue; the one verified has left it
    assert {p["user_id"] for p in operations.queues(t, admin).pros_awaiting_verification} == {
        w["newest_pro"].id, w["gone"].id}
