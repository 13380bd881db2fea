"""Synthetic history (backend/history.py) on SQLite and PostgreSQL: what it writes is what the services would have
written. Every ledger transaction balances and no escrow ever goes negative; every order's events are a path
through process.TRANSITIONS ending in the order's state; timers are respected; payments, payouts and the demo
gateway's records agree with the ledger; the real services (timers, an admin resolving a dispute) carry on with
generated orders; counts match; the same seed gives the same history; it refuses outside development and test."""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import SQLModel

from backend import history
from backend.config import Settings
from backend.db import Database, utcnow
from backend.identity import Caller, Role
from backend.orders import process
from backend.orders.process import Party
from backend.payments.ledger import Ledger

ORDERS = 300
T = SQLModel.metadata.tables
OPENINGS = {"book": "requested", "accept_quote": "accepted"}
TERMINAL = {s.value for s in process.TERMINAL}
ESCROW = {s.value for s in process.ESCROW_STATES}


def rows(svc, tenant_id: int, table: str, *order_by: str) -> list:
    t = T[table]
    with svc.db.tenant_session(tenant_id) as session:
        return list(session.execute(sa.select(t).where(t.c.tenant_id == tenant_id)
                                    .order_by(*(t.c[c] for c in order_by or ("id",)))).all())


@pytest.fixture
def made(svc, tenants):
    demo, acme = tenants
    for tenant in tenants:
        svc.catalog.seed_defaults(tenant.id)
    now = utcnow()
    stats = history.generate(svc.db, demo.id, orders=ORDERS, months=4, seed=11, now=now)
    return dict(svc=svc, demo=demo, acme=acme, now=now, stats=stats)


def test_counts_match_the_request_and_everything_happened_before_now(made):
    svc, demo, acme, now, stats = made["svc"], made["demo"], made["acme"], made["now"], made["stats"]
    orders = rows(svc, demo.id, "service_order")
    assert stats.orders == len(orders) == ORDERS
    assert sum(stats.orders_by_state.values()) == ORDERS
    assert stats.orders_by_state == dict(sorted({s: sum(o.state == s for o in orders)
                                                 for s in {o.state for o in orders}}.items()))
    for table, counted in (("service_request", stats.requests), ("quote", stats.quotes),
                           ("order_event", stats.order_events), ("ledger_transaction", stats.ledger_transactions),
                           ("ledger_entry", stats.ledger_entries), ("payment", stats.payments),
                           ("payout", stats.payouts)):
        assert len(rows(svc, demo.id, table)) == counted, table
    users = rows(svc, demo.id, "user_account")
    assert sum(u.role == "client" for u in users) == stats.clients_created == ORDERS // 8
    assert sum(u.role == "professional" for u in users) == stats.pros_created == 12
    assert all(u.email.endswith("@" + history.HISTORY_DOMAIN) for u in users)
    assert len({u.password_hash for u in users}) == 1  # one hash for everyone, never one per user
    assert history.has_history(svc.db, demo.id) and not history.has_history(svc.db, acme.id)
    # every state appears, ended and in between (300 orders over 4 months)
    assert {"completed", "cancelled", "expired", "resolved"} <= set(stats.orders_by_state)
    assert {"accepted", "paid", "in_progress", "delivered"} & set(stats.orders_by_state)
    assert stats.orders_by_state["completed"] > ORDERS * 0.55  # most orders end well, as on a healthy marketplace
    moments = ([o.created_at for o in orders] + [o.state_changed_at for o in orders]
               + [e.at for e in rows(svc, demo.id, "order_event")]
               + [t.created_at for t in rows(svc, demo.id, "ledger_transaction")]
               + [r.created_at for r in rows(svc, demo.id, "service_request")]
               + [q.created_at for q in rows(svc, demo.id, "quote")] + [u.created_at for u in users])
    assert max(moments) <= now and min(moments) >= now - timedelta(days=4 * 31 + 62)
    requests = {r.id: r for r in rows(svc, demo.id, "service_request")}
    assert all(r.expires_at > now for r in requests.values() if r.status == "open")  # not left for the timer
    first_quote = {}
    for q in rows(svc, demo.id, "quote", "created_at"):
        first_quote.setdefault(q.request_id, q.created_at)
        assert q.created_at > requests[q.request_id].created_at
    signups = {u.id: u.created_at for u in users}
    assert all(signups[r.client_id] < r.created_at for r in requests.values())
    assert all(signups[o.client_id] < o.created_at and signups[o.pro_id] < o.created_at for o in orders)
    assert all(r.status == "closed" for r in requests.values() if r.id in {o.request_id for o in orders})
    # the other marketplace is untouched
    assert rows(svc, acme.id, "service_order") == [] and rows(svc, acme.id, "user_account") == []


