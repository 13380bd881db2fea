"""Order lifecycles through the service layer on a throwaway PostgreSQL database: request -> quote -> accept ->
pay (demo gateway, test card) -> start -> deliver -> complete (+ PDF invoice), timed per transition."""

from __future__ import annotations

import gc
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import select

from backend.jobqueue import GENERATE_INVOICE, InlineJobQueue
from bench.login import HEADERS, _once, _row, throwaway_database
from bench.stats import Table, self_peak_rss_mib, summary_ms

STEPS = ("post_request", "send_quote", "accept_quote", "pay", "start", "deliver", "complete")
PASSWORD = "bench-password-1"
AVAILABILITY = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


class BrokenInvariant(AssertionError):
    """Raised after the run when the data it left behind is wrong; carries the table (notes say what broke)."""

    def __init__(self, table: Table, failures: list[str]):
        super().__init__("; ".join(failures))
        self.table = table
        self.failures = failures



class FullCollections:
    """While active, times Python's full (generation 2) garbage collections and notes the step they landed in."""

    def __init__(self, market: Market):
        self.market = market
        self.pauses: list[tuple[str, float]] = []
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((self.market.step, time.perf_counter() - self._t0))

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)

    def note(self, lifecycles: int) -> str:
        if not self.pauses:
            return f"no full (gen-2) garbage collection during the {lifecycles} lifecycles"
        where = Counter(step for step, _ in self.pauses)
        ms = summary_ms([seconds for _, seconds in self.pauses])
        return (f"{len(self.pauses)} full (gen-2) garbage collections during the {lifecycles} lifecycles, "
                f"p50 {ms['p50']:.0f} ms each (max {max(s for _, s in self.pauses) * 1000:.0f} ms), landing in "
                + ", ".join(f"{step} ×{count}" for step, count in where.most_common())
                + ": they make the p95/p99 tail (GC left on, as in production)")


class Market:
    """One tenant with default categories, a client, and a professional serving the client's city and category."""

    def __init__(self, svc):
        from backend.tenancy.models import Tenant

        self.svc = svc
        self.step = "setup"  # the transition running now (for FullCollections)
        with svc.db.platform_session() as session:
            session.add(Tenant(slug="bench-orders", name="Bench Orders", payment_provider="demo"))
        self.tenant = svc.tenants.by_slug("bench-orders")
        svc.catalog.seed_defaults(self.tenant.id)
        self.category_id = next(c.id for c in svc.catalog.categories(self.tenant.id) if c.slug == "plumbing")
        self.client = self._user("client@bench.example", "client")
        self.pro = self._user("pro@bench.example", "professional")
        svc.pros.update_own(self.tenant, self.pro, {
            "headline": "Bench plumber, fixes everything", "city": "Austin", "radius_km": 30, "hourly_rate": "80",
            "category_ids": [self.category_id], "availability": AVAILABILITY})

    def _user(self, email: str, role: str):
        actor, _ = self.svc.accounts.sign_up(self.tenant, {"email": email, "password": PASSWORD,
                                                           "full_name": email.split("@")[0].title(), "role": role})
        return actor

    def lifecycle(self, i: int, on_step=None) -> float:
        """One full lifecycle; on_step(name, seconds) gets each transition's time. Returns their sum."""
        svc, t, client, pro = self.svc, self.tenant, self.client, self.pro
        price = f"{100 + i % 400}.{i * 37 % 100:02d}"  # varied amounts, so the fee rounding gets checked too
        ids = {}

        def post_request():
            ids["request"] = svc.quotes.create_request(t, client, {
                "title": f"Fix a leaking kitchen tap #{i}", "category_id": self.category_id, "city": "Austin",
                "description": "The kitchen tap drips all night, it needs a new washer.",
                "budget_min": "50", "budget_max": "600"})

        def send_quote():
            ids["quote"] = svc.quotes.send_quote(t, pro, ids["request"], {
                "price": price, "message": "I can fix it tomorrow morning.", "duration_hours": 2,
                "valid_until": (date.today() + timedelta(days=7)).isoformat()})

        def accept_quote():
            ids["order"] = svc.quotes.accept_quote(t, client, ids["quote"])

        def pay():
            # the whole hosted-checkout round trip: start, the demo gateway's page authorises, confirm
            session_id = svc.orders.start_checkout(t, client, ids["order"]).rsplit("/", 1)[-1]
            svc.payments.gateways["demo"].pay_hosted(session_id, number="4242 4242 4242 4242", exp_month=12,
                                                     exp_year=date.today().year + 2, cvc="123")
            svc.orders.confirm_checkout(t, session_id, client)

        steps = {
            "post_request": post_request, "send_quote": send_quote, "accept_quote": accept_quote,
            "pay": pay,
            "start": lambda: svc.orders.apply(t, pro, ids["order"], "start"),
            "deliver": lambda: svc.orders.apply(t, pro, ids["order"], "deliver"),
            "complete": lambda: svc.orders.apply(t, client, ids["order"], "complete"),
        }
        total = 0.0
        for name in STEPS:
            self.step = name
            seconds = _once(steps[name])
            self.step = "between transitions"
            total += seconds
            if on_step:  # outside the clock: may run a baseline between two transitions
                on_step(name, seconds)
        self.last_order_id = ids["order"]
        return total


