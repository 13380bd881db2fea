"""What the order pages show: an order as one viewer sees it (its buttons, its timeline, the notes the UI prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from backend.identity import Caller, Role
from backend.money import format_money
from backend.orders import process
from backend.orders.models import Order, OrderEvent
from backend.orders.process import ESCROW_STATES, Party
from backend.profiles.models import Profile


@dataclass(frozen=True)
class ActionView:
    action: str
    label: str
    tone: str
    confirm: str
    needs_note: bool


@dataclass(frozen=True)
class EventView:
    action: str
    from_state: str
    to_state: str
    who: str
    note: str
    at: str


@dataclass(frozen=True)
class OrderView:
    id: int
    title: str
    state: str
    price: str
    price_minor: int
    fee: str
    payout: str
    currency: str
    client_id: int
    client_name: str
    pro_id: int
    pro_name: str
    scheduled_for: str
    created_at: str
    request_id: int | None
    has_invoice: bool
    viewer_role: str
    status_note: str  # what the waiting state's timer means ("Payment is due within 48 hours, ..."), or ""
    can_refund: bool  # the admin may refund part of the escrow now
    active: bool  # still going: not completed, cancelled, expired or resolved
    actions: list[ActionView] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)


@dataclass(frozen=True)
class DisputeWaiting:
    """An order in dispute, as the admin's operations queue lists it (OrderService.disputes_waiting)."""

    order_id: int
    title: str
    client_name: str
    pro_name: str
    amount: str  # the order's price, formatted
    amount_minor: int
    currency: str
    disputed_at: datetime  # when it entered `disputed` (its state_changed_at), UTC

def viewer_of(caller: Caller, order: Order) -> Party | None:
    """The caller as a party to this order (the tenant's admin sees every order), or None: not theirs."""
    if caller.role == Role.ADMIN:
        return Party.ADMIN
    if caller.id == order.client_id and caller.role == Role.CLIENT:
        return Party.CLIENT
    if caller.id == order.pro_id and caller.role == Role.PROFESSIONAL:
        return Party.PROFESSIONAL
    return None


def person_name(session: Session, user_id: int | None) -> str:
    if user_id is None:
        return "System"
    profile = session.get(Profile, user_id)
    return profile.full_name if profile else f"User {user_id}"


def order_view(session: Session, order: Order, viewer: Party, *, detail: bool = False) -> OrderView:
    """detail: with the timeline and the viewer's buttons (the order page; lists leave them out)."""
    events, actions = [], []
    if detail:
        rows = session.exec(select(OrderEvent).where(OrderEvent.order_id == order.id)
                            .order_by(OrderEvent.at, OrderEvent.id)).all()
        events = [EventView(action=e.action, from_state=e.from_state, to_state=e.to_state,
                            who=person_name(session, e.actor_id), note=e.note,
                            at=e.at.strftime("%b %d, %Y %H:%M")) for e in rows]
        actions = [ActionView(action=t.action, label=t.label, tone=t.tone, confirm=t.confirm,
                              needs_note=t.needs_note) for t in process.available(order.state, viewer)]
    return OrderView(
        id=order.id, title=order.title, state=order.state, price=format_money(order.price_minor, order.currency),
        price_minor=order.price_minor, fee=format_money(order.platform_fee_minor, order.currency),
        payout=format_money(order.price_minor - order.platform_fee_minor, order.currency),
        currency=order.currency, client_id=order.client_id, client_name=person_name(session, order.client_id),
        pro_id=order.pro_id, pro_name=person_name(session, order.pro_id),
        scheduled_for=order.scheduled_for.strftime("%b %d, %Y") if order.scheduled_for else "To be agreed",
        created_at=order.created_at.strftime("%b %d, %Y"), request_id=order.request_id,
        has_invoice=bool(order.invoice_key), viewer_role=viewer.value, status_note=process.status_note(order.state),
        can_refund=viewer == Party.ADMIN and order.state in ESCROW_STATES, active=order.state not in process.TERMINAL,
        actions=actions, events=events,
    )
