"""Steps in doubt: a write-ahead journal (PaymentStep) for the steps that give money back (void, refund).

Such a step is written down, in its own committed transaction, before the provider is called. If the provider's
answer is lost, the provider may be ahead of our books: the step stays pending ("in doubt") until it is replayed
with the same idempotency keys, before anything else happens to the order (OrderService.settle does that).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session, select

from backend.db import Database, utcnow
from backend.errors import DomainError, ValidationFailed
from backend.identity import Caller
from backend.payments.models import PaymentStep, StepStatus
from backend.payments.ports import PaymentDeclined

log = logging.getLogger(__name__)

STEP_RECORDED = ("The payment provider did not confirm the refund in time. It is recorded and will be completed as "
                 "soon as the provider answers (nothing is refunded twice); until then the order stays as it is.")
STEP_WAITING = ("A refund on this order is still waiting for the payment provider's answer, and nothing else can "
                "happen to the order until it arrives. Please try again in a few minutes.")


@dataclass(frozen=True)
class StepRecord:
    """A step in doubt, as read (see PaymentStep): enough to replay it as it was asked for."""

    id: int
    order_id: int
    step: str
    action: str
    actor_id: int | None
    actor_role: str
    note: str
    amount_minor: int | None


class StepInDoubt(Exception):  # noqa: N818 (not an error shown to anyone: the caller settles the step and retries)
    """Raised under the order's lock when another step on the order is in doubt: settle it first, then retry."""

    def __init__(self, step: StepRecord):
        super().__init__(f"step {step.step!r} on order {step.order_id} is in doubt")
        self.step = step


class PaymentSteps:
    def __init__(self, db: Database):
        self.db = db

    def begin(self, tenant_id: int, order_id: int, *, step: str, action: str, actor: Caller | None, note: str,
              amount_minor: int | None) -> int:
        """Record, in its own committed transaction, that a step giving money back is about to call the provider.
        Call it while holding the order's lock and before the step's transaction writes anything (SQLite has one
        writer at a time). The same step asked again (a retry, or its settlement) reuses its row."""
        with self.db.tenant_session(tenant_id) as session:
            row = session.exec(select(PaymentStep).where(PaymentStep.order_id == order_id,
                                                         PaymentStep.step == step)).first()
            if row is None:
                row = PaymentStep(order_id=order_id, step=step, action=action)
                session.add(row)
            row.action, row.note, row.amount_minor = action, note[:500], amount_minor
            row.actor_id, row.actor_role = (actor.id, str(actor.role)) if actor is not None else (None, "")
            row.status, row.attempts, row.updated_at = StepStatus.PENDING, row.attempts + 1, utcnow()
            session.flush()
            return row.id

    def finish(self, session: Session, step_id: int) -> None:
        """In the transaction that books the step's outcome: done, atomically with the books."""
        row = session.get(PaymentStep, step_id)
        row.status, row.last_error, row.updated_at = StepStatus.DONE, "", utcnow()

    def interrupted(self, tenant_id: int, step_id: int | None, exc: DomainError) -> None:
        """After the step's transaction rolled back. A refusal (the provider declined, the amount was wrong) moved
        nothing: the step is over. Anything else (no answer, or a failure after the provider acted) leaves it
        pending: in doubt until it is replayed."""
        if step_id is None:
            return
        done = isinstance(exc, (PaymentDeclined, ValidationFailed))
        with self.db.tenant_session(tenant_id) as session:
            row = session.exec(select(PaymentStep).where(PaymentStep.id == step_id).with_for_update()).first()
            if row is None or row.status != StepStatus.PENDING:
                return
            if done:
                row.status = StepStatus.FAILED
            row.last_error, row.updated_at = exc.message[:500], utcnow()
            log.warning("payment step %r on order %s %s: %s", row.step, row.order_id,
                        "refused" if done else "in doubt", exc.message)

    def in_doubt(self, session: Session, order_id: int) -> StepRecord | None:
        row = session.exec(select(PaymentStep).where(PaymentStep.order_id == order_id,
                                                     PaymentStep.status == StepStatus.PENDING)
                           .order_by(PaymentStep.id)).first()
        if row is None:
            return None
        return StepRecord(id=row.id, order_id=row.order_id, step=row.step, action=row.action, actor_id=row.actor_id,
                          actor_role=row.actor_role, note=row.note, amount_minor=row.amount_minor)

    def orders_in_doubt(self, tenant_id: int) -> list[int]:
        """Orders with a step in doubt (the timer job settles them)."""
        with self.db.tenant_session(tenant_id) as session:
            return sorted(set(session.exec(select(PaymentStep.order_id).where(
                PaymentStep.status == StepStatus.PENDING)).all()))
