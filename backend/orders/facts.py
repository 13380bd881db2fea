"""What other services may read about orders and service requests, without their tables (backend.orders.models is
orders' own: see the one-writer contract in .importlinter).

- payments reads orders through its PayableOrders port (backend/payments/ports.py): `OrderFacts`, passed in by
  bootstrap, and `payable(order)` for an order the order service passes in itself;
- chat reads who takes part in an order or a request, and request titles, with the functions below;
- reviews read how an order ended (`order_outcome`, `ended_order_ids`): whether it may be reviewed, and since when.
Every read runs in the caller's (tenant-bound) session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from backend.orders.models import Order, OrderEvent, OrderState, ServiceRequest
from backend.orders.process import TERMINAL
from backend.payments.ledger import Ledger
from backend.payments.payouts import released_share
from backend.payments.ports import PayableOrder

SETTLED = (OrderState.COMPLETED, OrderState.RESOLVED)  # ended; what was released to the professional is theirs


def payable(order: Order) -> PayableOrder:
    return PayableOrder(id=order.id, tenant_id=order.tenant_id, client_id=order.client_id, pro_id=order.pro_id,
                        title=order.title, price_minor=order.price_minor, currency=order.currency, state=order.state,
                        state_changed_at=order.state_changed_at, settled=order.state in SETTLED,
                        has_invoice=bool(order.invoice_key))


class OrderFacts:
    """Payments' PayableOrders port, read from the order table."""

    def find(self, session: Session, order_id: int, *, lock: bool = False) -> PayableOrder | None:
        query = select(Order).where(Order.id == order_id)
        order = session.exec(query.with_for_update() if lock else query).first()
        return payable(order) if order is not None else None

    def of_pro(self, session: Session, pro_id: int) -> list[PayableOrder]:
        return [payable(o) for o in session.exec(select(Order).where(Order.pro_id == pro_id)
                                                 .order_by(Order.state_changed_at.desc())).all()]

    def of_client(self, session: Session, client_id: int) -> list[PayableOrder]:
        return [payable(o) for o in session.exec(select(Order).where(Order.client_id == client_id)).all()]

    def by_ids(self, session: Session, order_ids: list[int]) -> dict[int, PayableOrder]:
        if not order_ids:
            return {}
        return {o.id: payable(o) for o in session.exec(select(Order).where(Order.id.in_(set(order_ids)))).all()}


# ---------------------------------------------------------------------------------------------------- for chat


@dataclass(frozen=True)
class OrderParties:
    order_id: int
    request_id: int | None
    client_id: int
    pro_id: int


def order_parties(session: Session, order_id: int) -> OrderParties | None:
    order = session.get(Order, order_id)
    if order is None:
        return None
    return OrderParties(order_id=order.id, request_id=order.request_id, client_id=order.client_id,
                        pro_id=order.pro_id)


def request_client_id(session: Session, request_id: int) -> int | None:
    """The client who posted the request (None: no such request in this tenant)."""
    request = session.get(ServiceRequest, request_id)
    return request.client_id if request is not None else None


def request_titles(session: Session, request_ids: set[int]) -> dict[int, str]:
    if not request_ids:
        return {}
    return dict(session.exec(select(ServiceRequest.id, ServiceRequest.title)
                             .where(ServiceRequest.id.in_(request_ids))).all())


# ---------------------------------------------------------------------------------------------------- for reviews

# The endings after which the parties may review each other: the work was done and paid for (in full, or in part
# when a dispute was split). Cancelled, expired and refunded-in-full orders end otherwise.
REVIEWABLE_ENDINGS = frozenset({"complete", "auto_complete", "resolve_release", "resolve_split"})


@dataclass(frozen=True)
class OrderOutcome:
    """How an order ended, as reviews judge it."""

    order_id: int
    client_id: int
    pro_id: int
    title: str
    state: str
    ended_by: str  # the action that ended it ("complete", "resolve_split", "cancel", ...); "" while it runs
    ended_at: datetime | None  # when (None while it runs)
    released: bool  # the professional was paid something for it (False: nothing, e.g. refunded in full)

    @property
    def reviewable(self) -> bool:
        return self.ended_by in REVIEWABLE_ENDINGS and self.released


def order_outcome(session: Session, order_id: int) -> OrderOutcome | None:
    """None: no such order in this tenant."""
    row = session.get(Order, order_id)
    if row is None:
        return None
    ended_by, ended_at, released = "", None, False
    if row.state in TERMINAL:
        last = session.exec(select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.to_state == row.state)
                            .order_by(OrderEvent.at.desc(), OrderEvent.id.desc())).first()
        ended_by, ended_at = (last.action, last.at) if last else ("", row.state_changed_at)
        # A release with nothing left in escrow (the admin had refunded it all) pays the professional nothing.
        released = row.state in SETTLED and released_share(Ledger(), session, row.id, row.pro_id) > 0
    return OrderOutcome(order_id=row.id, client_id=row.client_id, pro_id=row.pro_id, title=row.title,
                        state=row.state, ended_by=ended_by, ended_at=ended_at, released=released)


def ended_order_ids(session: Session, *, since: datetime, party_id: int | None = None) -> list[int]:
    """Orders completed or resolved since then (the ones that may be reviewable), oldest first; only those of one
    client or professional when party_id is given."""
    query = select(Order.id).where(Order.state.in_(SETTLED), Order.state_changed_at >= since)
    if party_id is not None:
        query = query.where((Order.client_id == party_id) | (Order.pro_id == party_id))
    return list(session.exec(query.order_by(Order.state_changed_at, Order.id)).all())
