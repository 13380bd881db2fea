"""What the order lifecycle tells the people concerned: for each step, the catalogue's event, its recipients and the
context its templates read.

OrderService calls these inside the transaction of the step, so the delivery rows commit or roll back with it, and
hands the returned ids (email and SMS rows) to `jobs.deliver_notification` after commit. Every key names the
occurrence, "order:<id>:<action>": the lifecycle has no loops, so an action happens at most once to an order, and a
step replayed (a checkout confirmed by the return page and the webhook, a refund settled after a lost answer)
notifies nobody twice. Reads only: OrderService stays the one writer of orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session

from backend.identity import TenantPublic
from backend.money import format_money
from backend.notifications.catalogue import Event
from backend.notifications.service import NotificationService
from backend.orders.models import Order
from backend.orders.process import AUTO_COMPLETE_AFTER, spoken
from backend.orders.views import person_name

FIND_A_PRO_PATH = "/pros"  # a declined booking: the client looks for someone else
RESOLVE_ACTIONS = frozenset({"resolve_refund", "resolve_release", "resolve_split"})
# Steps whose messages say how much money is in escrow (the admin's dispute alert, the resolution's outcome):
# the service reads the escrow balance before their payment effect runs.
NEEDS_ESCROW = RESOLVE_ACTIONS | {"dispute"}


def order_path(order_id: int) -> str:
    return f"/orders/{order_id}"


def _day(day: date | None) -> str:
    return day.strftime("%a, %b %d") if day else "To be agreed"


@dataclass(frozen=True)
class EscrowMove:
    """What a step did with the escrowed money, for the messages that say it."""

    held_minor: int = 0  # in escrow before the step
    refunded_minor: int = 0  # given back to the client by the step
    released_minor: int = 0  # released to the professional by the step (before the platform fee)

    @classmethod
    def of(cls, action: str, held_minor: int, refund_minor: int | None) -> EscrowMove:
        """The money a dispute's resolution moves: all of it back, all of it to the professional, or split."""
        if action == "resolve_refund":
            return cls(held_minor, refunded_minor=held_minor)
        if action == "resolve_release":
            return cls(held_minor, released_minor=held_minor)
        if action == "resolve_split":
            refunded = min(refund_minor or 0, held_minor)
            return cls(held_minor, refunded_minor=refunded, released_minor=held_minor - refunded)
        return cls(held_minor)


class OrderNotices:
    def __init__(self, notifications: NotificationService):
        self.notifications = notifications

    def booking_requested(self, session: Session, tenant: TenantPublic, order: Order) -> list[int]:
        """A client booked the professional directly: they accept or decline it."""
        return self._send(session, tenant, order, Event.BOOKING_REQUESTED, [order.pro_id], key="booked",
                          client_name=person_name(session, order.client_id), service_title=order.title,
                          when=_day(order.scheduled_for), amount=format_money(order.price_minor, order.currency))

    def after(self, session: Session, tenant: TenantPublic, order: Order, action: str, *, note: str = "",
              move: EscrowMove | None = None) -> list[int]:
        """The messages of a transition just applied (`order` already in its new state); [] for a step nobody is
        told about (cancel, expire: the catalogue has no event for them)."""
        move = move or EscrowMove()
        send = lambda event, user_ids, **context: self._send(  # noqa: E731 (one place for the key and link)
            session, tenant, order, event, user_ids, key=action, **context)
        title = order.title
        if action == "accept":
            return send(Event.BOOKING_ACCEPTED, [order.client_id], pro_name=person_name(session, order.pro_id),
                        service_title=title, when=_day(order.scheduled_for))
        if action == "decline":
            return send(Event.BOOKING_DECLINED, [order.client_id], link=FIND_A_PRO_PATH,
                        pro_name=person_name(session, order.pro_id), service_title=title,
                        when=_day(order.scheduled_for), reason=note)
        if action == "pay":
            return send(Event.PAYMENT_HELD, [order.pro_id], amount=format_money(order.price_minor, order.currency),
                        order_title=title, other_party=person_name(session, order.client_id))
        if action == "start":
            return send(Event.WORK_STARTED, [order.client_id], pro_name=person_name(session, order.pro_id),
                        order_title=title)
        if action == "deliver":
            return send(Event.WORK_DELIVERED, [order.client_id], pro_name=person_name(session, order.pro_id),
                        order_title=title, auto_complete_in=spoken(AUTO_COMPLETE_AFTER))
        if action in ("complete", "auto_complete"):
            return (send(Event.ORDER_COMPLETED, [order.client_id], order_title=title,
                         other_party=person_name(session, order.pro_id))
                    + send(Event.ORDER_COMPLETED, [order.pro_id], order_title=title,
                           other_party=person_name(session, order.client_id)))
        if action == "dispute":
            return self._dispute_opened(session, tenant, order, note, move)
        if action in RESOLVE_ACTIONS:
            return send(Event.DISPUTE_RESOLVED, [order.client_id, order.pro_id], order_title=title,
                        outcome=_outcome(order, move, note, tenant.name))
        return []

    def auto_complete_soon(self, session: Session, tenant: TenantPublic, order: Order, hours_left: int) -> list[int]:
        """The client's last call before a delivered order completes by itself (once per order: the key, and the
        service's audit row, say so)."""
        return self.notifications.notify(
            session, tenant, Event.AUTO_COMPLETE_SOON, [order.client_id], key=f"autocomplete:{order.id}",
            context={"order_title": order.title, "hours_left": hours_left}, link=order_path(order.id))

    def _dispute_opened(self, session: Session, tenant: TenantPublic, order: Order, reason: str,
                        move: EscrowMove) -> list[int]:
        """Only the client opens a dispute: the professional hears of it, and every admin of the marketplace,
        who settles it."""
        client, pro = person_name(session, order.client_id), person_name(session, order.pro_id)
        ids = self._send(session, tenant, order, Event.DISPUTE_OPENED, [order.pro_id], key="dispute",
                         other_party=client, order_title=order.title, reason=reason)
        ids += self.notifications.notify_admins(
            session, tenant, Event.ADMIN_DISPUTE_OPENED, key=f"order:{order.id}:dispute:admins",
            context={"order_id": order.id, "order_title": order.title, "opened_by": f"{client} (client)",
                     "against": f"{pro} (professional)", "amount": format_money(move.held_minor, order.currency),
                     "reason": reason},
            link=order_path(order.id))
        return ids

    def _send(self, session: Session, tenant: TenantPublic, order: Order, event: Event, user_ids: Sequence[int], *,
              key: str, link: str = "", **context: Any) -> list[int]:
        return self.notifications.notify(session, tenant, event, user_ids, key=f"order:{order.id}:{key}",
                                         context=context, link=link or order_path(order.id))


def _outcome(order: Order, move: EscrowMove, note: str, marketplace: str) -> str:
    """The resolution in one or two sentences: who got what, and the team's reason."""
    money = lambda minor: format_money(minor, order.currency)  # noqa: E731
    if move.refunded_minor and move.released_minor:
        text = (f"{money(move.refunded_minor)} was refunded to the client and {money(move.released_minor)} "
                "released to the professional.")
    elif move.refunded_minor:
        text = f"{money(move.refunded_minor)} was refunded to the client."
    elif move.released_minor:
        text = f"{money(move.released_minor)} was released to the professional."
    else:
        text = "No money was left in escrow to refund or release."
    return f"{text} Note from the {marketplace} team: \"{note}\"" if note else text
