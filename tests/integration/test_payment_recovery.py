"""Refunds whose provider answer was lost, and a cancel after everything was already refunded (SQLite and PostgreSQL).

1. A void or refund can reach the provider while its answer is lost (timeout): the transaction rolls back, so our
   books still say the money is held while the provider has given it back. Before the fix the order then went on
   (start, deliver, complete) on money that no longer existed, and "complete" failed at the provider for good.
   Now every step that gives money back is written down (table payment_step) before the provider is called, and a
   step left pending is finished, by replaying it with the same idempotency keys, before anything else happens to
   the order (or by the timer job).
2. An admin's partial refund of the whole amount leaves nothing in escrow; the page still offers "Cancel and refund
   in full", which used to be refused ("Refund between $0.01 and $0.00"). It now cancels and refunds nothing more.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlmodel import select

from backend.errors import DomainError
from backend.payments.models import PaymentStep, Payout
from backend.payments.ports import PaymentDeclined, PaymentUnavailable
from backend.payments.steps import STEP_RECORDED, STEP_WAITING
from tests.fakes.flaky_gateway import Flaky
from tests.integration.test_admin_cancel import PRICE, books, m, offered, paid_order_in  # noqa: F401 (fixture m)
from tests.integration.test_payment_flows import (  # noqa: F401 (fixtures)
    act, api_client, fakes, paid_order, pay_svc, paypal_market, provider_failing, stripe_market, stripe_posts,
)
from tests.integration.test_payment_flows import books as provider_books
from tests.integration.test_payment_flows import order as provider_order
from tests.integration.test_payment_flows import payment as provider_payment


@pytest.fixture
def flaky(m):
    gateways = m["svc"].payments.gateways
    wrapper = Flaky(gateways["demo"])
    gateways["demo"] = wrapper
    return wrapper


def steps(m, order_id: int) -> list[tuple[str, str, int | None, str]]:
    with m["svc"].db.tenant_session(m["t"].id) as s:
        return [(r.step, r.status, r.actor_id, r.actor_role) for r in s.exec(
            select(PaymentStep).where(PaymentStep.order_id == order_id).order_by(PaymentStep.id)).all()]


@contextmanager
def flaky_fails(flaky, mode: str, on: str | None = None):
    """The block's next provider call (of method `on`, if given) fails as `mode` says (see Flaky), and the block
    must raise PaymentUnavailable; yields pytest's ExceptionInfo."""
    flaky.arm(mode, on=on)
    with pytest.raises(PaymentUnavailable) as raised:
        yield raised


def admin_refund_in_doubt(m, flaky, state: str) -> int:
    """An order in `state` whose admin refund of 30 reached the provider, but whose answer was lost (captured
    first: a partial refund needs it)."""
    order_id = paid_order_in(m, state)
    with flaky_fails(flaky, "after", on="refund"):
        m["svc"].orders.refund(m["t"], m["admin"], order_id, "30", "One tap out of two")
    return order_id


def test_a_cancel_whose_void_answer_was_lost_is_finished_before_the_work_can_start(m, flaky):
    """The property test's example: pay, the pro cancels (the void reaches the provider, the answer is lost),
    then start, deliver, complete. Before the fix the order went on to `delivered` and `complete` failed for good
    ("This payment cannot be captured"): the professional had worked for money that no longer existed."""
    svc, t, pro, client = m["svc"], m["t"], m["pro"], m["client"]
    order_id = paid_order_in(m, "paid")
    with flaky_fails(flaky, "after") as lost:
        svc.orders.apply(t, pro, order_id, "cancel")
    assert lost.value.message == STEP_RECORDED  # the pro is told it will be completed, not "try again"
    b = books(m, order_id)
    assert (b["order"].state, b["payment"].status, b["kinds"]) == ("paid", "authorized", ["hold"])
    assert b["charge"].status == "voided"  # the provider did void the hold
    assert steps(m, order_id) == [("cancel", "pending", pro.id, "professional")]

    with pytest.raises(DomainError) as refused:  # the cancel is finished first; there is nothing to start
        svc.orders.apply(t, pro, order_id, "start")
    assert refused.value.message == "You can't start an order that is cancelled."
    b = books(m, order_id)
    assert b["problems"] == []
    assert (b["order"].state, b["payment"].status, b["payment"].refunded_minor) == ("cancelled", "voided", PRICE)
    assert (b["kinds"], b["escrow"], b["refunded"], b["payable"]) == (["hold", "refund"], 0, PRICE, 0)
    assert (b["last_event"].action, b["last_event"].actor_id, b["last_event"].actor_role) == (
        "cancel", pro.id, "professional")  # booked as what the pro asked for
    assert steps(m, order_id) == [("cancel", "done", pro.id, "professional")]
    key = f"t{t.id}-o{order_id}-cancel"
    assert [c[:2] for c in flaky.calls] == [("refund", key), ("refund", key)]  # replayed with the same key
    for who, action in ((pro, "deliver"), (client, "complete")):
        with pytest.raises(DomainError):
            svc.orders.apply(t, who, order_id, action)
    assert offered(m, "client", order_id) == [] and offered(m, "admin", order_id) == []