def order_lifecycle(n: int = 100, budget_s: float = 120, split_n: int = 30, split_budget_s: float = 40) -> Table:
    from backend.bootstrap import build_services
    from backend.config import Settings

    table = Table("Order lifecycles through the service layer (PostgreSQL, demo gateway, inline jobs)", HEADERS)
    with throwaway_database() as url, tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        # development: the demo gateway (test cards) the lifecycles pay with exists only there
        settings = Settings(_env_file=None, environment="development", database_url=url, data_dir=Path(tmp),
                            redis_url=None)
        jobs = InlineJobQueue(raise_errors=True)
        svc = build_services(settings, jobs=jobs)
        try:
            market = Market(svc)
            tenant = market.tenant

            def baseline() -> None:
                with svc.db.tenant_session(tenant.id) as s:
                    s.execute(text("SELECT 1"))

            for i in range(3):  # warm-up: connection pool, tenant cache, fonts for the PDF; not counted
                baseline()
                market.lifecycle(i)

            # Main run. One baseline transaction before every transition, so background load hits both alike.
            base, per_step, lifecycles = [], {name: [] for name in STEPS}, []

            def step_after_baseline(name: str, seconds: float) -> None:
                per_step[name].append(seconds)
                if name != STEPS[-1]:
                    base.append(_once(baseline))

            start = time.perf_counter()
            with FullCollections(market) as collections:
                while len(lifecycles) < n and time.perf_counter() - start < budget_s:
                    base.append(_once(baseline))
                    lifecycles.append(market.lifecycle(1000 + len(lifecycles), step_after_baseline))
            run_s = time.perf_counter() - start

            # Smaller run: `complete` with the invoice job a no-op, then generate_invoice timed on its own.
            complete_only, invoice_only = [], []

            def split_step(name: str, seconds: float) -> None:
                if name == "complete":
                    complete_only.append(seconds)

            start = time.perf_counter()
            while len(complete_only) < split_n and time.perf_counter() - start < split_budget_s:
                jobs.skip = frozenset({GENERATE_INVOICE})  # the invoice is timed on its own below
                try:
                    market.lifecycle(5000 + len(complete_only), split_step)
                finally:
                    jobs.skip = frozenset()
                invoice_only.append(_once(svc.orders.generate_invoice, tenant, market.last_order_id))
                base.append(_once(baseline))

            expected_orders = 3 + len(lifecycles) + len(complete_only)
            checks = _invariants(svc, tenant, expected_orders)
        finally:
            svc.close()
    rss = self_peak_rss_mib()

    b = _row(table, "baseline: tenant_session + SELECT 1", base, rss, None)
    for name in STEPS:
        label = "complete (incl. PDF invoice, inline job)" if name == "complete" else name
        _row(table, label, per_step[name], rss, b["p50"])
    full = _row(table, "full lifecycle (7 transitions)", lifecycles, rss, b["p50"])
    split_c = _row(table, "split: complete, invoice job a no-op", complete_only, rss, b["p50"])
    split_i = _row(table, "split: orders.generate_invoice alone", invoice_only, rss, b["p50"])
    complete = summary_ms(per_step["complete"])
    table.notes += [
        f"{full['per_s']:.1f} full lifecycles per second with one sequential client ({len(lifecycles)} "
        f"lifecycles, {1000 / full['p50']:.1f}/s at the p50); a lifecycle's time is the sum of its 7 transitions, "
        f"{len(lifecycles) / run_s:.1f}/s in wall time counting the interleaved baselines and glue",
        f"the invoice PDF is ~{split_i['p50'] / complete['p50']:.0%} of `complete` at p50: complete without it "
        f"{split_c['p50']:.1f} ms + generate_invoice {split_i['p50']:.1f} ms vs {complete['p50']:.1f} ms together "
        f"(split run: {len(complete_only)} further lifecycles)",
        collections.note(len(lifecycles)),
        "lifecycle = client create_request → pro send_quote → client accept_quote (creates the order) → client pay "
        "(demo gateway hold, card 4242…) → pro start → pro deliver → client complete (capture + release, then "
        "generate_invoice: fpdf2 render + local object store)",
        "3 warm-up lifecycles not counted; baseline = one tenant-scoped transaction with `SELECT 1`, interleaved "
        "before every transition; default Settings (no logins in the loop); peak RSS is this process during this part",
        *[f"{'✓' if ok else '✗ BROKEN:'} {what}" for ok, what in checks],
    ]
    failures = [what for ok, what in checks if not ok]
    if failures:
        raise BrokenInvariant(table, failures)
    return table


