"""Marketplace core on SQLite and PostgreSQL: requests, leads, quotes, the order lifecycle,
payments through the demo gateway, timers, invoices, and who may do what."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlmodel import select

from backend.accounts.models import User
from backend.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.identity import Role
from backend.orders import process
from backend.orders.models import Order, OrderEvent, ServiceRequest
from backend.payments.models import DemoCharge
from backend.payments.ports import PaymentDeclined

PW = "pw-1234567890"
GOOD_CARD = "4242 4242 4242 4242"
TODAY = date.today()


def pay(svc, tenant, client, order_id, card=GOOD_CARD):
    """Pay as a browser would: start checkout, fill the demo gateway's hosted page, come back."""
    url = svc.orders.start_checkout(tenant, client, order_id)
    session_id = url.rsplit("/", 1)[-1]
    svc.payments.gateways["demo"].pay_hosted(session_id, number=card, exp_month=12, exp_year=TODAY.year + 2,
                                             cvc="123")
    return svc.orders.confirm_checkout(tenant, session_id, client)


def act(svc, tenant, who, order_id, action):
    if action == "pay":
        return pay(svc, tenant, who, order_id)
    return svc.orders.apply(tenant, who, order_id, action)


def user(svc, tenant, email, role="client", name=None):
    actor, _ = svc.accounts.sign_up(tenant, {"email": email, "password": PW, "full_name": name or email.split("@")[0],
                                             "role": role})
    return actor


def make_admin(svc, tenant, email="boss@example.com"):
    """A tenant admin: one signs up as a client, the role is set on the User row (there is no sign-up as admin),
    and the new login carries it."""
    user(svc, tenant, email)
    with svc.db.tenant_session(tenant.id) as s:
        s.exec(select(User).where(User.email == email)).one().role = Role.ADMIN
    admin, _ = svc.accounts.login(tenant, email, PW)
    assert admin.role == Role.ADMIN
    return admin


def category_id(svc, tenant, slug):
    return next(c.id for c in svc.catalog.categories(tenant.id) if c.slug == slug)


def make_pro(svc, tenant, email, city="Austin", slugs=("plumbing",), rate="80"):
    pro = user(svc, tenant, email, role="professional")
    svc.pros.update_own(tenant, pro, {
        "headline": f"{email} does good work", "city": city, "radius_km": 30, "hourly_rate": rate,
        "category_ids": [category_id(svc, tenant, s) for s in slugs],
        "availability": {"mon": ["09:00", "17:00"], "tue": ["09:00", "17:00"], "wed": ["09:00", "17:00"],
                         "thu": ["09:00", "17:00"], "fri": ["09:00", "17:00"], "sat": ["10:00", "14:00"],
                         "sun": ["10:00", "14:00"]}})
    return pro


REQUEST = {"title": "Fix a leaking kitchen tap", "description": "The kitchen tap drips all night, needs a washer.",
           "city": "Austin", "budget_min": "50", "budget_max": "150"}


@pytest.fixture
def market(svc, tenants):
    demo, acme = tenants
    svc.catalog.seed_defaults(demo.id)
    svc.catalog.seed_defaults(acme.id)
    client = user(svc, demo, "client@example.com")
    other_client = user(svc, demo, "other@example.com")
    pro = make_pro(svc, demo, "pro@example.com")
    pro2 = make_pro(svc, demo, "pro2@example.com", city="Round Rock")  # ~28 km away: inside 30 km
    far_pro = make_pro(svc, demo, "far@example.com", city="Boston")
    electrician = make_pro(svc, demo, "sparky@example.com", slugs=("electrical",))
    return dict(svc=svc, t=demo, acme=acme, client=client, other_client=other_client, pro=pro, pro2=pro2,
                far_pro=far_pro, electrician=electrician)


def post_request(m, **over):
    data = REQUEST | {"category_id": category_id(m["svc"], m["t"], "plumbing")} | over
    return m["svc"].quotes.create_request(m["t"], m["client"], data)


def quote(m, request_id, pro_key="pro", price="120", **over):
    data = {"price": price, "message": "I can fix it tomorrow morning.", "duration_hours": 2,
            "valid_until": (TODAY + timedelta(days=7)).isoformat()} | over
    return m["svc"].quotes.send_quote(m["t"], m[pro_key], request_id, data)


def order_count(svc, tenant):
    with svc.db.tenant_session(tenant.id) as s:
        return len(s.exec(select(Order)).all())


