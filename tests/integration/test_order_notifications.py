"""The order lifecycle, payments, payouts and disputes notify through the catalogue, on SQLite and PostgreSQL, with the
real services (demo gateway, dev email and SMS outboxes, inline jobs): each step writes the right delivery rows in
its own transaction (default preferences: in-app + email; SMS only where the catalogue turns it on and the user has
a verified phone), a booking request gets the client a receipt, a cancellation tells the other party (both when the
admin cancels) what happened to the money, an order expired unpaid tells both, the auto-complete reminder goes once,
admin alerts reach every admin of the marketplace and no one of another, and a step replayed adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from backend.accounts.models import User
from backend.db import utcnow
from backend.errors import DomainError, NotFound
from backend.notifications.bell import LocalBell
from backend.notifications.catalogue import Event
from backend.notifications.models import Channel, DeliveryStatus, Notification
from backend.orders import process
from backend.orders.models import Order
from backend.orders.notices import EscrowMove
from backend.payments.models import WebhookEvent
from backend.payments.ports import PaymentDeclined, PaymentUnavailable
from backend.payments.webhooks import ATTEMPTS_BEFORE_ALERT
from tests.integration.test_orders import act, make_admin, make_pro, user

DAYTIME = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # outside SMS quiet hours: texts go at once
PRO_PHONE = "+15125550123"
APP, EMAIL, SMS = Channel.IN_APP.value, Channel.EMAIL.value, Channel.SMS.value


@pytest.fixture
def m(svc, tenants):
    demo, acme = tenants
    svc.notifications.clock = lambda: DAYTIME
    for tenant in (demo, acme):
        svc.catalog.seed_defaults(tenant.id)
    market = dict(svc=svc, t=demo, acme=acme,
                  client=user(svc, demo, "client@example.com", name="Maria Lopez"),
                  pro=make_pro(svc, demo, "pro@example.com", rate="80"),
                  admin=make_admin(svc, demo, "boss@example.com"),
                  admin2=make_admin(svc, demo, "deputy@example.com"),
                  acme_admin=make_admin(svc, acme, "boss@acme.example.com"))
    with svc.db.tenant_session(demo.id) as s:  # verified the way AccountService.verify_phone leaves it
        pro = s.get(User, market["pro"].id)
        pro.phone_e164, pro.phone_verified_at = PRO_PHONE, utcnow()
    return market


def rows(m, tenant=None, **where) -> list[Notification]:
    with m["svc"].db.tenant_session((tenant or m["t"]).id) as s:
        query = select(Notification).order_by(Notification.id)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        return list(s.exec(query).all())


def sent(m, event: Event, tenant=None) -> set[tuple[int, str]]:
    """(user id, channel) of the event's rows."""
    return {(n.user_id, n.channel) for n in rows(m, tenant, event=event.value)}


def order_rows(m) -> list[Notification]:
    """The rows of orders and payments (a completion also opens the review window, whose messages reviews send)."""
    return [n for n in rows(m) if not n.event.startswith("review_")]


def acme_news(m) -> list[str]:
    """What the other marketplace's people were told, beyond their own sign-up's email confirmation."""
    return [n.event for n in rows(m, m["acme"]) if n.event != Event.VERIFY_EMAIL.value]


def both(user_id: int) -> set[tuple[int, str]]:
    return {(user_id, APP), (user_id, EMAIL)}


def book(m, day_offset: int = 7) -> int:
    monday = utcnow().date() + timedelta(days=day_offset - utcnow().date().weekday())
    return m["svc"].orders.book(m["t"], m["client"], m["pro"].id, {"hours": 3, "day": monday.isoformat()})


def delivered_order(m) -> int:
    svc, t = m["svc"], m["t"]
    order_id = book(m)
    for action, who in (("accept", "pro"), ("pay", "client"), ("start", "pro"), ("deliver", "pro")):
        act(svc, t, m[who], order_id, action)
    return order_id


