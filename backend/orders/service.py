"""Orders: direct booking, the lifecycle (one `apply` for every transition), paying and refunding an order, timers,
invoices, and the messages each step sends (notices.py: written in the step's transaction, delivered after commit).

The one writer of orders: every Order and OrderEvent row is written here, by open_order (a booking, an accepted
quote), _apply (a transition) and _refund (the admin's partial refund), each event through _write_event.
Payments sit below: this service locks the order, hands payments a PayableOrder, and books what they answer.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.identity import Caller, Role, TenantPublic, TenantStatus
from backend.accounts.models import User, UserStatus
from backend.db import Database, utcnow
from backend.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.money import fee_for, format_money, parse_amount
from backend.notifications.service import NotificationService
from backend.orders import process
from backend.orders.facts import REVIEWABLE_ENDINGS, SETTLED, payable
from backend.orders.forms import BookingCreate
from backend.orders.invoices import InvoiceData, render_invoice
from backend.orders.models import Order, OrderEvent, OrderState
from backend.orders.notices import NEEDS_ESCROW, EscrowMove, OrderNotices
from backend.orders.process import ESCROW_STATES, Effect, Party, Transition
from backend.orders.views import (ActionView, DisputeWaiting, EventView, OrderView, order_view, person_name,
                                  viewer_of)
from backend.payments.ports import Authorization, PaymentDeclined, PaymentUnavailable
from backend.payments.service import PaymentService
from backend.payments.steps import STEP_RECORDED, STEP_WAITING, StepInDoubt, StepRecord
from backend.profiles.models import WEEKDAYS, Profile, ProProfile
from backend.profiles.ports import SearchIndexJobs
from backend.storage.ports import ObjectStore, new_key
from backend.tenancy.models import Tenant
from backend.validation import parse_input

__all__ = ["ActionView", "DisputeWaiting", "EventView", "OrderJobs", "OrderService",  # the views are re-exported
           "OrderView"]

log = logging.getLogger(__name__)
ADMIN_REFUND = "admin_refund"  # PaymentStep.action of an admin's partial refund (the others are order actions)
NOT_INVOICEABLE = "No completed order to invoice."
# A follow-up (invoice, payout) still missing this long after its order ended lost its job (the enqueue failed while
# Redis was down): the timers enqueue it again. Orders that ended longer ago than FOLLOW_UP_HORIZON are not looked at.
FOLLOW_UP_LOST_AFTER = timedelta(minutes=10)
FOLLOW_UP_HORIZON = timedelta(days=30)
FOLLOW_UP_BATCH = 200  # jobs of each kind per tenant and run, at most; the next run takes the rest


class OrderJobs(SearchIndexJobs, Protocol):
    """What the order service schedules after commit (Celery in production); index_pro: a completed order counts
    in the professional's search document (completed jobs)."""

    def deliver_notification(self, tenant_id: int, notification_id: int) -> None:
        """Send one email/SMS row its step wrote (backend/notifications: delivery is idempotent)."""
        ...

    def generate_invoice(self, tenant_id: int, order_id: int) -> None: ...

    def pay_out_order(self, tenant_id: int, order_id: int) -> None: ...

    def open_reviews(self, tenant_id: int, order_id: int) -> None:
        """The order ended in a way its parties may review (facts.REVIEWABLE_ENDINGS): open their review window."""
        ...


def _locked(session: Session, order_id: int, *, missing: str = "No such order.") -> Order:
    """The order, its row held until the transaction ends so that no other step on it runs meanwhile; NotFound
    (with `missing`) if there is none."""
    order = session.exec(select(Order).where(Order.id == order_id).with_for_update()).first()
    if order is None:
        raise NotFound(missing)
    return order


def _one_line(text: str) -> str:
    """A note or a reason as the order's timeline keeps it: one line, at most what OrderEvent.note holds."""
    return " ".join((text or "").split())[:500]


