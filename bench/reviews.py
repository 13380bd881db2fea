"""Ratings & Reviews on a throwaway PostgreSQL database, through the review service:

- a professional with 10,000 published reviews: the profile's summary read (the stored aggregate) against the same
  summary counted from the review rows in the same run (`recompute`, which stores nothing);
- publication throughput: both parties submit on completed orders (the second submit publishes both reviews and
  recounts both people's aggregates), 1 writer (baseline) against 8 concurrent writers; afterwards every stored
  aggregate must equal a recomputation.

Setup writes its rows in bulk through the service's own tables (orders as completed rows with their `complete`
event and a held-then-released ledger posting, so that they are reviewable; the 10,000 reviews as published rows),
then stores the aggregate with the service's own `aggregates.refresh`."""

from __future__ import annotations

import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

from backend.accounts.models import User
from backend.bootstrap import build_services
from backend.config import Settings
from backend.db import utcnow
from backend.identity import Caller, Role
from backend.jobqueue import InlineJobQueue
from backend.orders.models import Order, OrderEvent, OrderState
from backend.payments import ledger as L
from backend.payments.ledger import Ledger, Line
from backend.reviews import aggregates
from backend.reviews.models import RatingAggregate, Review, ReviewWindow
from backend.reviews.rules import ReviewStatus
from backend.tenancy.models import Tenant
from bench.login import HEADERS, _once, _row, throwaway_database
from bench.orders import BrokenInvariant
from bench.stats import Table, percentile, run_in_threads, self_peak_rss_mib

REVIEWS = 10_000  # published reviews of the one professional whose profile is read
REVIEWERS = 200  # clients who wrote them (50 each)
READS = 500  # summary reads, and as many recomputations, interleaved
SUMMARY_GOAL_MS = 5.0  # p95 of the profile's summary read
WRITERS = 8
PUBLICATIONS = 400  # orders per write configuration (each publishes 2 reviews)
BUDGET_S = 25.0  # per write configuration; checked between orders, so no order is left half-reviewed
CHUNK = 2000  # rows per bulk insert
PUBLISH_HEADERS = ["configuration", "writers", "orders", "reviews published", "reviews/s", "1st submit p95 ms",
                   "publication p50 ms", "publication p95 ms", "publication p99 ms", "peak RSS MiB",
                   "throughput ratio to baseline"]
CLIENT_REVIEW = {"stars": "5", "text": "Came on time, fixed the tap, left the kitchen clean.", "quality": "5",
                 "communication": "4", "punctuality": "5", "value": "4"}
PRO_REVIEW = {"stars": "5", "text": "Clear brief, easy access to the flat, paid promptly."}


