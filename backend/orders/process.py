"""The order lifecycle as data, in the spirit of Sharetribe's transaction processes.

Each row: the action, the states it applies in, the resulting state, who may take it, an
optional guard (a refusal message or None), and the payment effect. `OrderService.apply`
is the one function that applies a row, and it writes an audit event for every transition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from backend.orders.models import Order, OrderState as S

UNPAID_EXPIRY = timedelta(hours=48)
AUTO_COMPLETE_AFTER = timedelta(days=7)
# The client is reminded this long before a delivered order completes by itself (once: the reminder is an audit
# row of the order, REMIND_AUTO_COMPLETE, written with the notification).
AUTO_COMPLETE_REMINDER = timedelta(hours=24)
REMIND_AUTO_COMPLETE = "remind_auto_complete"


class Party(StrEnum):
    """A party to an order: who takes a transition (the caller as seen by this order, or the timers)."""

    CLIENT = "client"
    PROFESSIONAL = "professional"
    ADMIN = "admin"
    SYSTEM = "system"


class Effect(StrEnum):
    NONE = "none"
    HOLD = "hold"  # authorise the client's payment into escrow
    RELEASE = "release"  # capture; what is in escrow goes to the professional minus the platform fee
    REFUND = "refund"  # give everything in escrow back (voids an untouched hold)
    SPLIT = "split"  # refund part to the client, release the rest to the professional


Guard = Callable[[Order, datetime], str | None]


def _older_than(age: timedelta, what: str) -> Guard:
    def guard(order: Order, now: datetime) -> str | None:
        return None if now - order.state_changed_at >= age else f"The order is not {what} yet."

    return guard


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[S, ...]
    target: S
    actors: frozenset[Party]
    label: str
    effect: Effect = Effect.NONE
    guard: Guard | None = None
    needs_note: bool = False
    tone: str = "accent"  # how the UI shows the button: accent | neutral | danger
    confirm: str = ""


def T(action, sources, target, actors, label, **kw) -> Transition:  # noqa: N802 (reads like a table)
    return Transition(action, tuple(sources), target, frozenset(actors), label, **kw)


C, P, A, SYS = Party.CLIENT, Party.PROFESSIONAL, Party.ADMIN, Party.SYSTEM

TRANSITIONS: tuple[Transition, ...] = (
    T("accept", [S.REQUESTED], S.ACCEPTED, [P], "Accept booking"),
    T("decline", [S.REQUESTED], S.CANCELLED, [P], "Decline", tone="danger", confirm="Decline this booking?"),
    # the client pays on the provider's hosted page; the return page or the webhook confirms it
    T("pay", [S.ACCEPTED], S.PAID, [C, SYS], "Pay", effect=Effect.HOLD),
    T("start", [S.PAID], S.IN_PROGRESS, [P], "Start work"),
    T("deliver", [S.IN_PROGRESS], S.DELIVERED, [P], "Mark as delivered"),
    T("complete", [S.DELIVERED], S.COMPLETED, [C], "Approve and complete", effect=Effect.RELEASE,
      confirm="Release the payment to the professional?"),
    T("dispute", [S.IN_PROGRESS, S.DELIVERED], S.DISPUTED, [C], "Open a dispute", needs_note=True, tone="danger",
      confirm="Tell us what went wrong. The marketplace team will review it."),
    # cancellation rules per state and side
    T("cancel", [S.REQUESTED, S.ACCEPTED], S.CANCELLED, [C, P], "Cancel order", tone="danger",
      confirm="Cancel this order?"),
    T("cancel", [S.PAID], S.CANCELLED, [C, P], "Cancel and refund", effect=Effect.REFUND, tone="danger",
      confirm="Cancel this order? The client gets a full refund."),
    T("cancel", [S.IN_PROGRESS], S.CANCELLED, [P], "Cancel and refund", effect=Effect.REFUND, tone="danger",
      confirm="Stop the work and refund the client in full?"),
    # the marketplace admin settles disputes
    T("resolve_refund", [S.DISPUTED], S.RESOLVED, [A], "Resolve: refund client", effect=Effect.REFUND,
      needs_note=True, tone="danger", confirm="Refund the client in full?"),
    T("resolve_release", [S.DISPUTED], S.RESOLVED, [A], "Resolve: pay professional", effect=Effect.RELEASE,
      needs_note=True, confirm="Release the payment to the professional?"),
    T("resolve_split", [S.DISPUTED], S.RESOLVED, [A], "Resolve: split", effect=Effect.SPLIT, needs_note=True,
      confirm="Refund part to the client and release the rest to the professional."),
    T("cancel", [S.PAID, S.IN_PROGRESS, S.DELIVERED], S.CANCELLED, [A], "Cancel and refund in full",
      effect=Effect.REFUND, needs_note=True, tone="danger", confirm="Cancel the order and refund the client?"),
    # timers
    T("expire", [S.ACCEPTED], S.EXPIRED, [SYS], "Expire unpaid order", guard=_older_than(UNPAID_EXPIRY, "48 h old")),
    T("auto_complete", [S.DELIVERED], S.COMPLETED, [SYS], "Complete automatically", effect=Effect.RELEASE,
      guard=_older_than(AUTO_COMPLETE_AFTER, "7 days past delivery")),
)

# timer action -> (state it waits in, how long); run_timers queries with these, the guards re-check
TIMERS = {"expire": (S.ACCEPTED, UNPAID_EXPIRY), "auto_complete": (S.DELIVERED, AUTO_COMPLETE_AFTER)}

TERMINAL = frozenset({S.COMPLETED, S.CANCELLED, S.EXPIRED, S.RESOLVED})
# the client's money is held in escrow (paid, not yet released or refunded in full): the admin may refund part of it
ESCROW_STATES = (S.PAID, S.IN_PROGRESS, S.DELIVERED, S.DISPUTED)


def spoken(age: timedelta) -> str:
    """A timer as the UI and the messages say it: "48 hours", "7 days" (days once it is more than two whole ones)."""
    hours = int(age.total_seconds() // 3600)
    if hours > 48 and hours % 24 == 0:
        return f"{hours // 24} days"
    return f"{hours} hour{'s' if hours != 1 else ''}"


def status_note(state: str) -> str:
    """What the order page says about a waiting state's timer ("" when none runs), from the timers themselves."""
    if state == S.ACCEPTED:
        return f"Payment is due within {spoken(UNPAID_EXPIRY)}, or the order expires."
    if state == S.DELIVERED:
        return (f"The client has {spoken(AUTO_COMPLETE_AFTER)} to approve or open a dispute; "
                "then it completes automatically.")
    return ""