# ------------------------------------------------------------------------------------------------ the lifecycle


def test_each_step_of_a_booking_notifies_the_party_it_concerns(m):
    svc, t, client, pro = m["svc"], m["t"], m["client"].id, m["pro"].id
    order_id = book(m)
    # a booking request is time-critical: SMS on by default, and the professional has a verified phone
    assert sent(m, Event.BOOKING_REQUESTED) == both(pro) | {(pro, SMS)}
    # the client's receipt: no answer deadline (a requested booking has no timer), the payment window after it
    assert sent(m, Event.BOOKING_SENT) == both(client)
    [receipt] = rows(m, event=Event.BOOKING_SENT.value, channel=EMAIL)
    assert receipt.subject.startswith("Booking request sent to pro: 3 h with pro, ")
    assert "once they accept, you have 48 hours to pay" in receipt.body and "$240.00" in receipt.body
    assert (receipt.recipient, receipt.link) == ("client@example.com", f"/orders/{order_id}")
    [text] = rows(m, event=Event.BOOKING_REQUESTED.value, channel=SMS)
    assert (text.recipient, text.status) == (PRO_PHONE, DeliveryStatus.SENT)  # delivered by its job after commit
    assert "Maria Lopez" in text.body and "$240.00" in text.body
    [email] = rows(m, event=Event.BOOKING_REQUESTED.value, channel=EMAIL)
    assert (email.recipient, email.status, email.link) == ("pro@example.com", DeliveryStatus.SENT,
                                                           f"/orders/{order_id}")

    steps = [("accept", "pro", Event.BOOKING_ACCEPTED, both(client)),
             ("pay", "client", Event.PAYMENT_HELD, both(pro)),  # SMS available, off by default: none
             ("start", "pro", Event.WORK_STARTED, both(client)),
             ("deliver", "pro", Event.WORK_DELIVERED, both(client)),  # the client has no phone: no SMS
             ("complete", "client", Event.ORDER_COMPLETED, both(client) | both(pro))]
    for action, who, event, expected in steps:
        before = len(order_rows(m))
        act(svc, t, m[who], order_id, action)
        assert sent(m, event) == expected, action
        assert len(order_rows(m)) == before + len(expected), f"{action} wrote only its own event's rows"

    held = rows(m, event=Event.PAYMENT_HELD.value, channel=APP)[0]
    assert "$240.00" in held.subject and held.link == f"/orders/{order_id}"
    assert "7 days" in rows(m, event=Event.WORK_DELIVERED.value, channel=EMAIL)[0].body
    completed = {n.user_id: n.body for n in rows(m, event=Event.ORDER_COMPLETED.value, channel=APP)}
    assert completed[client].startswith("With pro.") and completed[pro].startswith("With Maria Lopez.")
    assert all(n.status == DeliveryStatus.SENT for n in rows(m))
    assert acme_news(m) == []


def test_a_declined_booking_sends_the_client_looking_for_another_pro(m):
    svc, t = m["svc"], m["t"]
    order_id = book(m)
    svc.orders.apply(t, m["pro"], order_id, "decline", note="Booked that morning, sorry.")
    assert sent(m, Event.BOOKING_DECLINED) == both(m["client"].id)
    [email] = rows(m, event=Event.BOOKING_DECLINED.value, channel=EMAIL)
    assert email.link == "/pros" and "Booked that morning, sorry." in email.body


def test_a_booking_the_client_cancels_tells_the_professional_only(m):
    svc, t, pro = m["svc"], m["t"], m["pro"].id
    order_id = book(m)
    before = len(rows(m))
    svc.orders.apply(t, m["client"], order_id, "cancel")
    assert sent(m, Event.ORDER_CANCELLED) == both(pro)  # no SMS for cancellations, phone or not
    assert len(rows(m)) == before + 2
    [note] = rows(m, event=Event.ORDER_CANCELLED.value, channel=APP)
    assert note.subject == 'Order cancelled: "3 h with pro"' and note.link == f"/orders/{order_id}"
    assert note.body == "Maria Lopez cancelled it. The client had not paid yet."
    # written again (a retried transaction): the audit row still says the client cancelled, so nobody new is told
    with svc.db.tenant_session(t.id) as s:
        assert svc.orders.notices.after(s, t, s.get(Order, order_id), "cancel") == []
    assert len(rows(m)) == before + 2