# ---------------------------------------------------------------- requests and leads

def test_bad_requests_write_nothing(market):
    m = market
    cases = [({"title": "Fix"}, "title"), ({"description": "short"}, "description"), ({"city": ""}, "city"),
             ({"category_id": 0}, "category_id"), ({"category_id": 99999}, "category_id"),
             ({"budget_min": "-5"}, "budget_min"), ({"budget_max": "lots"}, "budget_max"),
             ({"budget_min": "300", "budget_max": "100"}, "budget_max"),
             ({"preferred_start": (TODAY - timedelta(days=1)).isoformat()}, "preferred_start"),
             ({"title": "x" * 121}, "title")]
    for over, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            post_request(m, **over)
        assert field in exc.value.errors, (over, exc.value.errors)
    with m["svc"].db.tenant_session(m["t"].id) as s:
        assert s.exec(select(ServiceRequest)).all() == []


def test_leads_reach_pros_in_category_and_area_only(market):
    m = market
    request_id = post_request(m)
    leads = lambda key: [r.id for r in m["svc"].quotes.leads(m["t"], m[key])]  # noqa: E731
    assert leads("pro") == [request_id] and leads("pro2") == [request_id]
    assert leads("far_pro") == [] and leads("electrician") == []
    with pytest.raises(PermissionDenied):
        m["svc"].quotes.leads(m["t"], m["client"])
    m["svc"].quotes.decline_lead(m["t"], m["pro2"], request_id)
    assert leads("pro2") == []


@pytest.mark.parametrize(("price", "message"), [("0", "more than zero"), ("-10", "negative"),
                                                ("10000000", "at most"), ("12.345", "2 decimal"),
                                                ("abc", "number"), ("", "Enter")])
def test_absurd_quotes_are_refused(market, price, message):
    m = market
    request_id = post_request(m)
    with pytest.raises(ValidationFailed) as exc:
        quote(m, request_id, price=price)
    assert message in exc.value.errors["price"]
    assert m["svc"].quotes.my_quotes(m["t"], m["pro"]) == []


def test_quote_rules(market):
    m = market
    request_id = post_request(m)
    with pytest.raises(NotFound):  # not their lead: wrong area
        quote(m, request_id, pro_key="far_pro")
    with pytest.raises(ValidationFailed) as exc:
        quote(m, request_id, valid_until=(TODAY - timedelta(days=1)).isoformat(), duration_hours=0)
    assert set(exc.value.errors) == {"valid_until", "duration_hours"}
    quote_id = quote(m, request_id)
    with pytest.raises(Conflict):
        quote(m, request_id, price="99")
    row = m["svc"].quotes.my_quotes(m["t"], m["pro"])[0]
    assert (row.id, row.price, row.status) == (quote_id, "$120.00", "sent")


# ---------------------------------------------------------------- accepting

def test_client_compares_and_accepts_one_quote(market):
    m = market
    request_id = post_request(m)
    q1, q2 = quote(m, request_id, price="120"), quote(m, request_id, pro_key="pro2", price="95.50")
    request, quotes = m["svc"].quotes.request_with_quotes(m["t"], m["client"], request_id)
    assert [q.id for q in quotes] == [q2, q1]  # cheapest first
    with pytest.raises(NotFound):  # someone else's request
        m["svc"].quotes.request_with_quotes(m["t"], m["other_client"], request_id)
    with pytest.raises(NotFound):
        m["svc"].quotes.accept_quote(m["t"], m["other_client"], q1)
    order_id = m["svc"].quotes.accept_quote(m["t"], m["client"], q2)
    _, quotes = m["svc"].quotes.request_with_quotes(m["t"], m["client"], request_id)
    assert {q.id: q.status for q in quotes} == {q1: "declined", q2: "accepted"}
    with pytest.raises(Conflict):
        m["svc"].quotes.accept_quote(m["t"], m["client"], q1)
    view = m["svc"].orders.get(m["t"], m["client"], order_id)
    assert (view.state, view.price, view.fee, view.payout) == ("accepted", "$95.50", "$9.55", "$85.95")
    assert [a.action for a in view.actions] == ["pay", "cancel"]