class Bench:
    """One tenant (demo gateway, dev outbox), its people and completed orders, written in bulk."""

    def __init__(self, svc):
        self.svc = svc
        self.ledger = Ledger()
        with svc.db.platform_session() as session:
            session.add(Tenant(slug="bench-reviews", name="Bench Reviews", payment_provider="demo"))
        self.tenant = svc.tenants.by_slug("bench-reviews")
        self._people = 0

    def people(self, role: Role, n: int) -> list[Caller]:
        """n users with this role (no password: nobody logs in), as the callers the service takes."""
        rows = [{"tenant_id": self.tenant.id, "email": f"{role}{self._people + i}@bench.example", "password_hash": "-",
                 "role": role} for i in range(n)]
        self._people += n
        with self.svc.db.tenant_session(self.tenant.id) as s:
            ids = s.execute(sa.insert(User).returning(User.id), rows).scalars().all()
        return [Caller(role=role, id=i, tenant_id=self.tenant.id) for i in ids]

    def completed_orders(self, pairs: list[tuple[int, int]], label: str, *, paid: bool) -> list[int]:
        """One completed order per (client id, pro id), ended by the client's `complete` just now; paid=True also
        posts the escrow hold and the release to the professional, which is what makes an order reviewable."""
        t = self.tenant
        now = utcnow()
        ids: list[int] = []
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start:start + CHUNK]
            with self.svc.db.tenant_session(t.id) as s:
                orders = [{"tenant_id": t.id, "client_id": c, "pro_id": p, "title": f"{label} #{start + i}",
                           "price_minor": 10_000 + (start + i) * 37 % 40_000, "currency": t.currency,
                           "platform_fee_minor": 0, "state": OrderState.COMPLETED,
                           "created_at": now - timedelta(days=1), "state_changed_at": now}
                          for i, (c, p) in enumerate(chunk)]
                new = s.execute(sa.insert(Order).returning(Order.id, sort_by_parameter_order=True), orders
                                ).scalars().all()
                s.execute(sa.insert(OrderEvent), [
                    {"tenant_id": t.id, "order_id": o, "action": "complete", "from_state": OrderState.DELIVERED,
                     "to_state": OrderState.COMPLETED, "actor_id": c, "actor_role": Role.CLIENT, "at": now}
                    for o, (c, _p) in zip(new, chunk)])
                if paid:
                    for o, (c, p), row in zip(new, chunk, orders):
                        price = row["price_minor"]
                        self.ledger.post(s, kind="hold", currency=t.currency, order_id=o, idempotency_key=f"hold-{o}",
                                         lines=[Line(L.client_funding(c), -price), Line(L.escrow(o), price)])
                        self.ledger.post(s, kind="release", currency=t.currency, order_id=o,
                                         idempotency_key=f"release-{o}",
                                         lines=[Line(L.escrow(o), -price), Line(L.pro_payable(p), price)])
            ids += new
        return ids

    def published_reviews(self, pro: Caller, clients: list[Caller], n: int) -> None:
        """n published client reviews of `pro` (varied stars and sub-ratings), then its stored aggregate."""
        t = self.tenant
        order_ids = self.completed_orders([(clients[i % len(clients)].id, pro.id) for i in range(n)], "reviewed",
                                          paid=False)
        now = utcnow()
        for start in range(0, n, CHUNK):
            rows = []
            for i in range(start, min(start + CHUNK, n)):
                at = now - timedelta(minutes=n - i)
                stars = (5, 5, 5, 4, 5, 4, 3, 5, 2, 5, 4, 1)[i % 12]
                rows.append({"tenant_id": t.id, "order_id": order_ids[i], "author_id": clients[i % len(clients)].id,
                             "subject_id": pro.id, "author_role": "client", "stars": stars,
                             "text": f"Review {i}: " + "solid work, would book again. " * (1 + i % 5),
                             "quality": stars, "communication": max(1, stars - i % 2), "punctuality": 5 - i % 3,
                             "value": None if i % 7 == 0 else max(1, stars - 1), "status": ReviewStatus.PUBLISHED,
                             "submitted_at": at, "published_at": at,
                             "reply": "Thanks!" if i % 10 == 0 else "", "hidden": i % 97 == 0,
                             "hidden_reason": "off topic" if i % 97 == 0 else ""})
            with self.svc.db.tenant_session(t.id) as s:
                s.execute(sa.insert(Review), rows)
        with self.svc.db.tenant_session(t.id) as s:
            aggregates.refresh(s, [pro.id])


@dataclass
class Run:
    name: str
    writers: int
    first: list[float] = field(default_factory=list)  # the first party's submit (stays blind)
    publish: list[float] = field(default_factory=list)  # the second party's submit (publishes both)
    orders: list[int] = field(default_factory=list)  # orders fully reviewed
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time (all threads) during the run
    peak_rss: float = 0.0
    stopped_by_time: bool = False