@pytest.mark.parametrize("failure", ["before", "after"])
@pytest.mark.parametrize("state, who, cancel, then_who, then", [
    ("paid", "client", "cancel", "pro", "start"),
    ("in_progress", "pro", "cancel", "client", "dispute"),
    ("delivered", "admin", "cancel", "client", "complete"),
])
def test_a_refund_in_doubt_is_finished_before_the_next_step_whatever_it_is(m, flaky, failure, state, who, cancel,
                                                                           then_who, then):
    """Whether the provider acted or not, the cancel the person asked for is recorded and finished: its void is
    replayed with the same key (the provider answers what it did, or does it now) and the books follow."""
    svc, t = m["svc"], m["t"]
    order_id = paid_order_in(m, state)
    with flaky_fails(flaky, failure):
        svc.orders.apply(t, m[who], order_id, cancel, note="Cannot go on")
    assert books(m, order_id)["order"].state == state
    assert books(m, order_id)["charge"].status == ("held" if failure == "before" else "voided")

    with pytest.raises(DomainError):
        svc.orders.apply(t, m[then_who], order_id, then, note="It leaks")
    b = books(m, order_id)
    assert b["problems"] == [] and b["order"].state == "cancelled"
    assert (b["charge"].status, b["payment"].status, b["escrow"], b["refunded"]) == ("voided", "voided", 0, PRICE)
    assert b["kinds"] == ["hold", "refund"]
    assert (b["last_event"].actor_id, b["last_event"].note) == (m[who].id, "Cannot go on")


def test_the_same_cancel_asked_again_goes_ahead_once(m, flaky):
    """The client's cancel was lost; the admin's cancel is the same step (same key): it simply goes through."""
    svc, t, admin = m["svc"], m["t"], m["admin"]
    order_id = paid_order_in(m, "paid")
    with flaky_fails(flaky, "after"):
        svc.orders.apply(t, m["client"], order_id, "cancel")
    svc.orders.apply(t, admin, order_id, "cancel", note="Client asked by phone")
    b = books(m, order_id)
    assert (b["order"].state, b["kinds"], b["escrow"], b["refunded"]) == ("cancelled", ["hold", "refund"], 0, PRICE)
    assert (b["last_event"].actor_id, b["last_event"].note) == (admin.id, "Client asked by phone")
    assert steps(m, order_id) == [("cancel", "done", admin.id, "admin")]


def test_while_the_provider_stays_silent_nothing_happens_and_the_timer_job_finishes_the_step(m, flaky):
    svc, t, pro = m["svc"], m["t"], m["pro"]
    order_id = paid_order_in(m, "paid")
    with flaky_fails(flaky, "after"):
        svc.orders.apply(t, pro, order_id, "cancel")
    with flaky_fails(flaky, "before") as waiting:  # still down when the pro tries to start
        svc.orders.apply(t, pro, order_id, "start")
    assert waiting.value.message == STEP_WAITING
    with flaky_fails(flaky, "before"):  # the admin's partial refund waits too
        svc.orders.refund(t, m["admin"], order_id, "10", "Goodwill")
    assert books(m, order_id)["order"].state == "paid" and steps(m, order_id)[0][1] == "pending"

    assert svc.orders.run_timers(t) == {"expire": 0, "auto_complete": 0}  # the provider answers again
    b = books(m, order_id)
    assert (b["problems"], b["order"].state, b["kinds"], b["escrow"]) == ([], "cancelled", ["hold", "refund"], 0)
    assert steps(m, order_id) == [("cancel", "done", pro.id, "professional")]
    assert svc.payments.steps.orders_in_doubt(t.id) == []