def test_withdrawn_quote_cannot_be_accepted(market):
    m = market
    request_id = post_request(m)
    q = quote(m, request_id)
    with pytest.raises(NotFound):
        m["svc"].quotes.withdraw_quote(m["t"], m["pro2"], q)
    m["svc"].quotes.withdraw_quote(m["t"], m["pro"], q)
    with pytest.raises(DomainError):
        m["svc"].quotes.withdraw_quote(m["t"], m["pro"], q)
    with pytest.raises(Conflict):
        m["svc"].quotes.accept_quote(m["t"], m["client"], q)
    assert order_count(m["svc"], m["t"]) == 0


# ---------------------------------------------------------------- the lifecycle

def test_full_lifecycle_with_payment_and_invoice(market):
    m = market
    svc, t = m["svc"], m["t"]
    order_id = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m)))
    with pytest.raises(PaymentDeclined, match="declined"):
        pay(svc, t, m["client"], order_id, card="4000000000000002")
    with pytest.raises(PaymentDeclined, match="insufficient"):
        pay(svc, t, m["client"], order_id, card="4000000000009995")
    assert svc.orders.get(t, m["client"], order_id).state == "accepted"  # a refused card changes nothing
    with pytest.raises(NotFound):
        svc.orders.start_checkout(t, m["pro"], order_id)
    with pytest.raises(DomainError, match="checkout page"):  # nobody marks an order paid without the provider
        svc.orders.apply(t, m["client"], order_id, "pay")
    pay(svc, t, m["client"], order_id)
    with pytest.raises(DomainError, match="can't deliver"):
        svc.orders.apply(t, m["pro"], order_id, "deliver")
    svc.orders.apply(t, m["pro"], order_id, "start")
    svc.orders.apply(t, m["pro"], order_id, "deliver")
    with pytest.raises(PermissionDenied):
        svc.orders.apply(t, m["pro"], order_id, "complete")
    view = svc.orders.apply(t, m["client"], order_id, "complete", note="Great job")
    assert view.state == "completed"
    assert [e.to_state for e in svc.orders.get(t, m["pro"], order_id).events] == [
        "accepted", "paid", "in_progress", "delivered", "completed"]
    with svc.db.tenant_session(t.id) as s:
        charge = s.exec(select(DemoCharge)).one()
    assert (charge.status, charge.captured_minor, charge.released_minor) == ("captured", 12000, 0)
    earnings = svc.payments.earnings(t, m["pro"])
    assert (earnings.available, earnings.held, earnings.paid_out) == ("$108.00", "$0.00", "$0.00")
    assert not earnings.payout_ready
    with pytest.raises(DomainError, match="payout account"):
        svc.payments.pay_out(t, m["pro"])
    assert svc.payments.payout_onboarding(t, m["pro"]) == ""  # the demo gateway needs no onboarding
    assert svc.payments.pay_out(t, m["pro"]) == 10800
    with svc.db.tenant_session(t.id) as s:
        assert s.exec(select(DemoCharge)).one().released_minor == 10800
    earnings = svc.payments.earnings(t, m["pro"])
    assert (earnings.available, earnings.paid_out) == ("$0.00", "$108.00")
    with pytest.raises(DomainError, match="nothing available"):
        svc.payments.pay_out(t, m["pro"])
    pdf, name = svc.orders.invoice(t, m["client"], order_id)
    assert pdf.startswith(b"%PDF") and name.endswith(".pdf")
    assert svc.orders.invoice(t, m["pro"], order_id)[0] == pdf
    for outsider in ("pro2", "other_client"):
        with pytest.raises(NotFound):
            svc.orders.invoice(t, m[outsider], order_id)
        with pytest.raises(NotFound):
            svc.orders.get(t, m[outsider], order_id)
        with pytest.raises(NotFound):
            svc.orders.apply(t, m[outsider], order_id, "dispute", note="not mine")


def test_cancelling_a_paid_order_refunds(market):
    m = market
    svc, t = m["svc"], m["t"]
    order_id = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m)))
    pay(svc, t, m["client"], order_id)
    svc.orders.apply(t, m["pro"], order_id, "cancel")
    with svc.db.tenant_session(t.id) as s:
        assert s.exec(select(DemoCharge)).one().status == "voided"
    assert svc.orders.get(t, m["client"], order_id).state == "cancelled"