def test_every_ledger_transaction_balances_and_no_escrow_goes_negative(made):
    svc, demo = made["svc"], made["demo"]
    orders = {o.id: o for o in rows(svc, demo.id, "service_order")}
    txs = {t.id: t for t in rows(svc, demo.id, "ledger_transaction")}
    accounts = {a.id: a for a in rows(svc, demo.id, "ledger_account")}
    entries = rows(svc, demo.id, "ledger_entry")
    sums: dict[tuple[int, str], int] = defaultdict(int)
    for e in entries:
        sums[(e.transaction_id, e.currency)] += e.amount_minor
    assert sums and all(total == 0 for total in sums.values())
    with svc.db.tenant_session(demo.id) as session:
        assert Ledger().check_invariants(session) == []

    balance: dict[int, int] = defaultdict(int)
    by_tx = defaultdict(list)
    for e in entries:
        by_tx[e.transaction_id].append(e)
    for tx in sorted(txs.values(), key=lambda t: (t.created_at, t.id)):  # in the order they happened
        assert tx.idempotency_key.startswith(f"o{tx.order_id}-")
        for e in by_tx[tx.id]:
            account = accounts[e.account_id]
            balance[account.id] += e.amount_minor
            if account.kind == "escrow":
                assert account.code == f"escrow:order:{tx.order_id}" and balance[account.id] >= 0, tx.idempotency_key

    escrow_of = {a.party_id: balance[a.id] for a in accounts.values() if a.kind == "escrow"}
    refunded = defaultdict(int)
    for tx in txs.values():
        if tx.kind == "refund":
            refunded[tx.order_id] += sum(e.amount_minor for e in by_tx[tx.id] if accounts[e.account_id].kind == "refunds")
    kinds = defaultdict(list)
    for tx in txs.values():
        kinds[tx.order_id].append(tx.kind)
    for order in orders.values():
        held = escrow_of.get(order.id, 0)
        if order.state in TERMINAL:
            assert held == 0, order.id
        elif order.state in ESCROW:
            assert "hold" in kinds[order.id] and held == order.price_minor - refunded[order.id] > 0
        else:
            assert order.id not in escrow_of and not kinds[order.id]
        hold = [tx for tx in txs.values() if tx.order_id == order.id and tx.kind == "hold"]
        if hold:
            assert sum(e.amount_minor for e in by_tx[hold[0].id] if e.amount_minor > 0) == order.price_minor
        for tx in (t for t in txs.values() if t.order_id == order.id and t.kind == "release"):
            fee = sum(e.amount_minor for e in by_tx[tx.id] if accounts[e.account_id].kind == "platform_fees")
            assert fee == order.platform_fee_minor and tx.memo == f"fee {demo.platform_fee_bps / 100:g}%"
    assert {"hold", "release", "refund", "payout"} <= {t.kind for t in txs.values()}