class OrderService:
    """`notifications` writes each step's messages in the step's own transaction (backend/orders/notices.py)."""

    def __init__(self, db: Database, payments: PaymentService, store: ObjectStore, jobs: OrderJobs, *,
                 notifications: NotificationService):
        self.db = db
        self.payments = payments
        self.store = store
        self.jobs = jobs
        self.notifications = notifications
        self.notices = OrderNotices(notifications)

    # ------------------------------------------------------------------ views (backend/orders/views.py)

    def list_orders(self, tenant: TenantPublic, caller: Caller) -> list[OrderView]:
        if caller is None or caller.tenant_id != tenant.id:
            raise PermissionDenied("Please log in first.")
        with self.db.tenant_session(tenant.id) as session:
            query = select(Order).order_by(Order.state_changed_at.desc(), Order.id.desc()).limit(200)
            if caller.role == Role.CLIENT:
                query = query.where(Order.client_id == caller.id)
            elif caller.role == Role.PROFESSIONAL:
                query = query.where(Order.pro_id == caller.id)
            return [order_view(session, o, viewer_of(caller, o)) for o in session.exec(query).all()]

    def get(self, tenant: TenantPublic, caller: Caller, order_id: int) -> OrderView:
        """Participants and the tenant admin only; anyone else is told it does not exist."""
        with self.db.tenant_session(tenant.id) as session:
            order = session.get(Order, order_id)
            viewer = viewer_of(caller, order) if order and caller and caller.tenant_id == tenant.id else None
            if viewer is None:
                raise NotFound("No such order.")
            return order_view(session, order, viewer, detail=True)

    def disputes_waiting(self, tenant: TenantPublic, caller: Caller,
                         limit: int = 20) -> tuple[int, list[DisputeWaiting]]:
        """The admin's operations queue: orders in dispute, the longest waiting first, and how many there are in
        all. At most `limit` (<= 100) rows; 0 counts only (the navigation's badge)."""
        if caller is None or not caller.is_admin_of(tenant.id):
            raise PermissionDenied("Only the marketplace admin can see the disputes.")
        limit = max(0, min(limit, 100))
        waiting = Order.state == OrderState.DISPUTED
        with self.db.tenant_session(tenant.id) as session:
            total = session.exec(select(sa.func.count()).select_from(Order).where(waiting)).one()
            if not total or not limit:
                return total, []
            orders = session.exec(select(Order).where(waiting).order_by(Order.state_changed_at, Order.id)
                                  .limit(limit)).all()
            people = {o.client_id for o in orders} | {o.pro_id for o in orders}
            names = dict(session.exec(select(Profile.user_id, Profile.full_name)
                                      .where(Profile.user_id.in_(people))).all())
            return total, [DisputeWaiting(
                order_id=o.id, title=o.title, client_name=names.get(o.client_id) or f"User {o.client_id}",
                pro_name=names.get(o.pro_id) or f"User {o.pro_id}", amount=format_money(o.price_minor, o.currency),
                amount_minor=o.price_minor, currency=o.currency, disputed_at=o.state_changed_at) for o in orders]

    # ------------------------------------------------------------------ direct booking

    def book(self, tenant: TenantPublic, caller: Caller, pro_id: int, data: dict) -> int:
        """Instant booking at the professional's listed hourly rate."""
        if caller is None or caller.tenant_id != tenant.id or caller.role != Role.CLIENT:
            raise PermissionDenied("Log in as a client to book a professional.")
        form = parse_input(BookingCreate, data)
        with self.db.tenant_session(tenant.id) as session:
            user = session.get(User, pro_id)
            pro = session.get(ProProfile, pro_id)
            if user is None or user.role != Role.PROFESSIONAL or user.status != UserStatus.ACTIVE or pro is None:
                raise NotFound("This professional is not on the marketplace.")
            if pro.hourly_rate_minor <= 0:
                raise DomainError("This professional has no listed rate: request a quote instead.")
            if WEEKDAYS[form.day.weekday()] not in pro.availability or form.day.isoformat() in pro.blocked_dates:
                raise ValidationFailed({"day": "The professional is not available that day"})
            order_id = self.open_order(session, tenant, caller, action="book", state=OrderState.REQUESTED,
                                       pro_id=pro_id, title=f"{form.hours} h with {person_name(session, pro_id)}",
                                       price_minor=pro.hourly_rate_minor * form.hours, currency=pro.currency,
                                       scheduled_for=form.day, note=form.note[:500])
            notes = self.notices.booking_requested(session, tenant, session.get(Order, order_id))
        self._deliver(tenant, notes)
        return order_id

    # ------------------------------------------------------------------ the one writer

    def open_order(self, session: Session, tenant: TenantPublic, client: Caller, *, action: str, state: OrderState,
                   pro_id: int, title: str, price_minor: int, currency: str, scheduled_for: date | None, note: str,
                   request_id: int | None = None, quote_id: int | None = None) -> int:
        """Create an order and its first audit row, in the caller's transaction: a booking (`book`, requested) or
        an accepted quote (`accept_quote`, accepted; QuoteService holds the request's lock). Returns its id."""
        order = Order(client_id=client.id, pro_id=pro_id, request_id=request_id, quote_id=quote_id, title=title,
                      price_minor=price_minor, currency=currency,
                      platform_fee_minor=fee_for(price_minor, tenant.platform_fee_bps), scheduled_for=scheduled_for,
                      state=state)
        session.add(order)
        session.flush()
        self._write_event(session, order, action, to_state=state, actor_id=client.id, actor_role=client.role,
                          note=note)
        return order.id

    @staticmethod
    def _write_event(session: Session, order: Order, action: str, *, to_state: str, actor_id: int | None,
                     actor_role: str, note: str, from_state: str = "", at: datetime | None = None) -> None:
        """The audit row of everything that happens to an order (the only place OrderEvent rows are added)."""
        session.add(OrderEvent(order_id=order.id, action=action, from_state=from_state, to_state=to_state,
                               actor_id=actor_id, actor_role=actor_role, note=note, at=at or utcnow()))

    # ------------------------------------------------------------------ paying for an order

    def start_checkout(self, tenant: TenantPublic, caller: Caller, order_id: int) -> str:
        """Begin paying an accepted order on the tenant's provider; returns the hosted page's URL.
        The amount always comes from the order, never from the browser."""
        self.payments.gateway_for(tenant)  # a marketplace that cannot take payments refuses before anything else
        with self.db.tenant_session(tenant.id) as session:
            order = _locked(session, order_id)
            if caller is None or caller.id != order.client_id or caller.role != Role.CLIENT:
                raise NotFound("No such order.")
            if order.state != OrderState.ACCEPTED:
                raise DomainError("This order is not waiting for payment.")
            client = session.get(User, order.client_id)
            return self.payments.checkout.start(session, tenant, payable(order), customer_email=client.email)

    def confirm_checkout(self, tenant: TenantPublic, session_id: str, caller: Caller | None = None) -> int | None:
        """The payer came back, or a webhook said so: if the provider holds the funds, mark the order paid.
        Returns the order's id (None: not approved yet). Safe to call any number of times."""
        result = self.payments.checkout.result(tenant, session_id)
        if result.booked:
            return result.order_id
        if result.authorization is None:
            return None
        order_id = result.order_id
        try:
            self.apply(tenant, caller, order_id, "pay", authorization=result.authorization)
        except DomainError:
            # Either the return page and the webhook confirmed at once (the other one won: fine), or the
            # order moved on (expired, cancelled) while the payer was on the provider's page: then the
            # hold must not linger on the client's card.
            with self.db.tenant_session(tenant.id) as session:
                if not self.payments.checkout.still_open(session, session_id):
                    return order_id
                state = session.get(Order, order_id).state
                if state == OrderState.ACCEPTED:
                    raise
                self.payments.checkout.void_late_hold(session, tenant, session_id, result.authorization)
            raise DomainError(f"This order was {state.replace('_', ' ')} before the payment arrived; "
                              "the hold on your card was released.") from None
        return order_id

    # ------------------------------------------------------------------ the lifecycle

    def apply(self, tenant: TenantPublic, caller: Caller | None, order_id: int, action: str, *, note: str = "",
              authorization: Authorization | None = None, refund: str = "",
              now: datetime | None = None) -> OrderView:
        """Apply one transition: check actor and guard, run the payment effect, move the state,
        write the audit row — all in one transaction. `caller=None` is the system (timers).
        If a refund on the order is in doubt (its provider answer was lost, see PaymentStep), that step is
        finished first and this action is then judged against the order as it is; the same step asked again
        simply goes ahead (its keys replay what the provider did)."""
        for _ in range(3):
            try:
                return self._apply(tenant, caller, order_id, action, note=note, authorization=authorization,
                                   refund=refund, now=now)
            except StepInDoubt as doubt:
                self.settle(tenant, doubt.step)
        raise PaymentUnavailable(STEP_WAITING)

    def settle_payments(self, tenant: TenantPublic, order_id: int) -> None:
        """Finish the step in doubt on this order, if any (the timer job calls this for every such order).
        Raises PaymentUnavailable while the provider still does not answer."""
        with self.db.tenant_session(tenant.id) as session:
            step = self.payments.steps.in_doubt(session, order_id)
        if step is not None:
            self.settle(tenant, step)

    def settle(self, tenant: TenantPublic, step: StepRecord) -> None:
        """Replay a step in doubt as it was asked: same caller, note, amount, and so the same idempotency keys, to
        which the provider answers what it did the first time (or does it now, if the first call never arrived).
        Either way the provider ends where the step meant it to, and our books follow in the same transaction.
        A refusal means it never happened: the step is closed and the books are already right."""
        caller = None if not step.actor_role else Caller(role=Role(step.actor_role), id=step.actor_id,
                                                          tenant_id=tenant.id)
        try:
            if step.action == ADMIN_REFUND:
                self._refund(tenant, caller, step.order_id, "", step.note, resume=step)
            else:
                self._apply(tenant, caller, step.order_id, step.action, note=step.note, resume=step)
            log.info("payment step %r on order %s settled", step.step, step.order_id)
        except PaymentUnavailable as exc:
            raise PaymentUnavailable(STEP_WAITING) from exc
        except (PaymentDeclined, ValidationFailed):
            pass  # refused now, so it never happened (steps.interrupted closed it); go on with the order
        except DomainError as exc:  # not the provider's doing: the books could not follow; a person must look
            log.error("payment step %r on order %s cannot be settled: %s", step.step, step.order_id, exc.message)
            raise DomainError("A refund on this order could not be booked; the marketplace team has to check the "
                              "order's payment before anything else can happen to it.") from None

    def _apply(self, tenant: TenantPublic, caller: Caller | None, order_id: int, action: str, *, note: str = "",
               authorization: Authorization | None = None, refund: str = "", now: datetime | None = None,
               resume: StepRecord | None = None) -> OrderView | None:
        """apply() without the settling; `resume` replays that step in doubt (None if it was finished meanwhile).
        Raises StepInDoubt when another step on the order is in doubt."""
        now = now or utcnow()
        note = _one_line(note)
        step_id = None
        try:
            with self.db.tenant_session(tenant.id) as session:
                order = _locked(session, order_id)
                if caller is None:
                    actor = Party.SYSTEM
                else:
                    actor = viewer_of(caller, order) if caller.tenant_id == tenant.id else None
                    if actor is None:
                        raise NotFound("No such order.")
                pending = self.payments.steps.in_doubt(session, order.id)
                if resume is not None and (pending is None or pending.id != resume.id):
                    return None  # finished meanwhile by whoever held the order before us
                transition = process.find(action, order.state, actor)
                if transition is None:
                    allowed = process.actors_for(action, order.state)
                    if not allowed:
                        raise DomainError(f"You can't {action.replace('_', ' ')} an order that is "
                                          f"{order.state.replace('_', ' ')}.")
                    people = sorted(a.value for a in allowed if a != Party.SYSTEM)
                    raise PermissionDenied(f"Only the {' or '.join(people)} can do that." if people
                                           else "That happens automatically.")
                if transition.guard and (refusal := transition.guard(order, now)):
                    raise DomainError(refusal)
                if transition.needs_note and not note:
                    raise ValidationFailed({"note": "Please add a short explanation"})
                refund_minor = resume.amount_minor if resume is not None else None
                if transition.effect == Effect.SPLIT and resume is None:
                    try:
                        refund_minor = parse_amount(refund, order.currency, field_name="refund")
                    except ValueError as exc:
                        raise ValidationFailed({"refund": str(exc)}) from None
                gives_back = transition.effect in (Effect.REFUND, Effect.SPLIT)
                if pending is not None and (not gives_back or (pending.step, pending.amount_minor)
                                            != (transition.action, refund_minor)):
                    raise StepInDoubt(pending)  # that one first; the same step asked again goes ahead
                if gives_back:  # voids and refunds cannot be taken back: recorded before the provider is asked
                    step_id = self.payments.steps.begin(tenant.id, order.id, step=transition.action,
                                                        action=transition.action, actor=caller, note=note,
                                                        amount_minor=refund_minor)
                held = self.payments.escrow.held(session, payable(order)) if transition.action in NEEDS_ESCROW else 0
                self._run_effect(session, tenant, order, transition, caller.id if caller else None, authorization,
                                 refund_minor)
                if step_id is not None:
                    self.payments.steps.finish(session, step_id)
                self._write_event(session, order, transition.action, from_state=order.state,
                                  to_state=transition.target, actor_id=caller.id if caller else None,
                                  actor_role=actor.value, note=note, at=now)
                order.state = transition.target
                order.state_changed_at = now
                notes = self.notices.after(session, tenant, order, transition.action, note=note,
                                           move=EscrowMove.of(transition.action, held, refund_minor))
                self.notifications.touch(session, tenant.id, (order.client_id, order.pro_id))  # open order pages
                completed = transition.target == OrderState.COMPLETED
                pro_id = order.pro_id
                released = transition.effect in (Effect.RELEASE, Effect.SPLIT)
                reviewable = transition.action in REVIEWABLE_ENDINGS
                session.flush()
                view = order_view(session, order, actor if actor != Party.SYSTEM else Party.ADMIN, detail=True)
        except PaymentUnavailable as exc:
            if step_id is None:
                raise
            self.payments.steps.interrupted(tenant.id, step_id, exc)  # stays pending: in doubt
            raise PaymentUnavailable(STEP_RECORDED) from exc
        except DomainError as exc:
            self.payments.steps.interrupted(tenant.id, step_id, exc)
            raise
        if completed:
            self.jobs.generate_invoice(tenant.id, order_id)
            self.jobs.index_pro(tenant.id, pro_id)
        if released:
            self.jobs.pay_out_order(tenant.id, order_id)
        if reviewable:
            self.jobs.open_reviews(tenant.id, order_id)
        self._deliver(tenant, notes)
        return view

    def _deliver(self, tenant: TenantPublic, notification_ids: list[int]) -> None:
        """After commit: one delivery job per email/SMS row the step wrote (in-app rows are there already)."""
        for notification_id in notification_ids:
            self.jobs.deliver_notification(tenant.id, notification_id)

    def _run_effect(self, session: Session, tenant: TenantPublic, order: Order, t: Transition,
                    actor_id: int | None, authorization: Authorization | None, refund_minor: int | None) -> None:
        """Money moves with the transition, in its database transaction (backend/payments/escrow.py)."""
        escrow, facts = self.payments.escrow, payable(order)
        if t.effect == Effect.HOLD:
            escrow.hold(session, tenant, facts, authorization, actor_id)
        elif t.effect == Effect.RELEASE:
            self._released(order, escrow.release(session, tenant, facts, actor_id, step=t.action))
        elif t.effect == Effect.REFUND:
            escrow.refund(session, tenant, facts, None, actor_id, step=t.action)
        elif t.effect == Effect.SPLIT:
            escrow.refund(session, tenant, facts, refund_minor, actor_id, step=f"{t.action}-refund")
            self._released(order, escrow.release(session, tenant, facts, actor_id, step=f"{t.action}-release"))

    @staticmethod
    def _released(order: Order, fee_minor: int | None) -> None:
        """The order keeps the platform fee its escrow release actually took (None: nothing was left to release)."""
        if fee_minor is not None:
            order.platform_fee_minor = fee_minor

    # ------------------------------------------------------------------ the admin's partial refund

    def refund(self, tenant: TenantPublic, caller: Caller, order_id: int, amount_text: str, reason: str) -> int:
        """A partial refund from escrow, with a reason; the order carries on with what is left. A step in doubt on
        the order (see PaymentStep) is settled first, unless this is that step asked again. Returns the amount."""
        for _ in range(3):
            try:
                return self._refund(tenant, caller, order_id, amount_text, reason)
            except StepInDoubt as doubt:
                self.settle(tenant, doubt.step)
        raise PaymentUnavailable(STEP_WAITING)

    def _refund(self, tenant: TenantPublic, admin: Caller, order_id: int, amount_text: str, reason: str,
                resume: StepRecord | None = None) -> int:
        """resume: replay this step in doubt exactly as it was asked (same amount, same idempotency keys)."""
        if admin is None or admin.role != Role.ADMIN or admin.tenant_id != tenant.id:
            raise PermissionDenied("Only the marketplace admin can refund.")
        reason = _one_line(reason)
        step_id = None
        try:
            with self.db.tenant_session(tenant.id) as session:
                order = _locked(session, order_id)
                pending = self.payments.steps.in_doubt(session, order.id)
                if resume is not None:
                    if pending is None or pending.id != resume.id:
                        return 0  # finished meanwhile by whoever held the order before us
                    amount, step = resume.amount_minor, resume.step
                else:
                    errors = {}
                    try:
                        amount = parse_amount(amount_text, order.currency, field_name="amount")
                    except ValueError as exc:
                        errors["amount"] = str(exc)
                    if len(reason) < 3:
                        errors["reason"] = "Give a reason (it is shown on the order's timeline)"
                    if errors:
                        raise ValidationFailed(errors)
                    count = session.exec(select(sa.func.count()).select_from(OrderEvent).where(
                        OrderEvent.order_id == order.id, OrderEvent.action == "refund")).one()
                    step = f"refund-{count + 1}"
                    if pending is not None and (pending.step, pending.amount_minor) != (step, amount):
                        raise StepInDoubt(pending)  # that one first; this same refund asked again goes ahead
                if order.state not in ESCROW_STATES:
                    raise DomainError("Only money still held in escrow can be refunded here.")
                step_id = self.payments.steps.begin(tenant.id, order.id, step=step, action=ADMIN_REFUND, actor=admin,
                                                    note=reason, amount_minor=amount)
                self.payments.escrow.refund(session, tenant, payable(order), amount, admin.id, step=step,
                                            reason=reason)
                self._write_event(session, order, "refund", from_state=order.state, to_state=order.state,
                                  actor_id=admin.id, actor_role=admin.role,
                                  note=f"Refunded {format_money(amount, order.currency)}: {reason}")
                self.payments.steps.finish(session, step_id)
                return amount
        except DomainError as exc:
            self.payments.steps.interrupted(tenant.id, step_id, exc)
            raise

    # ------------------------------------------------------------------ timers

    def run_timers(self, tenant: TenantPublic, now: datetime | None = None) -> dict[str, int]:
        """Finish refunds left in doubt, expire unpaid accepted orders (48 h), complete delivered ones (7 days),
        and remind the client of a delivered order a day before it completes by itself."""
        now = now or utcnow()
        for order_id in self.payments.steps.orders_in_doubt(tenant.id):
            try:
                self.settle_payments(tenant, order_id)
            except DomainError as exc:  # the provider still does not answer: the next run tries again
                log.warning("payment step in doubt on order %s not settled yet: %s", order_id, exc.message)
        done = {}
        for action, (state, age) in process.TIMERS.items():
            with self.db.tenant_session(tenant.id) as session:
                due = session.exec(select(Order.id).where(Order.state == state,
                                                          Order.state_changed_at <= now - age)).all()
            done[action] = 0
            for order_id in due:
                try:
                    self.apply(tenant, None, order_id, action, now=now)
                    done[action] += 1
                except DomainError as exc:  # moved on meanwhile, or the provider refused: next run retries
                    log.warning("timer %s on order %s skipped: %s", action, order_id, exc.message)
        for order_id in self._to_remind(tenant, now):
            self._remind_auto_complete(tenant, order_id, now)
        return done

    def redo_lost_follow_ups(self, tenant: TenantPublic, now: datetime | None = None) -> dict[str, int]:
        """The timers' catch-up for what apply() schedules after commit (its enqueue never raises, so a lost one
        leaves the order as it was): orders that ended between FOLLOW_UP_HORIZON and FOLLOW_UP_LOST_AFTER ago
        get their job again if completed without an invoice, or settled with a share released and not paid out
        (payments' `Payouts.owed`). Both jobs are idempotent, so one still on its way changes nothing:
        generate_invoice locks the order and returns the invoice it has; pay_out_order finds the Payout row under
        the order's lock, and the provider's transfer carries the order's idempotency key.
        The other follow-ups have their own catch-up: the review window (ReviewService.run_timers opens any the job
        did not), the messages (NotificationService.due); the search document (index_pro) is repaired by a
        reindex (the app's start-up check, `check-index`)."""
        now = now or utcnow()
        ended_in_range = (Order.state_changed_at <= now - FOLLOW_UP_LOST_AFTER,
                          Order.state_changed_at > now - FOLLOW_UP_HORIZON)
        with self.db.tenant_session(tenant.id) as session:
            invoices = session.exec(select(Order.id).where(
                Order.state == OrderState.COMPLETED, Order.invoice_key == "", *ended_in_range)
                .order_by(Order.state_changed_at, Order.id).limit(FOLLOW_UP_BATCH)).all()
            settled = session.exec(select(Order.id).where(Order.state.in_(SETTLED), *ended_in_range)).all()
            payouts = self.payments.payouts.owed(session, settled)[:FOLLOW_UP_BATCH]
        for order_id in invoices:
            self.jobs.generate_invoice(tenant.id, order_id)
        for order_id in payouts:
            self.jobs.pay_out_order(tenant.id, order_id)
        return {"invoices_redone": len(invoices), "payouts_redone": len(payouts)}

    def _to_remind(self, tenant: TenantPublic, now: datetime) -> list[int]:
        """Delivered orders completing by themselves within AUTO_COMPLETE_REMINDER (not those already due: this
        run completed them, or will retry) whose client was not reminded yet."""
        reminded = select(OrderEvent.id).where(OrderEvent.order_id == Order.id,
                                               OrderEvent.action == process.REMIND_AUTO_COMPLETE)
        window_opens = now - (process.AUTO_COMPLETE_AFTER - process.AUTO_COMPLETE_REMINDER)
        with self.db.tenant_session(tenant.id) as session:
            return list(session.exec(select(Order.id).where(
                Order.state == OrderState.DELIVERED, Order.state_changed_at <= window_opens,
                Order.state_changed_at > now - process.AUTO_COMPLETE_AFTER, ~reminded.exists())).all())

    def _remind_auto_complete(self, tenant: TenantPublic, order_id: int, now: datetime) -> None:
        """One reminder per order: written with an audit row (the order's timeline shows it, and the next run
        skips the order), under the order's lock, so two timer runs at once remind once."""
        with self.db.tenant_session(tenant.id) as session:
            order = _locked(session, order_id)
            already = session.exec(select(OrderEvent.id).where(
                OrderEvent.order_id == order.id, OrderEvent.action == process.REMIND_AUTO_COMPLETE)).first()
            if order.state != OrderState.DELIVERED or already is not None:
                return
            left = order.state_changed_at + process.AUTO_COMPLETE_AFTER - now
            if left <= timedelta(0):
                return
            hours_left = max(1, math.ceil(left / timedelta(hours=1)))
            self._write_event(session, order, process.REMIND_AUTO_COMPLETE, from_state=order.state,
                              to_state=order.state, actor_id=None, actor_role=Party.SYSTEM.value,
                              note=f"The client was reminded: the order completes automatically in "
                                   f"{hours_left} hour{'' if hours_left == 1 else 's'}.", at=now)
            notes = self.notices.auto_complete_soon(session, tenant, order, hours_left)
        self._deliver(tenant, notes)

    # ------------------------------------------------------------------ invoices

    def generate_invoice(self, tenant: TenantPublic, order_id: int) -> str:
        """Idempotent: an order has one invoice."""
        with self.db.tenant_session(tenant.id) as session:
            order = _locked(session, order_id, missing=NOT_INVOICEABLE)
            if order.state != OrderState.COMPLETED:
                raise NotFound(NOT_INVOICEABLE)
            if order.invoice_key:
                return order.invoice_key
            client, pro = session.get(User, order.client_id), session.get(User, order.pro_id)
            data = InvoiceData(
                invoice_number=f"{tenant.slug.upper()}-{order.id:06d}", issued_on=date.today(),
                marketplace_name=tenant.name, currency=order.currency,
                client_name=person_name(session, order.client_id), client_email=client.email,
                pro_name=person_name(session, order.pro_id), pro_email=pro.email, order_id=order.id,
                order_title=order.title, lines=[(order.title, order.price_minor)],
                platform_fee_minor=order.platform_fee_minor, total_minor=order.price_minor)
            key = new_key(tenant.id, "invoices", ".pdf")  # random: order numbers are guessable
            self.store.put(key, render_invoice(data), "application/pdf")
            order.invoice_key = key
            self.notifications.touch(session, tenant.id, (order.client_id, order.pro_id))  # the link appears live
            return key

    def invoice(self, tenant: TenantPublic, caller: Caller, order_id: int) -> tuple[bytes, str]:
        """The PDF, for the order's client and professional and the marketplace's admins only; anyone else is
        told it does not exist (a refusal must not reveal which orders are completed)."""
        with self.db.tenant_session(tenant.id) as session:
            order = session.get(Order, order_id)
            viewer = viewer_of(caller, order) if order and caller and caller.tenant_id == tenant.id else None
            if viewer not in (Party.CLIENT, Party.PROFESSIONAL, Party.ADMIN):
                raise NotFound("No such invoice.")
            if not order.invoice_key:
                raise NotFound("The invoice is not ready yet.")
            key = order.invoice_key
        data, _ = self.store.get(key)
        return data, f"invoice-{tenant.slug}-{order_id}.pdf"

    def active_tenant_ids(self) -> list[int]:
        with self.db.platform_session() as session:
            return list(session.exec(select(Tenant.id).where(Tenant.status == TenantStatus.ACTIVE)).all())
