"""Run the benchmarks (all, or the parts named on the command line), print the tables, and write them as markdown
to bench/results/latest.md, keeping the last results of the parts not rerun."""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import analytics, chat, ledger, lighthouse, login, notifications, orders, reviews, search, startup
from bench.stats import Table, percentile, reset_peak_rss, tree_memory

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
ROUNDS = 3  # fresh clones, each started cold then warm
STARTUP_BUDGET_S = 300  # no further round once this much time went into start-ups
COLD_TIMEOUT_S, WARM_TIMEOUT_S = 330, 180
SETTLE_S = 3  # idle time after the first page before memory is read


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def show(table: Table, tables: list[Table]) -> None:
    tables.append(table)
    print(table.text(), "\n", flush=True)


def start_app(clone: Path, label: str, timeout_s: float, while_up=None) -> dict:
    """`make run` until the first page, read the idle memory, run while_up(app), stop the whole tree."""
    app = startup.MakeRun(clone, startup.free_port(), clone.parent / "make-run.log")
    print(f"  {label} `make run` on port {app.port} ...", end=" ", flush=True)
    app.start()
    try:
        seconds = app.wait_first_page(timeout_s)
        print(f"first page after {seconds:.1f} s", flush=True)
        time.sleep(SETTLE_S)
        result = {"seconds": seconds, "idle": tree_memory(app.proc.pid)}
        if while_up:
            result["extra"] = while_up(app)
    finally:
        app.stop()
    result["peak"] = app.peak_rss_mib
    return result


def app_benchmarks(tables: list[Table]) -> None:
    cold, warm, migrate = [], [], []
    last_warm = None
    started = time.perf_counter()
    for r in range(ROUNDS):
        if r and time.perf_counter() - started > STARTUP_BUDGET_S:
            break
        clone = startup.make_clone()
        print(f"round {r + 1}/{ROUNDS}: clone in {clone}", flush=True)
        try:
            cold.append(start_app(clone, "cold", COLD_TIMEOUT_S))
            migrate.append(startup.time_command(clone, [".venv/bin/python", "-m", "backend.migrate"]))
            last = r == ROUNDS - 1 or time.perf_counter() - started > STARTUP_BUDGET_S
            warm.append(start_app(clone, "warm", WARM_TIMEOUT_S, while_up=_http_and_memory if last else None))
            if last:
                last_warm = warm[-1]
                base_rss = startup.python_rss_mib(clone, "import reflex, backend.bootstrap")
        finally:
            startup.remove_clone(clone)

    start_t = Table("`make run` time to first page (throwaway clone)",
                    ["run", "n", "p50 s", "p95 s", "p99 s", "peak tree RSS MiB", "p50 ratio to baseline"])
    base_p50 = percentile(migrate, 50)
    for label, secs, peak in (
        ("baseline: `python -m backend.migrate` (already at head)", migrate, None),
        ("cold: fresh clone, no .web, no data/", [c["seconds"] for c in cold], max(c["peak"] for c in cold)),
        ("warm: second `make run` in the same clone", [w["seconds"] for w in warm], max(w["peak"] for w in warm)),
    ):
        p50 = percentile(secs, 50)
        start_t.add(label, len(secs), p50, percentile(secs, 95), percentile(secs, 99), peak,
                    f"{p50 / base_p50:.1f}×" if peak else "1.00× (baseline)")
    start_t.notes += [
        "clock runs from spawning `make run PORT=<port>` until GET / answers 200 with the HTML; one round = a fresh "
        f"`git clone` started cold, then again warm; with n={len(cold)} the p95/p99 are the slowest run",
        "cold = migrate + seed into a new SQLite file, Reflex web-dir init, `bun install` (served from bun's "
        "global cache once any earlier install filled it) and the production frontend build",
        "the clone symlinks .venv and .tools to the working copy; make runs with `-o .venv/.installed` so it does "
        "not re-run pip into the shared venv; peak RSS = sum over the process tree, sampled every ~0.25 s",
    ]
    show(start_t, tables)

    http_t, after = last_warm["extra"]
    show(http_t, tables)
    mem_t = Table("Memory of the running app (`make run` process tree)",
                  ["state", "processes", "RSS sum MiB", "PSS sum MiB", "RSS ratio to baseline"])
    mem_t.add("baseline: `python -c 'import reflex, backend.bootstrap'` (peak)", 1, base_rss, None, "1.00×")
    for label, m in (("cold start, idle after first page", cold[-1]["idle"]),
                     ("warm start, idle after first page", last_warm["idle"]),
                     ("warm start, after the HTTP login benchmark", after)):
        mem_t.add(label, m["procs"], m["rss"], m["pss"], f"{m['rss'] / base_rss:.1f}×")
    mem_t.notes.append(f"last round; idle = {SETTLE_S} s after the first page; RSS summed over a process tree counts "
                       "shared pages once per process, PSS splits them and is the better total")
    show(mem_t, tables)