def test_every_event_chain_is_a_path_through_the_transitions(made):
    svc, demo, now = made["svc"], made["demo"], made["now"]
    orders = {o.id: o for o in rows(svc, demo.id, "service_order")}
    chains = defaultdict(list)
    for e in rows(svc, demo.id, "order_event", "order_id", "at", "id"):
        chains[e.order_id].append(e)
    assert set(chains) == set(orders)
    admin_ids = {u.id for u in rows(svc, demo.id, "user_account") if u.role == "admin"}
    seen_actions = set()
    for order_id, chain in chains.items():
        order = orders[order_id]
        opening = chain[0]
        assert (opening.from_state, opening.to_state) == ("", OPENINGS[opening.action])
        assert (opening.actor_id, opening.actor_role, opening.at) == (order.client_id, "client", order.created_at)
        state, changed = opening.to_state, opening.at
        for e in chain[1:]:
            assert e.at >= changed and e.from_state == state, (order_id, e.action)
            if e.action in ("refund", process.REMIND_AUTO_COMPLETE):  # audit rows: the state stays
                assert e.to_state == state
                assert (e.actor_role, state in ESCROW) == ("admin", True) if e.action == "refund" else (
                    (e.actor_id, e.actor_role, state) == (None, "system", "delivered"))
                continue
            party = Party(e.actor_role)
            transition = process.find(e.action, e.from_state, party)
            assert transition is not None and transition.target == e.to_state, (order_id, e.action, e.from_state)
            assert e.actor_id == {Party.CLIENT: order.client_id, Party.PROFESSIONAL: order.pro_id,
                                  Party.SYSTEM: None}.get(party, e.actor_id)
            assert party != Party.ADMIN or e.actor_id in admin_ids
            assert not transition.needs_note or e.note
            seen_actions.add(e.action)
            state, changed = e.to_state, e.at
        assert order.state == state and order.state_changed_at == changed  # the order is where its events led
        # the timers: nothing waits longer than they let it (give or take their 5-minute beat)
        age = now - order.state_changed_at
        if order.state == "accepted":
            assert age < process.UNPAID_EXPIRY + timedelta(minutes=5)
        if order.state == "delivered":
            assert age < process.AUTO_COMPLETE_AFTER + timedelta(minutes=5)
            reminded = any(e.action == process.REMIND_AUTO_COMPLETE for e in chain)
            late = age >= process.AUTO_COMPLETE_AFTER - process.AUTO_COMPLETE_REMINDER + timedelta(minutes=5)
            assert reminded or not late
    assert {"accept", "pay", "start", "deliver", "complete", "cancel", "expire", "dispute"} <= seen_actions
    assert seen_actions & {"resolve_refund", "resolve_release", "resolve_split"}


def test_payments_payouts_and_the_demo_gateway_agree_with_the_ledger(made):
    svc, demo = made["svc"], made["demo"]
    orders = {o.id: o for o in rows(svc, demo.id, "service_order")}
    accounts = {a.id: a for a in rows(svc, demo.id, "ledger_account")}
    txs = rows(svc, demo.id, "ledger_transaction")
    entries = defaultdict(list)
    for e in rows(svc, demo.id, "ledger_entry"):
        entries[e.transaction_id].append(e)
    charges = {c.order_id: c for c in rows(svc, demo.id, "demo_charge")}
    payouts = {p.order_id: p for p in rows(svc, demo.id, "payout")}
    steps = defaultdict(list)
    for s in rows(svc, demo.id, "payment_step"):
        steps[s.order_id].append(s)
    for payment in rows(svc, demo.id, "payment"):
        order, charge = orders[payment.order_id], charges[payment.order_id]
        assert (payment.amount_minor, payment.currency, payment.provider) == (order.price_minor, order.currency, "demo")
        mine = [t for t in txs if t.order_id == order.id]
        refunded = sum(e.amount_minor for t in mine if t.kind == "refund" for e in entries[t.id] if e.amount_minor > 0)
        assert payment.refunded_minor == refunded == charge.refunded_minor
        assert (charge.session_id, charge.reference, charge.amount_minor) == (
            payment.session_id, payment.reference, payment.amount_minor)
        kinds = {t.kind for t in mine}
        refunds = [t for t in mine if t.kind == "refund"]
        expected = ("checkout" if "hold" not in kinds else
                    "captured" if "release" in kinds or (refunds and not (
                        len(refunds) == 1 and refunded == payment.amount_minor)) else
                    "voided" if refunds else "authorized")  # a full refund of an untouched hold voids it
        assert payment.status == expected, order.id
        assert charge.status == {"checkout": "open", "authorized": "held", "voided": "voided"}.get(
            payment.status, "refunded" if charge.refunded_minor == charge.captured_minor else "captured")
        share = sum(e.amount_minor for t in mine if t.kind == "release" for e in entries[t.id]
                    if accounts[e.account_id].kind == "pro_payable")
        if order.id in payouts:
            assert payouts[order.id].amount_minor == share == payment.released_minor == charge.released_minor > 0
            assert "payout" in kinds and f"t{demo.id}-o{order.id}-payout" in charge.applied_keys
        else:
            assert payment.released_minor == 0 and "payout" not in kinds
        # a write-ahead step, done, for every step that gave money back (a split's is the resolution's name)
        assert all(s.status == "done" for s in steps[order.id])
        assert sorted(s.step for s in steps[order.id]) == sorted(
            t.idempotency_key.split("-", 1)[1].removesuffix("-refund") for t in refunds)
    assert payouts and charges


