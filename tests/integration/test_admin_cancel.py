"""The marketplace admin cancels an order that holds money (issue 8, item 9), on SQLite and PostgreSQL.

The order page offers the admin "Cancel and refund in full" on paid, in-progress and delivered orders. Before the
fix the service picked the first "cancel" row for the state whatever the actor: on a paid or in-progress order
that is the client's / professional's row, so the admin's click was refused although the button was shown.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from backend.errors import PermissionDenied, ValidationFailed
from backend.orders.models import Order, OrderEvent
from backend.payments import ledger as L
from backend.payments.models import DemoCharge, LedgerAccount, LedgerEntry, LedgerTransaction, Payment
from tests.integration.test_orders import make_admin, make_pro, pay, post_request, quote, user

PRICE = 12_000  # the quote below: $120.00
STEPS_TO = {"paid": (), "in_progress": ("start",), "delivered": ("start", "deliver")}


@pytest.fixture
def m(svc, tenants):
    demo, _ = tenants
    svc.catalog.seed_defaults(demo.id)
    client = user(svc, demo, "client@example.com")
    pro = make_pro(svc, demo, "pro@example.com")
    admin = make_admin(svc, demo)
    return dict(svc=svc, t=demo, client=client, pro=pro, admin=admin)


def paid_order_in(m, state: str) -> int:
    svc, t = m["svc"], m["t"]
    order_id = svc.quotes.accept_quote(t, m["client"], quote(m, post_request(m), price="120"))
    pay(svc, t, m["client"], order_id)
    for step in STEPS_TO[state]:
        svc.orders.apply(t, m["pro"], order_id, step)
    assert svc.orders.get(t, m["admin"], order_id).state == state
    return order_id


def offered(m, who: str, order_id: int) -> list[str]:
    """The actions the order page shows this person (OrderView.actions, rendered as buttons)."""
    return [a.action for a in m["svc"].orders.get(m["t"], m[who], order_id).actions]


def books(m, order_id: int) -> dict:
    svc, t = m["svc"], m["t"]
    ledger, c = svc.payments.ledger, t.currency
    with svc.db.tenant_session(t.id) as s:
        txs = s.exec(select(LedgerTransaction).where(LedgerTransaction.order_id == order_id)
                     .order_by(LedgerTransaction.id)).all()
        entries = {tx.id: sorted((a.code, e.amount_minor) for e, a in s.exec(
            select(LedgerEntry, LedgerAccount).join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.transaction_id == tx.id)).all()) for tx in txs}
        return dict(problems=ledger.check_invariants(s), kinds=[tx.kind for tx in txs],
                    keys=[tx.idempotency_key for tx in txs], actors=[tx.actor_id for tx in txs],
                    entries=[entries[tx.id] for tx in txs],
                    escrow=ledger.balance(s, L.escrow(order_id), c),
                    refunded=ledger.balance(s, L.refunds(m["client"].id), c),
                    payable=ledger.balance(s, L.pro_payable(m["pro"].id), c),
                    fees=ledger.balance(s, L.platform_fees(), c),
                    charge=s.exec(select(DemoCharge).where(DemoCharge.order_id == order_id)).one(),
                    payment=s.exec(select(Payment).where(Payment.order_id == order_id)).one(),
                    order=s.get(Order, order_id),
                    last_event=s.exec(select(OrderEvent).where(OrderEvent.order_id == order_id)
                                      .order_by(OrderEvent.id.desc())).first())


@pytest.mark.parametrize("state", ["paid", "in_progress", "delivered"])
def test_the_admin_cancels_an_order_holding_money_and_the_client_gets_everything_back(m, state):
    svc, t, admin = m["svc"], m["t"], m["admin"]
    order_id = paid_order_in(m, state)
    assert "cancel" in offered(m, "admin", order_id)  # the button is on the admin's order page
    [button] = [a for a in svc.orders.get(t, admin, order_id).actions if a.action == "cancel"]
    assert (button.label, button.needs_note) == ("Cancel and refund in full", True)
    with pytest.raises(ValidationFailed):  # the admin's row asks for a reason
        svc.orders.apply(t, admin, order_id, "cancel")

    view = svc.orders.apply(t, admin, order_id, "cancel", note="Professional unreachable, client refunded")

    assert view.state == "cancelled" and view.actions == []
    b = books(m, order_id)
    assert b["problems"] == []
    assert b["kinds"] == ["hold", "refund"]
    cancel_key = f"o{order_id}-cancel"
    assert b["keys"][1] == cancel_key and b["actors"][1] == admin.id
    client_id = m["client"].id
    assert b["entries"][1] == sorted([(f"escrow:order:{order_id}", -PRICE), (f"client:{client_id}:refunds", PRICE)])
    assert (b["escrow"], b["refunded"], b["payable"], b["fees"]) == (0, PRICE, 0, 0)
    # the untouched hold is voided at the provider: nothing was captured, nothing reached the professional
    assert (b["charge"].status, b["charge"].captured_minor, b["charge"].released_minor) == ("voided", 0, 0)
    assert (b["payment"].status, b["payment"].refunded_minor) == ("voided", PRICE)
    assert (b["last_event"].action, b["last_event"].from_state, b["last_event"].to_state) == (
        "cancel", state, "cancelled")
    assert (b["last_event"].actor_id, b["last_event"].actor_role) == (admin.id, "admin")
    assert b["last_event"].note == "Professional unreachable, client refunded"


def test_after_a_partial_refund_the_admin_cancel_refunds_the_rest(m):
    """A partial refund captured the payment: the cancel then refunds what is left, and the client has it all."""
    svc, t, admin = m["svc"], m["t"], m["admin"]
    order_id = paid_order_in(m, "in_progress")
    assert svc.orders.refund(t, admin, order_id, "30", "One tap fixed out of two") == 3_000
    svc.orders.apply(t, admin, order_id, "cancel", note="Work abandoned")
    b = books(m, order_id)
    assert b["problems"] == [] and b["kinds"] == ["hold", "refund", "refund"]
    client_id = m["client"].id
    assert b["entries"][2] == sorted([(f"escrow:order:{order_id}", -9_000), (f"client:{client_id}:refunds", 9_000)])
    assert (b["escrow"], b["refunded"], b["payable"], b["fees"]) == (0, PRICE, 0, 0)
    charge = b["charge"]
    assert (charge.status, charge.captured_minor, charge.refunded_minor, charge.released_minor) == (
        "refunded", PRICE, PRICE, 0)
    assert b["order"].state == "cancelled"


def test_who_may_cancel_follows_the_page(m):
    """Client and professional see (and may use) their own cancel rows only; the refusal names who can."""
    svc, t = m["svc"], m["t"]
    order_id = paid_order_in(m, "in_progress")
    assert "cancel" not in offered(m, "client", order_id)
    assert "cancel" in offered(m, "pro", order_id)
    with pytest.raises(PermissionDenied, match="Only the admin or professional can do that"):
        svc.orders.apply(t, m["client"], order_id, "cancel")
    svc.orders.apply(t, m["pro"], order_id, "deliver")
    assert "cancel" not in offered(m, "pro", order_id) and "cancel" not in offered(m, "client", order_id)
    with pytest.raises(PermissionDenied, match="Only the admin can do that"):
        svc.orders.apply(t, m["pro"], order_id, "cancel")
    assert books(m, order_id)["order"].state == "delivered"