def _http_and_memory(app: startup.MakeRun):
    table = login.http_login(app.url, app.proc.pid)
    return table, tree_memory(app.proc.pid)


def login_part(tables: list[Table]) -> None:
    print("login through the service layer ...", flush=True)
    show(login.service_login(), tables)


def orders_part(tables: list[Table]) -> None:
    print("order lifecycles through the service layer ...", flush=True)
    show(orders.order_lifecycle(), tables)


def ledger_part(tables: list[Table]) -> None:
    print(f"ledger postings, 1 and {ledger.WRITERS} concurrent writers ...", flush=True)
    show(ledger.ledger_postings(), tables)


def reviews_part(tables: list[Table]) -> None:
    print(f"reviews: summary of a professional with {reviews.REVIEWS:,} reviews, publication with 1 and "
          f"{reviews.WRITERS} writers ...", flush=True)
    for table in reviews.reviews_benchmark():
        show(table, tables)


def search_part(tables: list[Table]) -> None:
    print(f"search: {search.PROS:,} professionals, tantivy vs PostgreSQL, {len(search.MIXES)} query mixes ...",
          flush=True)
    for table in search.search_benchmark():
        show(table, tables)


def notifications_part(tables: list[Table]) -> None:
    print(f"notifications: one event to {notifications.RECIPIENTS:,} recipients over Celery on Redis, vs "
          f"{notifications.BASELINE:,} inline ...", flush=True)
    for table in notifications.notifications_benchmark():
        show(table, tables)


def analytics_part(tables: list[Table]) -> None:
    print(f"analytics: {analytics.ORDERS:,} orders in {analytics.TENANTS} marketplaces, the admin dashboard cold, "
          "cached and from the raw rows ...", flush=True)
    for table in analytics.analytics_benchmark():
        show(table, tables)


def chat_part(tables: list[Table]) -> None:
    print(f"chat over Reflex's WebSocket, {chat.CLIENTS} users, vs a bare WebSocket echo ...", flush=True)
    show(chat.chat_delivery(), tables)


def lighthouse_part(tables: list[Table]) -> None:
    print(f"lighthouse: landing, /pros and an order page in mobile emulation, {lighthouse.RUNS} runs each ...",
          flush=True)
    for table in lighthouse.lighthouse_benchmark():
        show(table, tables)