def test_dispute_needs_a_note_and_the_admin_resolves(market):
    m = market
    svc, t = m["svc"], m["t"]
    admin = make_admin(svc, t)
    order_id = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m)))
    for action, who in (("pay", "client"), ("start", "pro"), ("deliver", "pro")):
        act(svc, t, m[who], order_id, action)
    with pytest.raises(ValidationFailed):
        svc.orders.apply(t, m["client"], order_id, "dispute")
    svc.orders.apply(t, m["client"], order_id, "dispute", note="The tap still drips")
    with pytest.raises(PermissionDenied):
        svc.orders.apply(t, m["client"], order_id, "resolve_refund", note="me")
    svc.orders.apply(t, admin, order_id, "resolve_refund", note="Refunded after photos")
    with svc.db.tenant_session(t.id) as s:
        charge = s.exec(select(DemoCharge)).one()
    assert charge.refunded_minor == 12000


def test_the_order_page_takes_its_timer_notes_and_refund_button_from_the_backend(market, monkeypatch):
    m = market
    svc, t = m["svc"], m["t"]
    admin = make_admin(svc, t)
    order_id = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m)))
    view = svc.orders.get(t, m["client"], order_id)
    assert (view.status_note, view.can_refund) == ("Payment is due within 48 hours, or the order expires.", False)
    assert view.active
    for action, who in (("pay", "client"), ("start", "pro")):
        act(svc, t, m[who], order_id, action)
    assert svc.orders.get(t, admin, order_id).can_refund  # money in escrow: the admin may refund part of it
    assert not svc.orders.get(t, m["client"], order_id).can_refund
    assert svc.orders.get(t, m["client"], order_id).status_note == ""
    svc.orders.apply(t, m["pro"], order_id, "deliver")
    assert svc.orders.get(t, m["client"], order_id).status_note == (
        "The client has 7 days to approve or open a dispute; then it completes automatically.")
    monkeypatch.setattr(process, "AUTO_COMPLETE_AFTER", timedelta(days=10))  # the text follows the timer
    assert "has 10 days to approve" in svc.orders.get(t, m["client"], order_id).status_note
    svc.orders.apply(t, m["client"], order_id, "complete")
    done = svc.orders.get(t, admin, order_id)
    assert (done.status_note, done.can_refund, done.active) == ("", False, False)


def test_the_demo_gateways_hosted_page_reads_the_card_form_in_the_backend(market):
    m = market
    svc, t = m["svc"], m["t"]
    order_id = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m)))
    session_id = svc.orders.start_checkout(t, m["client"], order_id).rsplit("/", 1)[-1]
    page = svc.payments.demo_checkout(session_id)
    assert (page.amount, page.description) == ("$120.00", REQUEST["title"])
    assert page.cancel_url.endswith(f"/orders/{order_id}?checkout=cancelled")
    card = {"card_number": GOOD_CARD, "cvc": "123"}
    for expiry in ("", "12", "12/", "ab/cd"):
        with pytest.raises(ValidationFailed) as refused:
            svc.payments.pay_demo_checkout(session_id, card | {"expiry": expiry})
        assert refused.value.errors == {"expiry": "Use MM/YY"}
    with pytest.raises(PaymentDeclined, match="expired"):
        svc.payments.pay_demo_checkout(session_id, card | {"expiry": "01/20"})
    url = svc.payments.pay_demo_checkout(session_id, card | {"expiry": f"12 / {(TODAY.year + 2) % 100:02d}"})
    assert url.endswith(f"/orders/{order_id}?checkout={session_id}")
    assert svc.orders.confirm_checkout(t, session_id, m["client"]) == order_id
    with pytest.raises(DomainError):
        svc.payments.demo_checkout(f"demo_cs_t{t.id}_nothing")


def test_direct_booking_respects_availability(market):
    m = market
    svc, t = m["svc"], m["t"]
    with pytest.raises(ValidationFailed):
        svc.orders.book(t, m["client"], m["pro"].id, {"hours": 0, "day": TODAY.isoformat()})
    svc.pros.update_own(t, m["pro"], {"headline": "Plumber", "city": "Austin", "hourly_rate": "80",
                                      "category_ids": [category_id(svc, t, "plumbing")],
                                      "availability": {"mon": ["09:00", "17:00"]},
                                      "blocked_dates": []})
    monday = TODAY + timedelta(days=(7 - TODAY.weekday()) % 7 or 7)
    with pytest.raises(ValidationFailed) as exc:
        svc.orders.book(t, m["client"], m["pro"].id, {"hours": 2, "day": (monday + timedelta(days=1)).isoformat()})
    assert "not available" in exc.value.errors["day"]
    order_id = svc.orders.book(t, m["client"], m["pro"].id, {"hours": 3, "day": monday.isoformat()})
    view = svc.orders.get(t, m["pro"], order_id)
    assert (view.state, view.price) == ("requested", "$240.00")
    with pytest.raises(PermissionDenied):
        svc.orders.book(t, m["pro2"], m["pro"].id, {"hours": 3, "day": monday.isoformat()})
    svc.orders.apply(t, m["pro"], order_id, "accept")
    assert svc.orders.get(t, m["client"], order_id).state == "accepted"