def test_a_paid_order_the_professional_cancels_tells_the_client_of_the_refund(m):
    svc, t, client = m["svc"], m["t"], m["client"].id
    order_id = book(m)
    for action, who in (("accept", "pro"), ("pay", "client")):
        act(svc, t, m[who], order_id, action)
    svc.orders.apply(t, m["pro"], order_id, "cancel", note="My van broke down, sorry.")
    assert sent(m, Event.ORDER_CANCELLED) == both(client)
    [email] = rows(m, event=Event.ORDER_CANCELLED.value, channel=EMAIL)
    assert email.subject == "3 h with pro was cancelled" and email.recipient == "client@example.com"
    assert "pro cancelled \"3 h with pro\"." in email.body and '"My van broke down, sorry."' in email.body
    assert "The $240.00 held for this order is refunded to you." in email.body


def test_an_order_the_admin_cancels_tells_both_parties_with_the_reason(m):
    svc, t, client, pro = m["svc"], m["t"], m["client"].id, m["pro"].id
    order_id = delivered_order(m)
    svc.orders.apply(t, m["admin"], order_id, "cancel", note="The professional never came.")
    assert sent(m, Event.ORDER_CANCELLED) == both(client) | both(pro)
    told = {n.user_id: n.body for n in rows(m, event=Event.ORDER_CANCELLED.value, channel=APP)}
    assert told[client] == ('The Demo team cancelled it. "The professional never came." '
                            "The $240.00 held for this order is refunded to you.")
    assert told[pro].endswith("The $240.00 held for this order is refunded to the client.")
    assert acme_news(m) == []
    with svc.db.tenant_session(t.id) as s:  # replayed with the escrow it moved: no new row
        order = s.get(Order, order_id)
        assert svc.orders.notices.after(s, t, order, "cancel", note="The professional never came.",
                                        move=EscrowMove.of("cancel", 24000, None)) == []
    assert len(rows(m, event=Event.ORDER_CANCELLED.value)) == 4


def test_an_order_left_unpaid_expires_and_both_parties_are_told_once(m):
    svc, t, client, pro = m["svc"], m["t"], m["client"].id, m["pro"].id
    order_id = book(m)
    act(svc, t, m["pro"], order_id, "accept")
    with svc.db.tenant_session(t.id) as s:
        accepted_at = s.get(Order, order_id).state_changed_at
    due = accepted_at + process.UNPAID_EXPIRY
    assert svc.orders.run_timers(t, due - timedelta(minutes=1))["expire"] == 0
    assert sent(m, Event.ORDER_EXPIRED) == set()
    assert svc.orders.run_timers(t, due + timedelta(minutes=1))["expire"] == 1
    assert sent(m, Event.ORDER_EXPIRED) == both(client) | both(pro)
    told = {n.user_id: n for n in rows(m, event=Event.ORDER_EXPIRED.value, channel=EMAIL)}
    assert told[client].subject == "3 h with pro expired unpaid"
    assert '"3 h with pro" with pro has expired: it was not paid within 48 hours' in told[client].body
    assert "book again or find another pro" in told[client].body
    assert "with Maria Lopez has expired" in told[pro].body and "time you set aside is free" in told[pro].body
    assert svc.orders.run_timers(t, due + timedelta(hours=1))["expire"] == 0
    with svc.db.tenant_session(t.id) as s:
        assert svc.orders.notices.after(s, t, s.get(Order, order_id), "expire") == []
    assert len(rows(m, event=Event.ORDER_EXPIRED.value)) == 4


