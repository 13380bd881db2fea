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

from sqlmodel import Session, col, select

from backend.identity import TenantPublic
from backend.money import format_money
from backend.notifications.catalogue import Event
from backend.notifications.service import NotificationService
from backend.orders.models import Order, OrderEvent
from backend.orders.process import AUTO_COMPLETE_AFTER, UNPAID_EXPIRY, Party, spoken
from backend.orders.views import person_name

FIND_A_PRO_PATH = "/pros"  # a declined booking: the client looks for someone else
RESOLVE_ACTIONS = frozenset({"resolve_refund", "resolve_release", "resolve_split"})
# Steps whose messages say how much money is in escrow (the admin's dispute alert, the resolution's outcome, what a
# cancellation gives back): the service reads the escrow balance before their payment effect runs.
NEEDS_ESCROW = RESOLVE_ACTIONS | {"dispute", "cancel"}


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
        if action == "cancel":  # a paid order's cancellation refunds it all; an unpaid one held nothing
            return cls(held_minor, refunded_minor=held_minor)
        return cls(held_minor)


class OrderNotices:
    def __init__(self, notifications: NotificationService):
        self.notifications = notifications

    def booking_requested(self, session: Session, tenant: TenantPublic, order: Order) -> list[int]:
        """A client booked the professional directly: they accept or decline it, and the client gets a receipt.
        A requested booking has no timer (process.TIMERS): the receipt promises no answer by a date, only the
        payment window that starts once the professional accepts."""
        when, amount = _day(order.scheduled_for), format_money(order.price_minor, order.currency)
        ids = self._send(session, tenant, order, Event.BOOKING_REQUESTED, [order.pro_id], key="booked",
                         client_name=person_name(session, order.client_id), service_title=order.title, when=when,
                         amount=amount)
        ids += self._send(session, tenant, order, Event.BOOKING_SENT, [order.client_id], key="booking_sent",
                          pro_name=person_name(session, order.pro_id), service_title=order.title, when=when,
                          amount=amount, pay_within=spoken(UNPAID_EXPIRY))
        return ids

    def after(self, session: Session, tenant: TenantPublic, order: Order, action: str, *, note: str = "",
              move: EscrowMove | None = None) -> list[int]:
        """The messages of a transition just applied (`order` already in its new state, its audit row written).
        Every action of process.TRANSITIONS tells someone; [] for any other. A cancellation tells the other party
        (the audit row says who cancelled), or both when the marketplace's admin cancels; an order expired unpaid
        tells both."""
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
        if action == "cancel":
            return self._cancelled(session, tenant, order, _taken_by(session, order, action), note, move)
        if action == "expire":
            client, pro = person_name(session, order.client_id), person_name(session, order.pro_id)
            window = spoken(UNPAID_EXPIRY)
            return (send(Event.ORDER_EXPIRED, [order.client_id], order_title=title, other_party=pro,
                         pay_within=window,
                         next_step="Nothing was charged. If you still need it done, book again or find another pro.")
                    + send(Event.ORDER_EXPIRED, [order.pro_id], order_title=title, other_party=client,
                           pay_within=window,
                           next_step="Nothing was charged, and the time you set aside is free again."))
        return []

    def auto_complete_soon(self, session: Session, tenant: TenantPublic, order: Order, hours_left: int) -> list[int]:
        """The client's last call before a delivered order completes by itself (once per order: the key, and the
        service's audit row, say so)."""
        return self.notifications.notify(
            session, tenant, Event.AUTO_COMPLETE_SOON, [order.client_id], key=f"autocomplete:{order.id}",
            context={"order_title": order.title, "hours_left": hours_left}, link=order_path(order.id))

    def _cancelled(self, session: Session, tenant: TenantPublic, order: Order, by: Party, reason: str,
                   move: EscrowMove) -> list[int]:
        """The client or the professional cancelled: the other one hears of it; the marketplace's admin cancelled
        (a paid order, with a reason): both do. Each is told what happened to the money in their own words."""
        if by == Party.CLIENT:
            told, who = [order.pro_id], person_name(session, order.client_id)
        elif by == Party.PROFESSIONAL:
            told, who = [order.client_id], person_name(session, order.pro_id)
        else:
            told, who = [order.client_id, order.pro_id], f"The {tenant.name} team"
        refunded = format_money(move.refunded_minor, order.currency)
        ids: list[int] = []
        for user_id in told:
            to_client = user_id == order.client_id
            if not move.refunded_minor:
                refund = "Nothing was charged." if to_client else "The client had not paid yet."
            else:
                refund = f"The {refunded} held for this order is refunded to {'you' if to_client else 'the client'}."
            ids += self._send(session, tenant, order, Event.ORDER_CANCELLED, [user_id], key="cancel",
                              order_title=order.title, cancelled_by=who, reason=reason, refund=refund)
        return ids

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


def _taken_by(session: Session, order: Order, action: str) -> Party:
    """Who took the step, as its audit row says (written in the step's transaction just before; the lifecycle has
    no loops, so there is one such row): a replayed step's messages name the same party and reach the same people."""
    event = session.exec(select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.action == action)
                         .order_by(col(OrderEvent.id).desc())).first()
    return Party(event.actor_role) if event is not None else Party.SYSTEM


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