# name -> (runs it, what it measures); run and written in this order
PARTS = {
    "login": (login_part, "login through the service layer (PostgreSQL, argon2 cost)"),
    "orders": (orders_part, "order lifecycles through the service layer (PostgreSQL), p95 per transition"),
    "ledger": (ledger_part, f"ledger postings per second, 1 vs {ledger.WRITERS} concurrent writers (PostgreSQL), "
                            "invariants checked after"),
    "reviews": (reviews_part, f"profile rating summary of a professional with {reviews.REVIEWS:,} reviews vs "
                              f"recounting it, review publication 1 vs {reviews.WRITERS} concurrent writers "
                              "(PostgreSQL), aggregates checked after"),
    "search": (search_part, f"search over {search.PROS:,} synthetic professionals (SEARCH_BENCH_PROS): index build, "
                            "size and memory, p50/p95/p99 of five query mixes, embedded tantivy vs PostgreSQL "
                            "(tsvector + GIN, earthdistance + GiST), same results checked (~4 min)"),
    "notifications": (notifications_part, f"one event fanned out to {notifications.RECIPIENTS:,} recipients "
                                          "(NOTIFY_BENCH_RECIPIENTS) by Celery workers on Redis to a local fake "
                                          "SendGrid vs inline delivery: enqueue time, deliveries/s, p95 event to "
                                          "provider, 0 lost / 0 duplicated checked (~2 min)"),
    "analytics": (analytics_part, f"{analytics.ORDERS:,} orders with their ledger and events in {analytics.TENANTS} "
                                  "marketplaces generated in bulk (ANALYTICS_BENCH_ORDERS), rollups rebuilt, the "
                                  "admin dashboard p50/p95/p99 cold vs cached vs naive over raw rows for 30 days, "
                                  "90 days and 12 months, memory (~15-25 min)"),
    "startup": (app_benchmarks, "`make run` cold/warm in throwaway clones, HTTP login and memory of the running "
                                "app (~2-3 min)"),
    "lighthouse": (lighthouse_part, "Lighthouse scores (performance, accessibility, best practices, SEO) and "
                                    "FCP/LCP/TBT/CLS in mobile emulation on the landing page, /pros and an order "
                                    "page, against a static page (LIGHTHOUSE_RUNS runs each, ~5-8 min)"),
    "chat": (chat_part, f"chat delivery latency over Reflex's WebSocket, {chat.CLIENTS} simulated users in "
                        f"{chat.CLIENTS // 2} conversations vs a bare WebSocket echo, stored-exactly-once check "
                        "(~5-6 min)"),
}
HEADER = ("## Benchmarks\n\n`make bench` runs every part below; `python -m bench PART ...` reruns only those parts "
          "and keeps the last results of the others here, so each part says when and where it ran.\n")
SECTION = re.compile(r"^<!-- bench:(\w+) -->$", re.MULTILINE)


def parse_args(argv: list[str] | None) -> list[str]:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmarks; results go to bench/results/latest.md.",
        epilog="parts: " + "; ".join(f"{name} = {about}" for name, (_, about) in PARTS.items()))
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: all)")
    chosen = parser.parse_args(argv).parts
    if unknown := [p for p in chosen if p not in PARTS]:
        parser.error(f"unknown part {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    return [name for name in PARTS if name in chosen] if chosen else list(PARTS)


def run_part(name: str) -> str:
    """Run one part; its markdown section for latest.md."""
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    reset_peak_rss()
    tables: list[Table] = []
    PARTS[name][0](tables)
    took = time.perf_counter() - t0
    return (f"<!-- bench:{name} -->\n_`python -m bench {name}` · {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · "
            f"{cpu_model()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · took {took:.0f} s · "
            f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the "
            "machine shows up in the percentiles)_\n\n" + "\n".join(t.markdown() for t in tables))


def previous_sections() -> dict[str, str]:
    """The sections of latest.md by part name (a file from before the section markers has none to keep)."""
    old = RESULTS.read_text() if RESULTS.exists() else ""
    marks = list(SECTION.finditer(old))
    return {m.group(1): old[m.start():(marks[i + 1].start() if i + 1 < len(marks) else len(old))].rstrip() + "\n"
            for i, m in enumerate(marks) if m.group(1) in PARTS}


def main(argv: list[str] | None = None) -> int:
    names = parse_args(argv)
    t0 = time.perf_counter()
    sections = {}
    for name in names:
        try:
            sections[name] = run_part(name)
        except orders.BrokenInvariant as exc:
            print(exc.table.text(), "\n", flush=True)
            print(f"FAILED: {name}: broken invariant: {exc}; {RESULTS} not written", file=sys.stderr)
            return 1
    total = time.perf_counter() - t0

    kept = previous_sections()
    if names != list(PARTS) and not kept and RESULTS.exists():
        print(f"note: {RESULTS} has no part markers (older format); only the parts just run are kept")
    sections = {name: sections.get(name) or kept.get(name) for name in PARTS}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(HEADER + "".join("\n" + s for s in sections.values() if s))
    print(f"wrote {RESULTS} ({', '.join(names)}: {total:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
