"""Ledger postings per second on a throwaway PostgreSQL database: escrow cycles (hold -> partial refund -> release),
each posting in its own tenant transaction that first locks the order row, written by 1 writer (baseline), by 8
writers on their own orders, and by 8 writers racing for the very same postings on 4 orders; the ledger's invariants
are read back and checked afterwards."""

from __future__ import annotations

import math
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

from bench.login import throwaway_database
from bench.orders import BrokenInvariant
from bench.stats import Table, percentile, run_in_threads

HEADERS = ["configuration", "writers", "postings", "new transactions", "postings/s", "p50 ms", "p95 ms", "p99 ms",
           "peak RSS MiB", "throughput ratio to baseline"]
WRITERS = 8
POSTINGS = 2000  # per configuration (rounded up to whole cycles)
BUDGET_S = 60.0  # per configuration; checked between cycles, so no cycle is left half-done
CONTENDED_ORDERS = 4
STEPS = ("hold", "refund", "release")


@dataclass(frozen=True)
class Posting:
    order_id: int
    kind: str
    key: str
    lines: tuple  # of ledger.Line


@dataclass
class Run:
    name: str
    writers: int
    latencies: list[float] = field(default_factory=list)
    won: int = 0  # postings that wrote a new ledger transaction (the rest got the earlier one back)
    attempted: dict[str, Posting] = field(default_factory=dict)  # distinct keys tried, by key
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time (all threads) during the run
    peak_rss: float = 0.0
    stopped_by_time: bool = False