# ------------------------------------------------------------------------------------------------ payouts


def test_a_payout_tells_the_professional_and_a_refused_one_alerts_every_admin_once(m, monkeypatch):
    svc, t, pro = m["svc"], m["t"], m["pro"]
    order_id = delivered_order(m)
    act(svc, t, m["client"], order_id, "complete")  # the payout job waits: no payout account yet
    assert sent(m, Event.PAYOUT_SENT) == set()
    svc.payments.payout_onboarding(t, pro)

    demo = svc.payments.gateways["demo"]
    refused = PaymentDeclined("The bank account was closed (account_closed).")
    monkeypatch.setattr(demo, "transfer", lambda **kwargs: (_ for _ in ()).throw(refused))
    for _ in range(2):  # the professional clicks again: the same refusal, the same alert
        with pytest.raises(PaymentDeclined):
            svc.payments.pay_out(t, pro)
    admins = {m["admin"].id, m["admin2"].id}
    assert sent(m, Event.ADMIN_PAYOUT_FAILED) == {(a, c) for a in admins for c in (APP, EMAIL)}
    [alert] = rows(m, event=Event.ADMIN_PAYOUT_FAILED.value, channel=EMAIL, user_id=m["admin"].id)
    assert "account_closed" in alert.body and "$216.00" in alert.body and alert.link == "/admin/payments"
    assert sent(m, Event.ADMIN_PAYOUT_FAILED, m["acme"]) == set()
    assert sent(m, Event.PAYOUT_SENT) == set()  # nothing moved, nothing announced

    monkeypatch.undo()
    assert svc.payments.pay_out(t, pro) == 21600
    assert sent(m, Event.PAYOUT_SENT) == both(pro.id)  # SMS available, off by default
    [email] = rows(m, event=Event.PAYOUT_SENT.value, channel=EMAIL)
    assert "$216.00" in email.body and "demo (test mode) payout account" in email.body
    assert email.link == "/pro/earnings"


def test_the_payout_job_after_completion_announces_the_payout(m):
    svc, t, pro = m["svc"], m["t"], m["pro"]
    svc.payments.payout_onboarding(t, pro)
    order_id = delivered_order(m)
    act(svc, t, m["client"], order_id, "complete")  # release, then the inline payout job
    assert sent(m, Event.PAYOUT_SENT) == both(pro.id)
    assert svc.payments.pay_out_order(t, order_id) == 0  # the job again: paid already, nobody told twice
    assert len(rows(m, event=Event.PAYOUT_SENT.value)) == 2


# ------------------------------------------------------------------------------------------------ disputes


def test_a_dispute_tells_the_professional_and_every_admin_and_its_resolution_both_parties(m):
    svc, t, client, pro = m["svc"], m["t"], m["client"].id, m["pro"].id
    order_id = delivered_order(m)
    svc.orders.apply(t, m["client"], order_id, "dispute", note="The tap still drips.")
    assert sent(m, Event.DISPUTE_OPENED) == both(pro)  # SMS available, off by default
    assert "The tap still drips." in rows(m, event=Event.DISPUTE_OPENED.value, channel=EMAIL)[0].body
    admins = {m["admin"].id, m["admin2"].id}
    assert sent(m, Event.ADMIN_DISPUTE_OPENED) == {(a, c) for a in admins for c in (APP, EMAIL)}
    [alert] = rows(m, event=Event.ADMIN_DISPUTE_OPENED.value, channel=EMAIL, user_id=m["admin2"].id)
    assert all(text in alert.body for text in (f"#{order_id}", "Maria Lopez (client)", "$240.00",
                                               "The tap still drips."))
    assert alert.link == f"/orders/{order_id}"
    assert acme_news(m) == []  # another marketplace's admin hears nothing

    svc.orders.apply(t, m["admin"], order_id, "resolve_split", refund="90", note="Half the job was redone.")
    assert sent(m, Event.DISPUTE_RESOLVED) == both(client) | both(pro)
    outcome = rows(m, event=Event.DISPUTE_RESOLVED.value, channel=APP, user_id=client)[0].body
    assert "$90.00 was refunded to the client and $150.00 released to the professional" in outcome
    assert "Half the job was redone." in outcome