def test_timers_expire_unpaid_and_complete_delivered_orders(market):
    m = market
    svc, t = m["svc"], m["t"]
    unpaid = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m)))
    delivered = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m, title="Second job here")))
    for action, who in (("pay", "client"), ("start", "pro"), ("deliver", "pro")):
        act(svc, t, m[who], delivered, action)
    assert svc.orders.run_timers(t) == {"expire": 0, "auto_complete": 0}
    with svc.db.tenant_session(t.id) as s:
        for order in s.exec(select(Order)).all():
            order.state_changed_at -= timedelta(days=8)
    assert svc.orders.run_timers(t) == {"expire": 1, "auto_complete": 1}
    assert svc.orders.get(t, m["client"], unpaid).state == "expired"
    done = svc.orders.get(t, m["client"], delivered)
    assert done.state == "completed" and done.events[-1].who == "System" and done.has_invoice


def test_orders_are_invisible_across_tenants(market):
    m = market
    svc, t, acme = m["svc"], m["t"], m["acme"]
    order_id = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m)))
    acme_client = user(svc, acme, "client@example.com")  # same email, other marketplace
    with pytest.raises(NotFound):
        svc.orders.get(acme, acme_client, order_id)
    with pytest.raises(NotFound):
        svc.orders.get(t, acme_client, order_id)
    assert svc.orders.list_orders(acme, acme_client) == []


# ---------------------------------------------------------------- racing

def test_concurrent_accepts_yield_exactly_one_order(market):
    m = market
    svc, t = m["svc"], m["t"]
    request_id = post_request(m)
    quotes = [quote(m, request_id), quote(m, request_id, pro_key="pro2")]
    results, barrier = [], threading.Barrier(8)

    def click(quote_id):
        barrier.wait()
        try:
            results.append(("ok", svc.quotes.accept_quote(t, m["client"], quote_id)))
        except Conflict as exc:
            results.append(("conflict", exc.message))

    threads = [threading.Thread(target=click, args=(quotes[i % 2],)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(r[0] for r in results) == ["conflict"] * 7 + ["ok"]
    assert order_count(svc, t) == 1
    with svc.db.tenant_session(t.id) as s:
        assert len(s.exec(select(OrderEvent)).all()) == 1


def test_a_failing_rollup_refresh_does_not_fail_the_timers(market, monkeypatch, caplog):
    m = market
    svc = m["svc"]
    post_request(m)

    def broken(tenant_id):
        raise RuntimeError("rollups broke")

    monkeypatch.setattr(svc.analytics, "refresh", broken)
    totals = svc.run_timers()  # does not raise: the other timers' work is done and reported
    assert totals["analytics_days"] == 0 and "expire" in totals
    assert "could not be refreshed" in caplog.text


def test_periodic_work_covers_every_tenant_and_expires_requests(market):
    m = market
    svc, t = m["svc"], m["t"]
    request_id = post_request(m)
    quote(m, request_id)
    totals = svc.run_timers()
    assert totals.pop("analytics_days") >= 1  # today's posting was folded into the rollups
    assert totals == {"expire": 0, "auto_complete": 0, "requests_expired": 0,
                      "reviews_published": 0, "review_reminders": 0, "invoices_redone": 0,
                      "payouts_redone": 0, "webhooks_redone": 0, "deliveries_due": 0}
    with svc.db.tenant_session(t.id) as s:
        s.get(ServiceRequest, request_id).expires_at -= timedelta(days=31)
    assert svc.run_timers()["requests_expired"] == 1
    assert m["svc"].quotes.my_requests(t, m["client"])[0].status == "expired"
    assert [q.status for q in svc.quotes.my_quotes(t, m["pro"])] == ["declined"]
    assert svc.quotes.leads(t, m["pro2"]) == []