def _invariants(svc, tenant, expected_orders: int) -> list[tuple[bool, str]]:
    """What the run must have left behind, read back from the database, the gateway's records and the store."""
    from backend.orders.models import Order, OrderState, ServiceRequest
    from backend.payments.models import DemoCharge

    with svc.db.tenant_session(tenant.id) as s:
        orders = s.exec(select(Order)).all()
        request_ids = s.exec(select(ServiceRequest.id)).all()
        charges = s.exec(select(DemoCharge)).all()
    checks = []
    n = len(orders)
    states = Counter(o.state for o in orders)
    checks.append((n == expected_orders and states[OrderState.COMPLETED] == n,
                   f"every order completed: {states[OrderState.COMPLETED]} of {n} orders "
                   f"({expected_orders} lifecycles run{'' if n == expected_orders else ', MISMATCH'})"))
    per_request = Counter(o.request_id for o in orders)
    one_each = set(per_request) == set(request_ids) and all(c == 1 for c in per_request.values())
    checks.append((one_each, f"exactly one order per request: {len(request_ids)} requests, "
                             f"{len(per_request)} with orders, at most {max(per_request.values(), default=0)} each"))
    keys = [o.invoice_key for o in orders if o.invoice_key]
    pdfs = 0
    for key in set(keys):
        try:
            pdfs += svc.store.get(key)[0].startswith(b"%PDF")
        except KeyError:
            pass
    checks.append((len(keys) == n and len(set(keys)) == n and pdfs == n,
                   f"one invoice per order: {len(keys)} orders with invoice_key, {len(set(keys))} distinct, "
                   f"{pdfs} PDFs in the object store"))
    by_order = {}
    for c in charges:
        by_order.setdefault(c.order_id, []).append(c)
    good = sum(
        1 for o in orders
        if len(by_order.get(o.id, [])) == 1 and (c := by_order[o.id][0]).status == "captured"
        and c.amount_minor == o.price_minor and c.captured_minor == c.amount_minor and c.refunded_minor == 0
    )
    checks.append((good == n and len(charges) == n,
                   f"demo gateway: {good} of {n} orders have one charge, captured == amount, nothing refunded "
                   f"({len(charges)} charges in all)"))
    with svc.db.tenant_session(tenant.id) as s:
        problems = svc.payments.ledger.check_invariants(s)
        fees = svc.payments.ledger.balance(s, ("platform:fees", "platform_fees", None), tenant.currency)
    expected_fees = sum(o.platform_fee_minor for o in orders)
    checks.append((not problems and fees == expected_fees,
                   f"ledger: every transaction balances, no escrow negative, platform fees {fees} == "
                   f"sum of order fees {expected_fees}" + (f" — {problems[:3]}" if problems else "")))
    return checks
