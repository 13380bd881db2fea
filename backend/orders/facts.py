"""What other services may read about orders and service requests, without their tables (backend.orders.models is
orders' own: see the one-writer contract in .importlinter).

- payments reads orders through its PayableOrders port (backend/payments/ports.py): `OrderFacts`, passed in by
  bootstrap, and `payable(order)` for an order the order service passes in itself;
- chat reads who takes part in an order or a request, and request titles, with the functions below.
Every read runs in the caller's (tenant-bound) session.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from backend.orders.models import Order, OrderState, ServiceRequest
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
