"""The order lifecycle table: the row an actor's click applies is chosen by action, state AND actor."""

from __future__ import annotations

import pytest

from backend.orders import process
from backend.orders.models import OrderState as S
from backend.orders.process import TRANSITIONS, Party, Effect, T, available, check_unambiguous, find


def test_the_table_has_at_most_one_row_per_action_state_and_actor():
    check_unambiguous(TRANSITIONS)  # also run at import time
    keys = [(t.action, state, actor) for t in TRANSITIONS for state in t.sources for actor in t.actors]
    assert len(keys) == len(set(keys))


def test_an_ambiguous_table_is_refused():
    clash = (*TRANSITIONS, T("cancel", [S.PAID], S.CANCELLED, [Party.ADMIN], "Cancel without refund"))
    with pytest.raises(ValueError, match="'cancel' in paid by admin"):
        check_unambiguous(clash)
    # the same action for different actors in the same state is fine: that is what the cancel rows do
    check_unambiguous((T("x", [S.PAID], S.CANCELLED, [Party.CLIENT], "a"),
                       T("x", [S.PAID], S.CANCELLED, [Party.ADMIN], "b")))


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("actor", list(Party))
def test_every_button_offered_applies_the_row_it_shows(state, actor):
    """What the order page offers (`available`) is what `apply` runs (`find`), label, effect and all."""
    for t in available(state, actor):
        assert find(t.action, state, actor) is t


@pytest.mark.parametrize("state", [S.PAID, S.IN_PROGRESS, S.DELIVERED])
def test_the_admin_cancel_is_the_admins_full_refund_row(state):
    row = find("cancel", state, Party.ADMIN)
    assert row is not None and Party.ADMIN in row.actors
    assert (row.target, row.effect, row.needs_note) == (S.CANCELLED, Effect.REFUND, True)


def test_find_refuses_other_actors_and_other_states():
    assert find("cancel", S.IN_PROGRESS, Party.CLIENT) is None  # the client disputes instead
    assert find("cancel", S.DELIVERED, Party.PROFESSIONAL) is None
    assert find("complete", S.DELIVERED, Party.PROFESSIONAL) is None
    assert find("complete", S.PAID, Party.CLIENT) is None
    assert find("nonsense", S.PAID, Party.ADMIN) is None
    assert process.actors_for("cancel", S.PAID) == {Party.CLIENT, Party.PROFESSIONAL, Party.ADMIN}
    assert process.actors_for("cancel", S.IN_PROGRESS) == {Party.PROFESSIONAL, Party.ADMIN}
    assert process.actors_for("cancel", S.COMPLETED) == frozenset()
