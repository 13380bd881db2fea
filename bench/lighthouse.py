"""Lighthouse (npm, `make lighthouse`) against the real app in Debian's Chromium, mobile emulation: the landing page,
/pros and an order page of a logged-in demo client, beside a static baseline (the offline page: one HTML file, no
framework). Scores (performance, accessibility, best practices, SEO) and the core timings (FCP, LCP, TBT, CLS), the
median of LIGHTHOUSE_RUNS runs per page (default 3), and the audits that cost points.

The app runs as bench/app_server.py starts it (a throwaway clone and database, `reflex run --env prod
--single-port`); BENCH_CHAT_CLONE=<path> reuses a clone. The client logs in through the login page in Playwright,
and Lighthouse sends the session cookie with every request (`--extra-headers`), as Lighthouse's documentation
suggests for pages behind a login.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.app_server import running_app
from bench.stats import Table

REPO = Path(__file__).resolve().parent.parent
LIGHTHOUSE = REPO / ".tools/lighthouse/node_modules/.bin/lighthouse"
CHROME = "/usr/bin/chromium"
# What Chromium needs on these machines (closed network): ../.library/env/machines/python-svc.md
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
TIMINGS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift")
RUNS = int(os.environ.get("LIGHTHOUSE_RUNS", "3"))
CLIENT = "alice@demo.example"  # backend/seed.py
PASSWORD = "demo-password-1"
# The targets: (category, minimum score, pages it applies to)
TARGETS = (("accessibility", 95, None), ("best-practices", 95, None), ("performance", 90, {"landing /"}))


def _client_cookie_and_order(base_url: str) -> tuple[str, str]:
    """Log the demo client in through the login page; (the session cookie header, the URL of one of her orders)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROME, args=CHROME_FLAGS[1:])
        try:
            page = browser.new_page()
            page.goto(base_url + "/login")
            page.locator("#email").fill(CLIENT)
            page.locator("#password").fill(PASSWORD)
            page.locator("#login-submit").click()
            page.wait_for_url(re.compile(r"/client/?$"), timeout=60_000)
            page.goto(base_url + "/orders")
            link = page.locator("a[href*='/orders/']").first
            link.wait_for(timeout=60_000)
            order = re.search(r"/orders/\d+", link.get_attribute("href") or "")
            if order is None:
                raise RuntimeError("the demo client has no order to measure")
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies()
                               if c["name"] == "mp_session")
            if not cookie:
                raise RuntimeError("logging in set no session cookie")
            return cookie, base_url + order.group(0)
        finally:
            browser.close()


def _lighthouse(url: str, out: Path, cookie: str = "") -> dict:
    argv = [str(LIGHTHOUSE), url, "--output=json", f"--output-path={out}", "--quiet",
            f"--only-categories={','.join(CATEGORIES)}", "--form-factor=mobile",
            f"--chrome-flags={' '.join(CHROME_FLAGS)}"]
    if cookie:
        argv.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    for attempt in range(3):  # Lighthouse now and then loses the trace of a load (NO_NAVSTART): run that one again
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "CHROME_PATH": CHROME})
        if done.returncode == 0 or "NO_NAVSTART" not in done.stderr:
            break
    if done.returncode != 0:
        raise RuntimeError(f"lighthouse failed on {url} ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def _scores(report: dict) -> dict:
    row = {c: report["categories"][c]["score"] * 100 for c in CATEGORIES}
    row |= {t: report["audits"][t]["numericValue"] for t in TIMINGS}
    row["final_url"] = report.get("finalDisplayedUrl") or report.get("finalUrl", "")
    return row


def _lost_points(report: dict) -> list[str]:
    """Audits of the scored categories (but performance) that failed, by title."""
    lost = []
    for category in CATEGORIES[1:]:
        for ref in report["categories"][category]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref.get("weight", 0) > 0 and audit.get("score") is not None and audit["score"] < 1:
                lost.append(f"{category}: {audit['title']}")
    return lost


def lighthouse_benchmark(log=print) -> list[Table]:
    if not LIGHTHOUSE.exists():
        raise RuntimeError(f"{LIGHTHOUSE} is missing: run `make lighthouse` (or `make setup-dev`)")
    version = subprocess.run([str(LIGHTHOUSE), "--version"], capture_output=True, text=True).stdout.strip()
    chromium = subprocess.run([CHROME, "--version"], capture_output=True, text=True).stdout.strip()
    with running_app(log=log) as (app, _settings, _mongo, _mongo_url), \
            tempfile.TemporaryDirectory(prefix="mp-bench-lh-") as tmp:
        cookie, order_url = _client_cookie_and_order(app.url)
        pages = [("baseline: /offline.html (static HTML)", app.url + "/offline.html", ""),
                 ("landing /", app.url + "/", ""),
                 # the same page when the app boots right after the paint (the installed app's start URL): what
                 # the boot costs, which a visitor's page pays at their first input (marketplace_app/first_paint.py)
                 ("landing, app booting (/?source=pwa)", app.url + "/?source=pwa", ""),
                 ("/pros", app.url + "/pros", ""),
                 ("order page (client logged in)", order_url, cookie)]
        results, lost = {}, {}
        for label, url, page_cookie in pages:
            runs = []
            for i in range(RUNS):
                log(f"  lighthouse {label} run {i + 1}/{RUNS} ...", flush=True)
                report = _lighthouse(url, Path(tmp) / f"{len(results)}-{i}.json", page_cookie)
                runs.append(_scores(report))
                lost.setdefault(label, set()).update(_lost_points(report))
            results[label] = runs

    table = Table("Lighthouse, mobile emulation (median of runs)",
                  ["page", "runs", "performance", "accessibility", "best practices", "SEO", "FCP ms", "LCP ms",
                   "TBT ms", "CLS", "LCP ratio to baseline"])
    base_lcp = statistics.median(r["largest-contentful-paint"] for r in results[pages[0][0]])
    for label, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in (*CATEGORIES, *TIMINGS)}
        ratio = "1.00× (baseline)" if label == pages[0][0] else f"{med['largest-contentful-paint'] / base_lcp:.2f}×"
        table.add(label, len(runs), *(round(med[c]) for c in CATEGORIES), med["first-contentful-paint"],
                  med["largest-contentful-paint"], med["total-blocking-time"],
                  f"{med['cumulative-layout-shift']:.3f}", ratio)
    verdicts = []
    for category, minimum, only in TARGETS:
        for label, runs in results.items():
            if label == pages[0][0] or (only and label not in only):
                continue
            score = statistics.median(r[category] for r in runs)
            verdicts.append(f"{category} ≥ {minimum} on {label}: {'met' if score >= minimum else 'NOT met'} "
                            f"({score:.0f})")
    table.notes += [
        f"Lighthouse {version}, {chromium}; default mobile emulation (Moto G Power screen, "
        "simulated slow 4G and 4× CPU slowdown); each run starts with cleared storage (no service worker yet)",
        "targets: " + "; ".join(verdicts),
        "pages measured: " + ", ".join(sorted({r['final_url'].replace(app.url, '') or '/'
                                                for runs in results.values() for r in runs})),
    ]
    for label, audits in lost.items():
        if audits:
            table.notes.append(f"points lost on {label}: " + "; ".join(sorted(audits)))
    return [table]