# ------------------------------------------------------------------------------------------------ timers


def test_the_auto_complete_reminder_goes_once_a_day_before_and_the_timeline_says_so(m):
    svc, t, client = m["svc"], m["t"], m["client"].id
    order_id = delivered_order(m)
    with svc.db.tenant_session(t.id) as s:
        delivered_at = s.get(Order, order_id).state_changed_at
    due = delivered_at + process.AUTO_COMPLETE_AFTER
    svc.orders.run_timers(t, due - timedelta(hours=25))
    assert sent(m, Event.AUTO_COMPLETE_SOON) == set()  # not yet
    for hours_before in (23.5, 20, 1):  # every timer run within the last day
        assert svc.orders.run_timers(t, due - timedelta(hours=hours_before)) == {"expire": 0, "auto_complete": 0}
    assert sent(m, Event.AUTO_COMPLETE_SOON) == both(client)
    [email] = rows(m, event=Event.AUTO_COMPLETE_SOON.value, channel=EMAIL)
    assert "24 hours" in email.body and email.link == f"/orders/{order_id}"
    view = svc.orders.get(t, m["client"], order_id)
    assert view.state == "delivered"
    assert [e.action for e in view.events][-1] == process.REMIND_AUTO_COMPLETE

    assert svc.orders.run_timers(t, due + timedelta(minutes=1))["auto_complete"] == 1
    assert sent(m, Event.ORDER_COMPLETED) == both(client) | both(m["pro"].id)
    assert len(rows(m, event=Event.AUTO_COMPLETE_SOON.value)) == 2


def test_an_order_already_due_is_completed_without_a_reminder(m):
    svc, t = m["svc"], m["t"]
    order_id = delivered_order(m)
    with svc.db.tenant_session(t.id) as s:
        delivered_at = s.get(Order, order_id).state_changed_at
    svc.orders.run_timers(t, delivered_at + process.AUTO_COMPLETE_AFTER + timedelta(hours=2))
    assert svc.orders.get(t, m["client"], order_id).state == "completed"
    assert sent(m, Event.AUTO_COMPLETE_SOON) == set()


# ------------------------------------------------------------------------------------------------ replays


def test_a_step_replayed_adds_nothing(m):
    svc, t = m["svc"], m["t"]
    order_id = book(m)
    svc.orders.apply(t, m["pro"], order_id, "accept")
    url = svc.orders.start_checkout(t, m["client"], order_id)
    session_id = url.rsplit("/", 1)[-1]
    svc.payments.gateways["demo"].pay_hosted(session_id, number="4242 4242 4242 4242", exp_month=12,
                                             exp_year=utcnow().year + 2, cvc="123")
    svc.orders.confirm_checkout(t, session_id, m["client"])
    count = len(rows(m))
    # the return page reloaded and the webhook's job confirm the same checkout: booked once, announced once
    assert svc.orders.confirm_checkout(t, session_id, m["client"]) == order_id
    assert svc.orders.confirm_checkout(t, session_id) == order_id
    assert len(rows(m)) == count
    # the same step's messages written again (a retried transaction, a settled refund replayed): no new row
    with svc.db.tenant_session(t.id) as s:
        order = s.get(Order, order_id)
        assert svc.orders.notices.after(s, t, order, "pay") == []
        assert svc.orders.notices.booking_requested(s, t, order) == []
    assert len(rows(m)) == count
    with pytest.raises(DomainError):  # the step itself cannot happen twice
        svc.orders.apply(t, m["pro"], order_id, "accept")
    assert len(rows(m)) == count