class Workload:
    """One tenant, one client, one professional, and the orders the postings refer to (minimal rows via the ORM)."""

    def __init__(self, svc):
        from backend.identity import Role
        from backend.accounts.models import User
        from backend.payments.ledger import Ledger
        from backend.tenancy.models import Tenant

        self.svc = svc
        self.ledger = Ledger()
        with svc.db.platform_session() as session:
            session.add(Tenant(slug="bench-ledger", name="Bench Ledger"))
        self.tenant = svc.tenants.by_slug("bench-ledger")
        with svc.db.tenant_session(self.tenant.id) as s:
            client = User(email="client@bench.example", password_hash="-", role=Role.CLIENT)
            pro = User(email="pro@bench.example", password_hash="-", role=Role.PROFESSIONAL)
            s.add_all([client, pro])
            s.flush()
            self.client_id, self.pro_id = client.id, pro.id

    def orders(self, n: int, label: str) -> list[int]:
        """n paid orders (the state the escrow cycle starts from); their ids."""
        from backend.orders.models import Order, OrderState

        with self.svc.db.tenant_session(self.tenant.id) as s:
            rows = [Order(client_id=self.client_id, pro_id=self.pro_id, title=f"{label} #{i}",
                          price_minor=_price(i, 0), currency=self.tenant.currency, platform_fee_minor=0,
                          state=OrderState.PAID) for i in range(n)]
            s.add_all(rows)
            s.flush()
            return [o.id for o in rows]

    def cycle(self, prefix: str, order_id: int, cycle: int) -> list[Posting]:
        """The three postings of one escrow cycle: hold P, refund R, release P - R (fee F to the platform)."""
        from backend.money import fee_for
        from backend.payments import ledger as L
        from backend.payments.ledger import Line

        held = _price(order_id, cycle)
        refunded = held * (1 + (order_id + cycle) % 30) // 100
        remaining = held - refunded
        fee = fee_for(remaining, self.tenant.platform_fee_bps)
        key = f"{prefix}-o{order_id}-c{cycle}"
        return [
            Posting(order_id, "hold", f"{key}-hold",
                    (Line(L.client_funding(self.client_id), -held), Line(L.escrow(order_id), held))),
            Posting(order_id, "refund", f"{key}-refund",
                    (Line(L.escrow(order_id), -refunded), Line(L.refunds(self.client_id), refunded))),
            Posting(order_id, "release", f"{key}-release",
                    (Line(L.escrow(order_id), -remaining), Line(L.pro_payable(self.pro_id), remaining - fee),
                     Line(L.platform_fees(), fee))),
        ]

    def post(self, p: Posting, memo: str) -> bool:
        """One posting in its own tenant transaction, after locking the order row as the payment service does.
        True when this call wrote the transaction, False when the key was already posted (the earlier one came
        back: its memo is another writer's)."""
        from backend.orders.models import Order

        with self.svc.db.tenant_session(self.tenant.id) as s:
            s.exec(select(Order).where(Order.id == p.order_id).with_for_update()).one()
            tx = self.ledger.post(s, kind=p.kind, currency=self.tenant.currency, lines=list(p.lines),
                                  idempotency_key=p.key, order_id=p.order_id, memo=memo)
            return tx.memo == memo

    def run(self, name: str, plans: list[list[list[Posting]]], budget_s: float = BUDGET_S) -> Run:
        """One writer thread per plan (a list of cycles), all released at once; each stops between cycles once
        budget_s is spent. Latency = one posting's whole transaction: lock, post, commit."""
        run = Run(name, len(plans))
        lock = threading.Lock()
        started = {}
        barrier = threading.Barrier(len(plans), action=lambda: started.setdefault("t", time.perf_counter()))

        def writer(w: int, plan: list[list[Posting]]) -> None:
            memo = f"{name} writer {w}"
            mine, won, tried = [], 0, {}
            try:
                barrier.wait()
                deadline = started["t"] + budget_s
                for cycle in plan:
                    if time.perf_counter() > deadline:
                        run.stopped_by_time = True
                        break
                    for p in cycle:
                        t0 = time.perf_counter()
                        won += self.post(p, memo)
                        mine.append(time.perf_counter() - t0)
                        tried[p.key] = p
            except Exception as exc:  # noqa: BLE001 - reported as a failed check, never swallowed
                run.errors.append(f"writer {w}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
            finally:
                with lock:
                    run.latencies += mine
                    run.won += won
                    run.attempted.update(tried)

        run.cpu_s, run.peak_rss = run_in_threads(writer, plans, f"ledger-{name}")
        run.wall_s = time.perf_counter() - started.get("t", time.perf_counter())
        return run


def _price(order_id: int, cycle: int) -> int:
    """Varied amounts in minor units (100.00 .. 999.99), so the fee rounding varies too."""
    return 10_000 + (order_id * 7919 + cycle * 104_729) % 90_000


def _share(items: list, writers: int) -> list[list]:
    return [items[w::writers] for w in range(writers)]


def ledger_postings(writers: int = WRITERS, postings: int = POSTINGS, budget_s: float = BUDGET_S) -> Table:
    from backend.bootstrap import build_services
    from backend.config import Settings

    from backend.jobqueue import InlineJobQueue

    table = Table(f"Ledger postings with {writers} concurrent writers (PostgreSQL, escrow cycles, order row locked)",
                  HEADERS)
    cycles = math.ceil(postings / len(STEPS))
    rounds = math.ceil(postings / (writers * CONTENDED_ORDERS * len(STEPS)))  # contended: cycles per order
    with throwaway_database() as url, tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        settings = Settings(_env_file=None, database_url=url, data_dir=Path(tmp), redis_url=None)
        svc = build_services(settings, jobs=InlineJobQueue(raise_errors=True))
        try:
            work = Workload(svc)
            # Warm-up, not counted: one cycle per writer at once — all racing to create the shared accounts
            # (client funding, refunds, pro payable, platform fees), which the ledger must survive — and
            # opening the pool's connections.
            warm_ids = work.orders(writers, "warm-up")
            warm = [work.run("warm-up", [[work.cycle("warm", o, 0)] for o in warm_ids])]

            base_ids = work.orders(cycles, "baseline")
            baseline = work.run("1 writer (baseline)", [[work.cycle("base", o, 0) for o in base_ids]], budget_s)

            spread_ids = work.orders(cycles, "spread")
            spread = work.run(f"{writers} writers, own orders",
                              _share([work.cycle("spread", o, 0) for o in spread_ids], writers), budget_s)

            hot_ids = work.orders(CONTENDED_ORDERS, "contended")
            # Every writer tries every posting of every cycle with the same keys, each starting at another order.
            contended = work.run(f"{writers} writers, same {CONTENDED_ORDERS} orders, same keys", [
                [work.cycle("hot", hot_ids[(j + w) % CONTENDED_ORDERS], c)
                 for c in range(rounds) for j in range(CONTENDED_ORDERS)]
                for w in range(writers)], budget_s)

            runs = {"warm": warm, "baseline": baseline, "spread": spread, "contended": contended}
            checks = _invariants(work, runs, {"base": base_ids, "spread": spread_ids, "hot": hot_ids})
        finally:
            svc.close()

    base_rate = len(baseline.latencies) / baseline.wall_s
    for run in (baseline, spread, contended):
        ms = [s * 1000 for s in run.latencies] or [0.0]
        rate = len(run.latencies) / run.wall_s if run.wall_s else 0.0
        table.add(run.name, run.writers, len(run.latencies), run.won, rate, percentile(ms, 50), percentile(ms, 95),
                  percentile(ms, 99), run.peak_rss,
                  "1.00× (baseline)" if run is baseline else f"{rate / base_rate:.2f}×")
    distinct = len(contended.attempted)
    table.notes += [
        "escrow cycle on one order = 3 balanced ledger transactions: hold (client funding −P, escrow +P), partial "
        "refund (escrow −R, refunds +R, R = 1-30 % of P), release (escrow −(P−R), pro payable +(P−R−F), platform "
        "fees +F, F = the tenant's 10 % fee); each posting is its own `tenant_session` transaction that first "
        "locks the order row (`SELECT … FOR UPDATE`) and then calls `Ledger.post` with its own idempotency key",
        f"postings/s = postings ÷ wall time of the configuration (all writers released together by a barrier); "
        f"latency = one posting's whole transaction (lock wait + post + commit); bound: {cycles * len(STEPS):,} "
        f"postings or {budget_s:.0f} s per configuration"
        + (" (time bound reached)" if any(r.stopped_by_time for r in (baseline, spread, contended)) else ""),
        f"own orders: {cycles:,} fresh orders dealt round-robin to the writers, one cycle each, so writers share "
        "no order row (only the client, professional and platform accounts, which are inserted into, not locked)",
        f"same keys: {CONTENDED_ORDERS} orders × {rounds} cycles; each of the {writers} writers tries all "
        f"{CONTENDED_ORDERS * rounds * len(STEPS)} postings with the same idempotency keys, starting at a "
        f"different order: {len(contended.latencies):,} tries for {distinct} distinct keys, {contended.won} wrote a "
        f"transaction, {len(contended.latencies) - contended.won:,} got the earlier one back; its postings/s counts "
        f"tries ({contended.won / contended.wall_s if contended.wall_s else 0:.1f} new transactions/s)",
        "CPU of this Python process per posting (all threads; one GIL, so at most ~1 CPU runs Python): "
        + ", ".join(f"{r.name} {r.cpu_s / max(len(r.latencies), 1) * 1000:.1f} ms ({r.cpu_s / r.wall_s:.0%} of "
                    "wall time)" for r in (baseline, spread, contended) if r.wall_s)
        + "; PostgreSQL runs on the same machine",
        f"one tenant, one client, one professional; orders inserted directly as minimal `paid` rows; warm-up not "
        f"counted: one cycle per writer at once, racing to create the shared ledger accounts (insert-if-absent) "
        f"and opening the pool's connections; {writers} Python threads share the engine's pool (pool_size=10, max_overflow=20); "
        "peak RSS = this process during the configuration (the PostgreSQL backends not counted)",
        *[f"{'✓' if ok else '✗ BROKEN:'} {what}" for ok, what in checks],
    ]
    failures = [what for ok, what in checks if not ok]
    if failures:
        raise BrokenInvariant(table, failures)
    return table


def _invariants(work: Workload, runs: dict, order_ids: dict[str, list[int]]) -> list[tuple[bool, str]]:
    """What the writers must have left behind, read back from the ledger tables."""
    from backend.payments import ledger as L
    from backend.payments.models import LedgerAccount, LedgerEntry, LedgerTransaction

    svc, tenant, currency = work.svc, work.tenant, work.tenant.currency
    all_runs = [*runs["warm"], runs["baseline"], runs["spread"], runs["contended"]]
    checks = []
    errors = [e for r in all_runs for e in r.errors]
    checks.append((not errors, f"no posting failed ({len(errors)} writer errors)"
                               + (f": {errors[0]}" if errors else "")))

    with svc.db.tenant_session(tenant.id) as s:
        problems = work.ledger.check_invariants(s)
        total, entries = s.exec(select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_minor), 0),
                                       sa.func.count(LedgerEntry.id))).one()
        # Escrow entries per order, in posting order (ids are assigned under the order lock, so per order the
        # id order is the commit order).
        escrow_rows = s.exec(
            select(LedgerTransaction.order_id, LedgerTransaction.id, LedgerTransaction.kind, LedgerEntry.amount_minor)
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.kind == "escrow")
            .order_by(LedgerTransaction.order_id, LedgerTransaction.id)).all()
        keys = s.exec(select(LedgerTransaction.idempotency_key, sa.func.count(LedgerTransaction.id))
                      .group_by(LedgerTransaction.idempotency_key)).all()
        balances = {name: work.ledger.balance(s, spec, currency) for name, spec in (
            ("client funding", L.client_funding(work.client_id)), ("refunds", L.refunds(work.client_id)),
            ("pro payable", L.pro_payable(work.pro_id)), ("platform fees", L.platform_fees()))}

    checks.append((not problems, "Ledger.check_invariants: every transaction sums to zero per currency, no escrow "
                                 "account negative" + (f" — {len(problems)} problems: {problems[:3]}" if problems
                                                       else "")))
    checks.append((total == 0, f"sum of all {entries:,} ledger entries is {total} (must be 0)"))

    per_order, dipped = {}, []
    for order_id, _tx, kind, amount in escrow_rows:
        o = per_order.setdefault(order_id, {"held": 0, "refunded": 0, "released": 0, "balance": 0})
        o["balance"] += amount
        o[{"hold": "held", "refund": "refunded", "release": "released"}[kind]] += abs(amount)
        if o["balance"] < 0:
            dipped.append(order_id)
    nonzero = [o for o, v in per_order.items() if v["balance"] != 0]
    over = [o for o, v in per_order.items() if v["released"] + v["refunded"] > v["held"]]
    checks.append((not nonzero, f"escrow balance is 0 after the cycles on all {len(per_order):,} orders posted to"
                                + (f" — not on orders {nonzero[:5]}" if nonzero else "")))
    checks.append((not over and not dipped,
                   "released + refunded never exceeds held per order (running escrow balance, in posting order, "
                   "never below 0)" + (f" — orders {sorted(set(over + dipped))[:5]}" if over or dipped else "")))

    per_key = dict(keys)
    dupes = [k for k, n in per_key.items() if n != 1]
    attempted = {k: p for r in all_runs for k, p in r.attempted.items()}
    missing = [k for k in attempted if k not in per_key]
    stray = [k for k in per_key if k not in attempted]
    checks.append((not dupes and not missing and not stray,
                   f"one ledger transaction per idempotency key: {sum(per_key.values()):,} transactions for "
                   f"{len(attempted):,} distinct keys tried" + (f" — duplicated {dupes[:3]}" if dupes else "")
                   + (f" — missing {missing[:3]}" if missing else "")
                   + (f" — unexpected {stray[:3]}" if stray else "")))

    hot = runs["contended"]
    hot_tx = sum(n for k, n in per_key.items() if k.startswith("hot-"))
    every_try = hot.stopped_by_time or len(hot.latencies) == hot.writers * len(hot.attempted)
    checks.append((hot_tx == len(hot.attempted) == hot.won and every_try,
                   f"same-keys configuration: {hot_tx} transactions == {len(hot.attempted)} distinct keys == "
                   f"{hot.won} tries that wrote one; the other {len(hot.latencies) - hot.won:,} of "
                   f"{len(hot.latencies):,} tries ({hot.writers} per key) got the earlier transaction back"))
    for prefix, run in (("base", runs["baseline"]), ("spread", runs["spread"])):
        n = sum(1 for k in per_key if k.startswith(f"{prefix}-"))
        checks.append((n == len(run.latencies) == run.won,
                       f"{run.name}: {n:,} transactions == {len(run.latencies):,} postings, all new"))

    # Every account's balance equals what the distinct postings tried add up to.
    expected = {"client funding": 0, "refunds": 0, "pro payable": 0, "platform fees": 0}
    kinds = {"client_funding": "client funding", "refunds": "refunds", "pro_payable": "pro payable",
             "platform_fees": "platform fees"}
    for p in attempted.values():
        for line in p.lines:
            if line.account[1] in kinds:
                expected[kinds[line.account[1]]] += line.amount_minor
    checks.append((balances == expected,
                   "account balances equal the sum of the distinct postings: "
                   + ", ".join(f"{k} {v:,}" + ("" if v == expected[k] else f" (expected {expected[k]:,})")
                               for k, v in balances.items())))
    return checks