def publish_run(bench: Bench, name: str, plans: list[list[tuple[int, Caller, Caller]]],
                budget_s: float = BUDGET_S) -> Run:
    """One writer thread per plan of (order, client, pro), all released at once by a barrier: per order the client
    submits, then the professional, whose submit publishes both. Each stops between orders once budget_s is spent."""
    svc, tenant = bench.svc, bench.tenant
    run = Run(name, len(plans))
    lock = threading.Lock()
    started = {}
    barrier = threading.Barrier(len(plans), action=lambda: started.setdefault("t", time.perf_counter()))

    def writer(w: int, plan: list[tuple[int, Caller, Caller]]) -> None:
        first, publish, done = [], [], []
        try:
            barrier.wait()
            deadline = started["t"] + budget_s
            for order_id, client, pro in plan:
                if time.perf_counter() > deadline:
                    run.stopped_by_time = True
                    break
                first.append(_once(svc.reviews.submit, tenant, client, order_id, CLIENT_REVIEW))
                publish.append(_once(svc.reviews.submit, tenant, pro, order_id, PRO_REVIEW))
                done.append(order_id)
        except Exception as exc:  # noqa: BLE001 - reported as a failed check, never swallowed
            run.errors.append(f"writer {w}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
        finally:
            with lock:
                run.first += first
                run.publish += publish
                run.orders += done

    run.cpu_s, run.peak_rss = run_in_threads(writer, plans, "reviews")
    run.wall_s = time.perf_counter() - started.get("t", time.perf_counter())
    return run


def _share(items: list, writers: int) -> list[list]:
    return [items[w::writers] for w in range(writers)]


def reviews_benchmark(reviews: int = REVIEWS, reads: int = READS, writers: int = WRITERS,
                      publications: int = PUBLICATIONS, budget_s: float = BUDGET_S) -> list[Table]:
    read_t = Table(f"Profile rating summary of a professional with {reviews:,} reviews (PostgreSQL)", HEADERS)
    write_t = Table(f"Review publication with {writers} concurrent writers (PostgreSQL, inline jobs)",
                    PUBLISH_HEADERS)
    with throwaway_database() as url, tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        # development: the dev outbox takes the notification emails that publication queues and delivers inline
        settings = Settings(_env_file=None, environment="development", database_url=url, data_dir=Path(tmp),
                            redis_url=None)
        svc = build_services(settings, jobs=InlineJobQueue(raise_errors=True))
        try:
            bench = Bench(svc)
            tenant = bench.tenant
            setup_t0 = time.perf_counter()
            star = bench.people(Role.PROFESSIONAL, 1)[0]
            bench.published_reviews(star, bench.people(Role.CLIENT, REVIEWERS), reviews)
            setup_s = time.perf_counter() - setup_t0

            # 1. Reads, interleaved so that background load hits the stored read and the recount alike.
            for _ in range(5):  # warm-up: pool, tenant cache, PostgreSQL's buffers; not counted
                svc.reviews.summary(tenant, star.id)
                svc.reviews.recompute(tenant, star.id)
            def floor() -> None:  # the tenant transaction alone, which every read pays
                with svc.db.tenant_session(tenant.id) as session:
                    session.execute(sa.text("SELECT 1"))

            stored, counted, pages, floors = [], [], [], []
            for _ in range(reads):
                floors.append(_once(floor))
                stored.append(_once(svc.reviews.summary, tenant, star.id))
                counted.append(_once(svc.reviews.recompute, tenant, star.id))
                if len(pages) < reads // 5:
                    pages.append(_once(svc.reviews.reviews_of, tenant, star.id))
            same = svc.reviews.summary(tenant, star.id) == svc.reviews.recompute(tenant, star.id)
            read_rss = self_peak_rss_mib()
            shown = svc.reviews.summary(tenant, star.id)

            # 2. Publications: fresh completed (paid, released) orders, one client and one professional per writer
            # so that writers share no aggregate row; then the same with all orders of the 10,000-review pro.
            def plans(name: str, n: int, pros: list[Caller], clients: list[Caller]) -> list[list[tuple]]:
                pairs = [(clients[i % len(clients)], pros[i % len(pros)]) for i in range(n)]
                ids = bench.completed_orders([(c.id, p.id) for c, p in pairs], name, paid=True)
                return _share([(o, c, p) for o, (c, p) in zip(ids, pairs)], len(clients))

            own_pros, own_clients = bench.people(Role.PROFESSIONAL, writers), bench.people(Role.CLIENT, writers)
            publish_run(bench, "warm-up", plans("warm-up", writers, own_pros, own_clients))  # pool; not counted
            baseline = publish_run(bench, "1 writer (baseline)",
                                   plans("baseline", publications, own_pros[:1], own_clients[:1]), budget_s)
            spread = publish_run(bench, f"{writers} writers, own client and professional each",
                                 plans("spread", publications, own_pros, own_clients), budget_s)
            hot = publish_run(bench, f"{writers} writers, all orders of the {reviews:,}-review professional",
                              plans("hot", publications, [star], bench.people(Role.CLIENT, writers)), budget_s)
            runs = (baseline, spread, hot)
            checks = _invariants(bench, runs, setup_reviews=reviews)
        finally:
            svc.close()

    b = _row(read_t, "baseline: reviews.recompute (count from the review rows, store nothing)", counted, read_rss,
             None)
    s = _row(read_t, "reviews.summary (the stored aggregate: what the profile shows)", stored, read_rss, b["p50"])
    _row(read_t, "reviews.reviews_of, page 1 newest (the profile's list)", pages, read_rss, b["p50"])
    f = _row(read_t, "reference: tenant_session + SELECT 1 (the transaction alone)", floors, read_rss, b["p50"])
    verdict = "met" if s["p95"] <= SUMMARY_GOAL_MS else "NOT met"
    read_t.notes += [
        f"target: summary read p95 ≤ {SUMMARY_GOAL_MS:.0f} ms: {verdict} (p95 {s['p95']:.2f} ms, p99 "
        f"{s['p99']:.2f} ms; the recount's p95 is {b['p95'] / s['p95']:.1f}× that; an empty tenant transaction "
        f"alone takes p50 {f['p50']:.2f} / p95 {f['p95']:.2f} ms in the same run)",
        f"{reviews:,} published client reviews by {REVIEWERS} clients (1 in 97 hidden: {shown.count:,} visible, "
        f"average {shown.average_text}, score {shown.score:.2f}), with their completed orders, bulk-inserted in "
        f"{setup_s:.1f} s, then stored once by `aggregates.refresh`; the stored summary equals the recount: "
        f"{'yes' if same else 'NO'}",
        f"{reads} rounds of an empty transaction, a summary read and a recount, interleaved (plus a page read in "
        f"the first {reads // 5} rounds), one sequential "
        "client, each call its own tenant transaction; 5 warm-up rounds not counted; peak RSS is this process",
    ]

    base_rate = len(baseline.publish) * 2 / baseline.wall_s if baseline.wall_s else 0.0
    for run in runs:
        ms = [x * 1000 for x in run.publish] or [0.0]
        rate = len(run.publish) * 2 / run.wall_s if run.wall_s else 0.0
        write_t.add(run.name, run.writers, len(run.orders), 2 * len(run.orders), rate,
                    percentile([x * 1000 for x in run.first] or [0.0], 95), percentile(ms, 50), percentile(ms, 95),
                    percentile(ms, 99), run.peak_rss,
                    "1.00× (baseline)" if run is baseline else f"{rate / base_rate:.2f}×")
    write_t.notes += [
        "per order: the client submits (stays blind: the 1st submit), then the professional, whose submit publishes "
        "both reviews, closes the window and recounts both people's stored aggregates in its transaction "
        "(publication); reviews/s = 2 × orders ÷ wall time of the configuration (writers released together by a "
        "barrier)",
        "each submit also settles an overdue window first, opens the window, and queues and delivers (inline, dev "
        "outbox on disk) the notification emails, plus in-app notes: what a web request does without a job worker",
        f"bound: {publications} orders or {budget_s:.0f} s per configuration"
        + (" (time bound reached)" if any(r.stopped_by_time for r in runs) else "")
        + f"; orders inserted as completed rows (hold and release posted to the ledger, `complete` event); "
          f"{writers} Python threads share the engine's pool and one GIL; PostgreSQL runs on the same machine",
        "CPU of this Python process per order (both submits, all threads; one GIL, so at most ~1 CPU runs Python): "
        + ", ".join(f"{r.name} {r.cpu_s / max(len(r.orders), 1) * 1000:.0f} ms ({r.cpu_s / r.wall_s:.0%} of wall "
                    "time)" for r in runs if r.wall_s),
        f"the last configuration recounts the {reviews:,}-review professional's aggregate (locked row) on every "
        "publication, so its writers queue on that row",
        *[f"{'✓' if ok else '✗ BROKEN:'} {what}" for ok, what in checks],
    ]
    failures = [what for ok, what in checks if not ok]
    if failures:
        raise BrokenInvariant(write_t, failures)
    return [read_t, write_t]


def _invariants(bench: Bench, runs: tuple[Run, ...], *, setup_reviews: int) -> list[tuple[bool, str]]:
    """What the writers must have left behind, read back: every review published, every stored aggregate equal to
    a recomputation from the visible reviews."""
    svc, tenant = bench.svc, bench.tenant
    errors = [e for r in runs for e in r.errors]
    checks = [(not errors, f"no submit failed ({len(errors)} writer errors)" + (f": {errors[0]}" if errors else ""))]
    reviewed = [o for r in runs for o in r.orders]
    with svc.db.tenant_session(tenant.id) as s:
        published = s.exec(select(sa.func.count(Review.id)).where(Review.order_id.in_(reviewed),
                                                                  Review.status == ReviewStatus.PUBLISHED)).one()
        closed = s.exec(select(sa.func.count()).select_from(ReviewWindow).where(
            ReviewWindow.order_id.in_(reviewed), ReviewWindow.closed_at.is_not(None))).one()
        total = s.exec(select(sa.func.count(Review.id))).one()
        subjects = set(s.exec(select(User.id)).all())
        stored_rows = s.exec(select(sa.func.count()).select_from(RatingAggregate)).one()
    checks.append((published == 2 * len(reviewed) and closed == len(reviewed),
                   f"{len(reviewed):,} orders reviewed by both parties: {published:,} reviews published, {closed:,} "
                   f"windows closed; {total:,} reviews in all ({setup_reviews:,} from the setup)"))
    wrong = [i for i in sorted(subjects) if svc.reviews.summary(tenant, i) != svc.reviews.recompute(tenant, i)]
    checks.append((not wrong, f"stored aggregate == recomputation from the visible reviews for all {len(subjects):,} "
                              f"users ({stored_rows:,} aggregate rows)"
                              + (f" — differs for users {wrong[:5]}" if wrong else "")))
    return checks