def check_unambiguous(transitions: tuple[Transition, ...]) -> None:
    """At most one row per (action, state, actor): the row an actor's click applies is never a matter of order
    in the table. Raises ValueError naming the clashes."""
    seen: dict[tuple[str, str, Party], Transition] = {}
    clashes = []
    for t in transitions:
        for state in t.sources:
            for actor in t.actors:
                key = (t.action, state, actor)
                if key in seen:
                    clashes.append(f"{t.action!r} in {state} by {actor}: {seen[key].label!r} and {t.label!r}")
                seen[key] = t
    if clashes:
        raise ValueError("Ambiguous order transitions: " + "; ".join(clashes))


check_unambiguous(TRANSITIONS)


def find(action: str, state: str, actor: Party) -> Transition | None:
    """The row this actor applies with `action` in `state` (at most one: see check_unambiguous)."""
    return next((t for t in TRANSITIONS if t.action == action and state in t.sources and actor in t.actors), None)


def actors_for(action: str, state: str) -> frozenset[Party]:
    """Everyone who may take `action` in `state` (empty: nobody can, it does not apply in that state)."""
    return frozenset().union(*(t.actors for t in TRANSITIONS if t.action == action and state in t.sources))


def available(state: str, actor: Party) -> list[Transition]:
    """What this actor may do now (for buttons; `OrderService.apply` checks again)."""
    return [t for t in TRANSITIONS if state in t.sources and actor in t.actors]
