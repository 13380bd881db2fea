"""Live chat over Reflex's real WebSocket: simulated users in client/professional pairs, each pair in its own
conversation, each user with the conversation page open (bench/chat_pages.py) sending paced messages exactly as the
browser does; delivery latency is from the moment a user "clicks Send" until the delta carrying the message reaches
the other user's socket. Baseline in the same run: a bare WebSocket echo server (bench/helper_servers.py), same
client code (bench/socket_client.py), same number of clients, messages and pace.
Runs, each in fresh conversations: light (a few users), main (CLIENTS users, the issue's protocol), and the main
users again with the page's 2 s ChatState.tick on, as real pages do. Afterwards every message sent in any run must
be in the chat store exactly once (read back through pymongo), and every one must have reached the other user;
otherwise BrokenInvariant.

The app runs as bench/app_server.py starts it: a throwaway clone and database, the message store in its own process
(BENCH_CHAT_CLONE=<path> reuses a clone). This module is the benchmark itself: the scenario, the measurement
(`Run`, `measure`) and the table. `python -m bench.chat <role>` also starts the helper servers (bench/helper_servers.py)
and, as `python -m bench.chat record`, the protocol study (bench/chat_record.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from bench.app_server import App, running_app
from bench.chat_pages import ChatPage, make_pairs
from bench.chat_record import record_main
from bench.helper_servers import ROLES, HelperProcess
from bench.orders import BrokenInvariant
from bench.socket_client import WebSocket
from bench.stats import PeakTreeRss, Table, percentile, tree_cpu_s, tree_memory, tree_rss_mib

CLIENTS = 200  # simulated users in the main run, two per conversation
MESSAGES = 10  # per user
INTERVAL_S = 10.0  # between two messages of one user; the users spread evenly over it (200 users: 20 messages/s)
SMALL_CLIENTS = 10  # the light run first: the latency with next to no load
LIGHT_INTERVAL_S = 2.0
TICK_S = 2.0  # the page's rx.moment(interval=2000) -> ChatState.tick, in the last run only; 0 = no such run
TICK_MESSAGES = 3  # per user in that run
P95_GOAL_MS = 100.0
IDLE_S = 5.0  # every client connected, nothing sent: the server's idle CPU
ARRIVAL_TIMEOUT_S = 20.0  # after the last send, for the last arrivals
CONNECT_TIMEOUT_S = 60.0  # per user: socket open, hydrated, ChatState.load done
CONNECTING = 20  # users connecting at once

HEADERS = ["run", "clients", "sent", "delivered", "p50 ms", "p95 ms", "p99 ms", "msgs/s",
           "server RSS before MiB", "server RSS after MiB", "p95 ratio to baseline", "RSS after ratio to baseline"]


# ---------------------------------------------------------------- one measured run


@dataclass
class Run:
    name: str
    clients: int
    messages: int  # planned per client
    interval_s: float
    tick_s: float = 0.0
    sent: dict[str, float] = field(default_factory=dict)  # message id -> perf_counter at "Send"
    arrived: dict[str, float] = field(default_factory=dict)  # message id -> perf_counter at the other user
    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pushes: list[tuple[int, int]] = field(default_factory=list)
    skipped: int = 0  # messages not sent: the send budget ran out
    connect_s: float = 0.0
    idle_cores: float = 0.0  # the server's CPU with every client connected, before sending
    cpu_s: float = 0.0  # the server's CPU time while sending
    send_s: float = 0.0  # first send to last arrival
    rss_before: float = 0.0
    rss_connected: float = 0.0
    rss_after: float = 0.0
    rss_peak: float = 0.0

    def latencies_ms(self) -> list[float]:
        return [(self.arrived[m] - self.sent[m]) * 1000 for m in self.sent if m in self.arrived]


async def measure(run: Run, pid: int, senders: list, send_one) -> None:
    """With every client connected: the server's idle CPU for IDLE_S, then each sender sends run.messages, one
    per interval, the senders spread evenly over the interval (a sender whose send is slow sends its next one
    right after, never two at once); then wait for the last arrivals."""
    await asyncio.sleep(1)  # what the connects started (InboxState.refresh_unread, first ticks) settles
    run.rss_connected = tree_rss_mib(pid)
    cpu0, t0 = tree_cpu_s(pid), time.perf_counter()
    await asyncio.sleep(IDLE_S)
    run.idle_cores = (tree_cpu_s(pid) - cpu0) / (time.perf_counter() - t0)
    n, start = len(senders), time.perf_counter() + 0.1
    budget_end = start + run.messages * run.interval_s * 2 + 30

    async def one(k: int, sender) -> None:
        for seq in range(run.messages):
            await asyncio.sleep(max(0.0, start + (k / n + seq) * run.interval_s - time.perf_counter()))
            if time.perf_counter() > budget_end:
                run.skipped += run.messages - seq
                return
            await send_one(sender, seq)

    cpu0 = tree_cpu_s(pid)
    with PeakTreeRss(pid) as sampler:
        await asyncio.gather(*(one(k, s) for k, s in enumerate(senders)))
        deadline = time.perf_counter() + ARRIVAL_TIMEOUT_S
        while len(run.arrived) < len(run.sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    run.cpu_s = tree_cpu_s(pid) - cpu0
    run.rss_peak = sampler.peak
    run.rss_after = tree_rss_mib(pid)
    run.send_s = max(run.arrived.values(), default=start) - start


async def connect_all(opens: list) -> float:
    gate = asyncio.Semaphore(CONNECTING)
    t0 = time.perf_counter()

    async def one(open_) -> None:
        async with gate:
            await asyncio.wait_for(open_(), CONNECT_TIMEOUT_S)

    await asyncio.gather(*(one(o) for o in opens))
    return time.perf_counter() - t0


async def echo_run(port: int, server_pid: int, clients: int, messages: int, interval_s: float) -> Run:
    run = Run("echo", clients, messages, interval_s)
    run.rss_before = tree_rss_mib(server_pid)

    def on_text(text: str, arrived: float) -> None:
        run.arrived.setdefault(json.loads(text)["id"], arrived)

    sockets = [WebSocket(on_text) for _ in range(clients)]
    tag = uuid.uuid4().hex[:6]

    async def send_one(k: int, seq: int) -> None:
        mid = f"u{k}.{seq}.{tag}"
        run.sent[mid] = time.perf_counter()
        sockets[k].send_text(json.dumps({"id": mid, "body": f"bench {mid} {time.time_ns() // 1_000_000}"}))

    try:
        run.connect_s = await connect_all([lambda ws=ws: ws.open(port, "/") for ws in sockets])
        await measure(run, server_pid, list(range(clients)), send_one)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets if hasattr(ws, "task")), return_exceptions=True)
    return run


async def chat_run(app: App, pairs: list[dict], messages: int, interval_s: float, tick_s: float) -> Run:
    run = Run("chat", 2 * len(pairs), messages, interval_s, tick_s)
    run.rss_before = tree_rss_mib(app.pid)
    tag = uuid.uuid4().hex[:6]
    pages: list[tuple[str, ChatPage]] = []
    for pair in pairs:
        for me, other in (("client", "pro"), ("pro", "client")):
            partner = f"{other[0]}{pair['conversation']}."

            def on_room(msgs: list, arrived: float, partner=partner) -> None:
                for m in msgs:  # the room's whole window comes each time: keep when each message first came
                    parts = str(m.get("body", "")).split(" ")
                    if len(parts) == 3 and parts[0] == "bench" and parts[1].startswith(partner) and \
                            parts[1].endswith(tag):
                        run.arrived.setdefault(parts[1], arrived)

            page = ChatPage(app.port, pair[me]["token"], pair["conversation"], on_room)
            pages.append((f"{me[0]}{pair['conversation']}", page))

    async def send_one(item: tuple[str, ChatPage], seq: int) -> None:
        label, page = item
        mid = f"{label}.{seq}.{tag}"
        run.sent[mid] = time.perf_counter()
        page.send(f"bench {mid} {time.time_ns() // 1_000_000}")

    ticking = True

    async def ticks(k: int, page: ChatPage) -> None:
        await asyncio.sleep(k / len(pages) * tick_s)
        while ticking:
            page.tick()
            await asyncio.sleep(tick_s)

    tickers = []
    try:
        run.connect_s = await connect_all([page.open for _, page in pages])
        if tick_s:
            tickers = [asyncio.create_task(ticks(k, page)) for k, (_, page) in enumerate(pages)]
        await measure(run, app.pid, pages, send_one)
    finally:
        ticking = False
        for t in tickers:
            t.cancel()
        for label, page in pages:
            run.problems += [f"{label}: {p}" for p in page.problems]
            run.pushes += page.pushes
        await asyncio.gather(*(page.close() for _, page in pages if hasattr(page.ws, "task")),
                             return_exceptions=True)
    return run


# ---------------------------------------------------------------- the part


def stored_exactly_once(mongo_url: str, tenant_id: int, pairs: list[dict], runs: list[Run]) -> tuple[bool, str]:
    """Read the store back: every message sent in `runs` stored once, in its conversation, from its sender, and
    nothing else stored."""
    import pymongo

    expected = {}  # sender label -> (conversation id, sender id), as chat_run labels the pages
    for pair in pairs:
        for role in ("client", "pro"):
            expected[f"{role[0]}{pair['conversation']}"] = (pair["conversation"], pair[role]["id"])
    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    try:
        docs = list(client.get_default_database()["messages"].find(
            {}, {"tenant_id": 1, "body": 1, "conversation_id": 1, "sender_id": 1}))
    finally:
        client.close()
    counts, misplaced, foreign = Counter(), 0, 0
    for d in docs:
        parts = str(d.get("body", "")).split(" ")
        if len(parts) != 3 or parts[0] != "bench" or d.get("tenant_id") != tenant_id:
            foreign += 1
            continue
        counts[parts[1]] += 1
        if expected.get(parts[1].split(".")[0]) != (d.get("conversation_id"), d.get("sender_id")):
            misplaced += 1
    sent = {m for r in runs for m in r.sent}
    missing = sorted(sent - set(counts))
    duplicated = [m for m, c in counts.items() if c > 1]
    unexpected = len(set(counts) - sent) + foreign
    ok = not missing and not duplicated and not unexpected and not misplaced
    return ok, (f"{'✓' if ok else '✗ BROKEN:'} chat store read back through pymongo: {len(sent)} messages sent, "
                f"{len(docs)} documents, {len(counts)} distinct message ids; missing {len(missing)}, stored more "
                f"than once {len(duplicated)}, unexpected {unexpected}, in the wrong conversation or from the "
                f"wrong sender {misplaced}"
                + (f" (e.g. missing {missing[:3]}, duplicated {duplicated[:3]})" if missing or duplicated else ""))


def chat_delivery(log=print) -> Table:
    table = Table(f"Chat delivery over Reflex's WebSocket vs a bare WebSocket echo ({CLIENTS} users in "
                  f"{CLIENTS // 2} conversations, {MESSAGES} messages each)", HEADERS)
    main_pairs, tick_pairs = CLIENTS // 2, CLIENTS // 2 if TICK_S else 0
    echo = HelperProcess("echo")
    try:
        with running_app(log) as (app, settings, mongo, mongo_url):
            total = main_pairs + tick_pairs + SMALL_CLIENTS // 2
            log(f"  {total} conversations, {2 * total} users logging in ...", flush=True)
            tenant_id, pairs = make_pairs(settings, total)
            main, ticked, light = (pairs[:main_pairs], pairs[main_pairs:main_pairs + tick_pairs],
                                   pairs[main_pairs + tick_pairs:])
            mongo_before = tree_memory(mongo.proc.pid)["rss"]
            log(f"  echo baseline, {CLIENTS} clients ...", flush=True)
            base = asyncio.run(echo_run(echo.port, echo.proc.pid, CLIENTS, MESSAGES, INTERVAL_S))
            runs = []
            for label, group, messages, interval_s, tick_s in (
                ("light", light, MESSAGES, LIGHT_INTERVAL_S, 0.0),
                ("main", main, MESSAGES, INTERVAL_S, 0.0),
                ("ticks", ticked, TICK_MESSAGES, INTERVAL_S, TICK_S),
            ):
                if not group:
                    continue
                log(f"  chat, {2 * len(group)} users{', ticking' if tick_s else ''} ...", end=" ", flush=True)
                run = asyncio.run(chat_run(app, group, messages, interval_s, tick_s))
                log(f"p95 {percentile(run.latencies_ms() or [0.0], 95):.0f} ms", flush=True)
                runs.append((label, run))
            mongo_after = tree_memory(mongo.proc.pid)["rss"]
            app_log = app.log_tail(20)
            store_ok, store_note = stored_exactly_once(mongo_url, tenant_id, main + ticked + light,
                                                       [r for _, r in runs])
    finally:
        echo.stop()

    b = _row(table, f"baseline: bare WebSocket echo, 1 message / {INTERVAL_S:g} s per client", base, None)
    failures = _failures("echo", base)
    for label, run in runs:
        n, conv = run.clients, run.clients // 2
        pace = f"1 message / {run.interval_s:g} s per user"
        name = {"light": f"chat, light load: {n} users ({conv} conversations), {pace}",
                "main": f"chat: {n} users ({conv} conversations), {pace}",
                "ticks": f"chat + the page's {run.tick_s:g} s tick: {n} users, {pace}, {run.messages} each"}[label]
        s = _row(table, name, run, b)
        failures += _failures(f"chat {label}", run)
        if s is None:
            continue
        verdict = "met" if s["p95"] < P95_GOAL_MS else "NOT met"
        pushes = sorted(size for size, _ in run.pushes) or [0]
        roots = sorted(root for _, root in run.pushes) or [0]
        table.notes.append(
            f"{name}: goal p95 < {P95_GOAL_MS:.0f} ms {verdict} ({s['p95']:.1f} ms); {n} pages open in "
            f"{run.connect_s:.1f} s (+{(run.rss_connected - run.rss_before) / n * 1024:,.0f} KiB app RSS per page), "
            f"idle with all pages open the app used {run.idle_cores:.2f} cores; while sending {run.cpu_s:.1f} s of "
            f"app CPU = {run.cpu_s / max(1, len(run.sent)) * 1000:.1f} ms per message"
            + (" (ticks included)" if run.tick_s else "")
            + f", {run.cpu_s / run.send_s if run.send_s else 0:.2f} cores; peak tree RSS {run.rss_peak:,.0f} MiB; "
            f"each push to the other page {percentile(pushes, 50) / 1024:.1f} KiB at p50 (max "
            f"{pushes[-1] / 1024:.1f} KiB), of which the root state's router data {percentile(roots, 50) / 1024:.1f} "
            "KiB")
    table.notes += [
        store_note,
        f"baseline: the same client code against a bare asyncio + wsproto echo server in its own process, "
        f"{CLIENTS} clients, {MESSAGES} messages each at the main run's pace, latency = send until the echo is read "
        f"back; its CPU while sending {base.cpu_s:.1f} s",
        "chat: `reflex run --env prod --single-port` in a throwaway clone: one backend worker, in-memory state "
        "manager (no REFLEX_REDIS_URL), presence in process, PostgreSQL, nx-27017 message store in its own process "
        f"(RSS {mongo_before:,.0f} → {mongo_after:,.0f} MiB, not in the app's figures); every run in fresh "
        "conversations",
        "a user = one socket.io connection (asyncio + wsproto, this process) on /messages/<id>, hydrated with its "
        "mp_session token, ChatState.load run (so linked to the conversation's ChatRoom); Send = one send_text "
        "event over the socket, as the page's composer does; latency = from Send until the "
        "socket of the other user in the conversation reads the delta carrying the message",
        f"the page's rx.moment also sends ChatState.tick every {TICK_S:g} s from every open page; left out of the "
        "light and main runs (the issue's protocol), kept in the last run to show what real pages add",
        "server RSS = sum over the process tree (the app: reflex CLI + backend worker): before = before the run's "
        "users connected, after = after the last arrival with every page still open; msgs/s = delivered / (first "
        f"send → last arrival); the clients share the machine's CPUs with the app; idle = {IDLE_S:g} s before "
        "sending",
    ]
    table.notes += [f"✗ BROKEN: {f}" for f in failures]
    if not store_ok:
        failures.append(store_note.removeprefix("✗ BROKEN: "))
    if failures:
        if any(EMPTY_DRAFT in f for f in failures):
            table.notes.append(
                f"'{EMPTY_DRAFT}' = ChatState.send ran before ChatState.stash_draft: the form sends the text as a "
                "socket event and then the upload as an HTTP POST, and under load the POST can be processed first; "
                "the message is lost (the form was already reset)")
        table.notes.append(f"app log tail: {app_log[-1500:]}")
        raise BrokenInvariant(table, failures)
    return table


EMPTY_DRAFT = "Write a message or attach a file."


def _failures(label: str, run: Run) -> list[str]:
    lost = len(run.sent) - len(set(run.sent) & set(run.arrived))
    if not (lost or run.refused or run.problems or run.skipped):
        return []
    empty = sum(EMPTY_DRAFT in p for p in run.problems)
    other = [p for p in run.problems if EMPTY_DRAFT not in p]
    return [f"{label}: {lost} of {len(run.sent)} messages not delivered within {ARRIVAL_TIMEOUT_S:.0f} s of the "
            f"last send; {len(run.refused)} sends whose upload response did not carry their message ({empty} "
            f"answered '{EMPTY_DRAFT}', the others sent the draft stashed before theirs); {run.skipped} not sent "
            f"(send budget); {len(other)} other page problems" + (f", e.g. {[p[:160] for p in other[:2]]}" if other
                                                                  else "")]


def _row(table: Table, name: str, run: Run, base: dict | None) -> dict | None:
    ms = run.latencies_ms()
    rss_ratio = f"{run.rss_after / base['rss']:.1f}×" if base else "1× (baseline)"
    if not ms:
        table.add(name, run.clients, len(run.sent), 0, None, None, None, None, run.rss_before, run.rss_after, None,
                  rss_ratio)
        return None
    s = {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99), "rss": run.rss_after}
    ratio = f"{s['p95'] / base['p95']:,.0f}×" if base else "1× (baseline)"
    table.add(name, run.clients, len(run.sent), len(ms), s["p50"], s["p95"], s["p99"],
              len(ms) / run.send_s if run.send_s else None, run.rss_before, run.rss_after, ratio, rss_ratio)
    return s


if __name__ == "__main__":
    role, arg = (sys.argv[1:] + ["", ""])[:2]
    (ROLES | {"record": record_main})[role](arg)