def test_a_process_that_died_after_the_provider_voided_leaves_a_step_the_timer_job_finishes(m):
    """No exception at all: the worker was killed between the provider's void and the commit. The step was written
    down before the call, so it is in doubt, and the timer job finishes it."""
    svc, t, client = m["svc"], m["t"], m["client"]
    order_id = paid_order_in(m, "paid")
    payment = books(m, order_id)["payment"]
    svc.payments.steps.begin(t.id, order_id, step="cancel", action="cancel", actor=client, note="",
                             amount_minor=None)  # what apply() commits before it calls the provider
    svc.payments.gateways["demo"].refund(reference=payment.reference, amount_minor=PRICE, captured=False,
                                         idempotency_key=f"t{t.id}-o{order_id}-cancel")  # then the process died
    assert svc.payments.steps.orders_in_doubt(t.id) == [order_id]
    svc.orders.run_timers(t)
    b = books(m, order_id)
    assert (b["problems"], b["order"].state, b["kinds"], b["refunded"]) == ([], "cancelled", ["hold", "refund"], PRICE)
    assert (b["last_event"].actor_id, b["charge"].status) == (client.id, "voided")


def test_a_step_the_provider_refuses_on_replay_never_happened_and_the_order_goes_on(m, flaky):
    svc, t, pro = m["svc"], m["t"], m["pro"]
    order_id = paid_order_in(m, "paid")
    with flaky_fails(flaky, "before"):
        svc.orders.apply(t, pro, order_id, "cancel")
    flaky.arm("decline", times=2)  # the replay is refused (the void, then the capture it falls back to)
    assert svc.orders.apply(t, pro, order_id, "start").state == "in_progress"
    assert steps(m, order_id) == [("cancel", "failed", pro.id, "professional")]
    b = books(m, order_id)
    assert (b["problems"], b["charge"].status, b["payment"].status, b["escrow"]) == ([], "held", "authorized", PRICE)


def test_a_declined_refund_is_over_at_once(m, flaky):
    svc, t, pro = m["svc"], m["t"], m["pro"]
    order_id = paid_order_in(m, "paid")
    flaky.arm("decline", times=2)  # the void, then the capture it falls back to
    with pytest.raises(PaymentDeclined):
        svc.orders.apply(t, pro, order_id, "cancel")
    assert steps(m, order_id) == [("cancel", "failed", pro.id, "professional")]
    assert svc.orders.apply(t, pro, order_id, "start").state == "in_progress"
    assert [c[0] for c in flaky.calls] == ["refund", "capture"]  # nothing replayed: a refusal is a certain answer


def test_a_partial_refund_in_doubt_is_booked_before_completion_so_the_payout_matches_the_provider(m, flaky):
    """Before the fix the lost refund was never booked: completion released the full escrow to the professional,
    more than the provider still had, and the payout was refused for good."""
    svc, t, client, pro = m["svc"], m["t"], m["client"], m["pro"]
    order_id = admin_refund_in_doubt(m, flaky, "delivered")
    assert books(m, order_id)["charge"].refunded_minor == 3_000 and books(m, order_id)["escrow"] == PRICE

    svc.orders.apply(t, client, order_id, "complete")  # the refund is booked first, then 90 are released
    b = books(m, order_id)
    assert b["problems"] == [] and b["kinds"] == ["hold", "refund", "release"]
    assert (b["escrow"], b["refunded"], b["payment"].refunded_minor) == (0, 3_000, 3_000)
    assert b["payable"] + b["fees"] == 9_000
    svc.payments.payout_onboarding(t, pro)
    assert svc.payments.pay_out(t, pro) == b["payable"]  # the provider still holds enough for the share
    charge = books(m, order_id)["charge"]
    assert charge.released_minor == b["payable"] <= charge.captured_minor - charge.refunded_minor
    with svc.db.tenant_session(t.id) as s:
        assert s.exec(select(Payout).where(Payout.order_id == order_id)).one().amount_minor == b["payable"]


def test_an_admin_refund_in_doubt_is_finished_before_another_amount_is_refunded(m, flaky):
    """The admin asks again with another amount: the first refund (30) is finished as it was asked, then the new one
    (20) is a refund of its own. Before the fix the second reused the first one's key: the provider answered with
    the first refund (30) while our books recorded 20."""
    svc, t, admin = m["svc"], m["t"], m["admin"]
    order_id = admin_refund_in_doubt(m, flaky, "in_progress")
    assert svc.orders.refund(t, admin, order_id, "20", "And a late arrival") == 2_000
    b = books(m, order_id)
    assert b["problems"] == [] and b["kinds"] == ["hold", "refund", "refund"]
    assert (b["refunded"], b["payment"].refunded_minor, b["charge"].refunded_minor) == (5_000, 5_000, 5_000)
    assert [s[:2] for s in steps(m, order_id)] == [("refund-1", "done"), ("refund-2", "done")]