# ------------------------------------------------------------------------------------------------ webhooks


def stored_webhook(m, event_id: str = "evt_1") -> int:
    """A verified checkout event as WebhookIntake.record stores it (the demo gateway's session)."""
    with m["svc"].db.tenant_session(m["t"].id) as s:
        row = WebhookEvent(provider="demo", event_id=event_id, kind="checkout_completed", tenant_id=m["t"].id,
                           session_id="cs_demo_missing")
        s.add(row)
        s.flush()
        return row.id


def test_a_webhook_recorded_as_failed_alerts_the_admins_once_however_often_its_job_retries(m):
    svc = m["svc"]
    row_id = stored_webhook(m)

    def broken(tenant_id, session_id):
        raise RuntimeError("database connection reset while booking")

    for _ in range(3):  # Celery retries the task on any exception
        with pytest.raises(RuntimeError):
            svc.payments.process_webhook(row_id, broken)
    admins = {m["admin"].id, m["admin2"].id}
    assert sent(m, Event.ADMIN_WEBHOOK_FAILED) == {(a, c) for a in admins for c in (APP, EMAIL)}
    [alert] = rows(m, event=Event.ADMIN_WEBHOOK_FAILED.value, channel=EMAIL, user_id=m["admin"].id)
    assert "database connection reset" in alert.body and "checkout_completed (evt_1)" in alert.body
    assert alert.status == DeliveryStatus.SENT and alert.link == "/admin/payments"
    assert sent(m, Event.ADMIN_WEBHOOK_FAILED, m["acme"]) == set()


def test_a_webhook_whose_provider_stays_unreachable_alerts_on_its_last_attempt(m):
    svc = m["svc"]
    row_id = stored_webhook(m, "evt_2")

    def unreachable(tenant_id, session_id):
        raise PaymentUnavailable("The payment provider is not answering. Please try again.")

    for attempt in range(1, ATTEMPTS_BEFORE_ALERT + 2):
        with pytest.raises(PaymentUnavailable):
            svc.payments.process_webhook(row_id, unreachable)
        alerted = sent(m, Event.ADMIN_WEBHOOK_FAILED)
        assert bool(alerted) == (attempt >= ATTEMPTS_BEFORE_ALERT), attempt
    assert len(rows(m, event=Event.ADMIN_WEBHOOK_FAILED.value)) == 4  # 2 admins x (in-app, email), once


def test_a_webhook_processed_normally_alerts_nobody(m):
    svc = m["svc"]
    row_id = stored_webhook(m, "evt_3")
    assert svc.payments.process_webhook(row_id, lambda tenant_id, session_id: None) == "confirmed"
    assert sent(m, Event.ADMIN_WEBHOOK_FAILED) == set()



def test_open_order_pages_are_told_of_every_step_and_of_the_invoice(m):
    # The order page reloads itself when its viewer's bell is pushed: every step rings both parties after commit
    # (even the one who acted: their other tabs), and so does the invoice job, which notifies nobody.
    svc, t = m["svc"], m["t"]
    bell = svc.notifications.bell = LocalBell()
    parties = {(t.id, m["client"].id), (t.id, m["pro"].id)}
    order_id = delivered_order(m)
    assert parties <= set(bell.wait(0.1))
    act(svc, t, m["client"], order_id, "complete")  # the inline queue also generates the invoice after commit
    assert parties <= set(bell.wait(0.1))
    while bell.wait(0.05):  # what is left of the completion's rings
        pass
    with svc.db.tenant_session(t.id) as s:
        s.get(Order, order_id).invoice_key = ""  # as if the job had not run yet
    svc.orders.generate_invoice(t, order_id)
    assert set(bell.wait(0.1)) == parties
    with pytest.raises(NotFound):  # a step refused rolls back: nobody is rung
        svc.orders.apply(t, m["pro"], 10_000, "start")
    assert bell.wait(0.05) == []