def test_the_services_carry_on_with_generated_orders(made):
    """The app's own timers and an admin's resolution work on generated orders: the demo gateway finds its charges,
    the ledger stays balanced."""
    svc, demo, now = made["svc"], made["demo"], made["now"]
    waiting = {o.id: o.state for o in rows(svc, demo.id, "service_order") if o.state in ("accepted", "delivered")}
    disputed = [o.id for o in rows(svc, demo.id, "service_order") if o.state == "disputed"]
    done = svc.orders.run_timers(demo, now + timedelta(days=8))
    assert done["expire"] == sum(s == "accepted" for s in waiting.values())
    assert done["auto_complete"] == sum(s == "delivered" for s in waiting.values())
    admin_id = next(u.id for u in rows(svc, demo.id, "user_account") if u.role == "admin")
    admin = Caller(role=Role.ADMIN, id=admin_id, tenant_id=demo.id)
    for order_id in disputed[:2]:
        assert svc.orders.apply(demo, admin, order_id, "resolve_refund", note="Refund agreed").state == "resolved"
    after = {o.id: o.state for o in rows(svc, demo.id, "service_order")}
    assert all(after[i] == {"accepted": "expired", "delivered": "completed"}[s] for i, s in waiting.items())
    with svc.db.tenant_session(demo.id) as session:
        assert Ledger().check_invariants(session) == []


def test_the_same_seed_gives_the_same_history_and_people_can_be_reused(made):
    svc, demo, acme, now, stats = made["svc"], made["demo"], made["acme"], made["now"], made["stats"]
    again = history.generate(svc.db, acme.id, orders=ORDERS, months=4, seed=11, now=now)
    assert {k: v for k, v in vars(again).items() if k not in ("tenant_id", "seconds")} == {
        k: v for k, v in vars(stats).items() if k not in ("tenant_id", "seconds")}
    client_ids = [u.id for u in rows(svc, demo.id, "user_account") if u.role == "client"][:3]
    pro_ids = [u.id for u in rows(svc, demo.id, "user_account") if u.role == "professional"][:2]
    before = {o.id for o in rows(svc, demo.id, "service_order")}
    more = history.generate(svc.db, demo.id, orders=40, months=1, seed=3, now=now, clients=client_ids, pros=pro_ids)
    assert (more.orders, more.clients_created, more.pros_created) == (40, 0, 0)
    new = [o for o in rows(svc, demo.id, "service_order") if o.id not in before]
    assert len(new) == 40 and {o.client_id for o in new} <= set(client_ids) and {o.pro_id for o in new} <= set(pro_ids)


def test_bulk_through_the_owner_is_copied_and_the_same(made):
    svc, acme, now, stats = made["svc"], made["acme"], made["now"], made["stats"]
    if not svc.db.is_postgres:
        pytest.skip("COPY is PostgreSQL's")
    owner = sa.create_engine(svc.settings.owner_database_url)
    try:
        copied = history.generate(svc.db, acme.id, orders=ORDERS, months=4, seed=11, now=now, bulk_engine=owner,
                                  batch=100)
    finally:
        owner.dispose()
    assert copied.bulk == "copy" and stats.bulk == "insert"
    assert {k: v for k, v in vars(copied).items() if k not in ("tenant_id", "seconds", "bulk")} == {
        k: v for k, v in vars(stats).items() if k not in ("tenant_id", "seconds", "bulk")}
    assert rows(svc, acme.id, "service_request")[0].photo_keys == []  # JSON went in as JSON
    with svc.db.tenant_session(acme.id) as session:
        assert Ledger().check_invariants(session) == []


def test_it_refuses_outside_development_and_test(tmp_path):
    base = Settings(_env_file=None, environment="test", data_dir=tmp_path / "data", redis_url=None)
    values = {name: getattr(base, name) for name in Settings.model_fields}
    settings = Settings.model_construct(**values | {"environment": "production",
                                                    "secret_key": SecretStr(secrets.token_urlsafe(32))})
    db = Database(settings)
    try:
        with pytest.raises(history.HistoryRefused, match="ENVIRONMENT=production.*nothing was written"):
            history.generate(db, 1, orders=10, months=1, seed=1)
    finally:
        db.dispose()
    assert not settings.sqlite_path.exists()  # not even a connection was opened