def test_the_same_admin_refund_asked_again_refunds_once(m, flaky):
    svc, t, admin = m["svc"], m["t"], m["admin"]
    order_id = admin_refund_in_doubt(m, flaky, "in_progress")
    assert svc.orders.refund(t, admin, order_id, "30.00", "One tap out of two") == 3_000
    b = books(m, order_id)
    assert (b["kinds"], b["refunded"], b["charge"].refunded_minor) == (["hold", "refund"], 3_000, 3_000)


# ------------------------------------------------------------------ 2. cancel after everything was refunded

@pytest.mark.parametrize("state, who", [("paid", "admin"), ("paid", "client"), ("paid", "pro"),
                                        ("in_progress", "admin"), ("delivered", "admin")])
def test_cancel_after_the_whole_amount_was_refunded_cancels_and_refunds_nothing_more(m, state, who):
    svc, t, admin = m["svc"], m["t"], m["admin"]
    order_id = paid_order_in(m, state)
    assert svc.orders.refund(t, admin, order_id, "120", "Everything back") == PRICE
    b = books(m, order_id)
    assert (b["escrow"], b["order"].state, b["charge"].status) == (0, state, "voided")  # the hold was voided
    assert "cancel" in offered(m, who, order_id)  # the page still offers the cancel

    view = svc.orders.apply(t, m[who], order_id, "cancel", note="Nothing left to do")
    assert view.state == "cancelled"
    b = books(m, order_id)
    assert b["problems"] == []
    assert (b["kinds"], b["escrow"], b["refunded"], b["payable"], b["fees"]) == (["hold", "refund"], 0, PRICE, 0, 0)
    assert (b["charge"].status, b["charge"].refunded_minor, b["payment"].refunded_minor) == ("voided", PRICE, PRICE)


def test_a_split_with_nothing_left_in_escrow_says_so(m):
    svc, t, admin = m["svc"], m["t"], m["admin"]
    order_id = paid_order_in(m, "delivered")
    svc.orders.refund(t, admin, order_id, "120", "Everything back")
    svc.orders.apply(t, m["client"], order_id, "dispute", note="Never finished")
    with pytest.raises(DomainError) as refused:
        svc.orders.apply(t, admin, order_id, "resolve_split", note="Half", refund="10")
    assert refused.value.errors == {"amount": "Nothing is left in escrow to refund."}
    assert svc.orders.apply(t, admin, order_id, "resolve_refund", note="Nothing left").state == "resolved"
    b = books(m, order_id)
    assert (b["problems"], b["kinds"], b["escrow"], b["refunded"]) == ([], ["hold", "refund"], 0, PRICE)


# ------------------------------------------------------------------ the real adapters, against the fakes

def test_stripe_a_cancel_whose_void_timed_out_is_finished_before_the_work_starts(stripe_market, api_client):
    m = stripe_market
    order_id = paid_order(m, api_client)
    with provider_failing(m, "/cancel"):
        m.svc.orders.apply(m.t, m.pro, order_id, "cancel")
    assert provider_order(m, order_id).state == "paid"  # Stripe cancelled the intent; our answer was lost
    with pytest.raises(DomainError):
        m.svc.orders.apply(m.t, m.pro, order_id, "start")
    assert provider_order(m, order_id).state == "cancelled"
    assert provider_payment(m, order_id).status == "voided"
    key = f"t{m.t.id}-o{order_id}-cancel"
    assert [r.idempotency_key for r in stripe_posts(m.stripe, "/cancel")] == [key, key]
    assert stripe_posts(m.stripe, "/capture") == []
    b = provider_books(m, order_id)
    assert (b.problems, b.kinds, b.escrow, b.refunded) == ([], ["hold", "refund"], 0, 12_000)


def test_paypal_a_refund_that_timed_out_is_booked_before_completion(paypal_market):
    m = paypal_market
    order_id = paid_order(m)
    act(m, order_id, "start", "deliver")
    with provider_failing(m, "/refund"):
        m.svc.orders.refund(m.t, m.admin, order_id, "30", "One tap out of two")
    m.svc.orders.apply(m.t, m.client, order_id, "complete")
    assert provider_order(m, order_id).state == "completed"
    key = f"t{m.t.id}-o{order_id}-refund-1"
    assert [r.request_id for r in m.paypal.requests_to("/refund")] == [key, key]
    assert m.paypal.refunds_created == 1 and m.paypal.captures_created == 1
    b = provider_books(m, order_id)
    assert (b.problems, b.kinds, b.escrow, b.refunded) == ([], ["hold", "refund", "release"], 0, 3_000)
    assert b.payable + b.fees == 9_000  # the professional's share is taken from what PayPal still holds
