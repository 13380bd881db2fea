"""Live chat over Reflex's real WebSocket: simulated users in client/professional pairs, each pair in its own
conversation, each user with the conversation page open (one socket.io connection, hydrated, ChatState.load run, so
linked to the conversation's shared ChatRoom) sending paced messages exactly as the browser does; delivery latency
is from the moment a user "clicks Send" until the delta carrying the message reaches the other user's socket.
Baseline in the same run: a bare WebSocket echo server, same client code, same number of clients, messages and pace.
Runs, each in fresh conversations: light (a few users), main (CLIENTS users, the issue's protocol), and the main
users again with the page's 2 s ChatState.tick on, as real pages do. Afterwards every message sent in any run must
be in the chat store exactly once (read back through pymongo), and every one must have reached the other user;
otherwise BrokenInvariant.

Set-up: a throwaway `git clone` (the .venv and .tools symlinked, as bench/startup.py does) running
`reflex run --env prod --single-port` against a throwaway PostgreSQL database seeded by `backend.seed`, and an
nx-27017 message store in its own process, passed to the app as MONGODB_URL (the app's default in-process store
could not be read by a second process). Users and conversations are made through the services in this process, and
every user logs in through `accounts.login` for a session token. BENCH_CHAT_CLONE=<path> reuses an existing clone
(kept afterwards), to skip the frontend build while working on this file.

What a browser sends (learnt from `python -m bench.chat record`, which opens a conversation in chromium and prints
the socket.io frames; rerun it after a Reflex upgrade):
  * WebSocket GET /_event/?token=<tab token, a uuid>&EIO=4&transport=websocket, subprotocol = Reflex's version;
    the Origin header becomes `router.url` (so it picks the tenant); the session is the HttpOnly `mp_session`
    cookie of the handshake (the server reads it; the page cannot);
  * Engine.IO open `0{...}`, then socket.io CONNECT on namespace /_event whose auth carries the boot event:
    `40/_event,{"event": {"name": "reflex___state____state.hydrate_and_load", "payload": {"vars": {...},
    "hashes": [...]}, "router_data": {"pathname":
    "/messages/<id>", "asPath": ..., "query": {"conversation_id": "<id>"}}}, "state_schema": ...}`; the backend
    answers with deltas and runs the page's on_load (ChatState.load) itself, no further event needed;
  * events: `42/_event,["event", {"name", "payload", "router_data"}]`, deltas back as `42/_event,["event",
    {"delta": {state: {var_rx_state_: value}}, "events": [...]}]`; events the backend returns that name a state
    (ChatState.load yields InboxState.refresh_unread) are sent back by the browser; Engine.IO ping `2` -> pong `3`;
  * Send = the composer's on_submit: one `send_text` event over the socket with the form as
    `{"form": {"__reflex_form_data__": [["body", text], ["chat_body", text]]}}` (attachments go separately as an
    upload POST to /_upload); the sender's own deltas come back over its socket; everyone else linked to the room gets theirs over their socket;
  * every open conversation page also sends ChatState.tick every 2 s (rx.moment); TICK_S below does the same;
  * nothing orders the socket event and the upload POST: under load the POST can be processed first, and then
    send() finds no draft ("Write a message or attach a file.", the message is lost) or the one stashed before.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench import startup
from backend.jobqueue import InlineJobQueue
from bench.login import throwaway_database
from bench.orders import BrokenInvariant
from bench.stats import Table, percentile, tree_memory, tree_rss_mib

REPO = startup.REPO
PASSWORD = "bench-password-1"
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
BUILD_TIMEOUT_S = 420.0  # `reflex run --env prod` in a fresh clone: bun install + frontend build

REFLEX_VERSION = importlib.metadata.version("reflex")
NAMESPACE = "/_event"
STATE = "reflex___state____state"
APP_STATE = f"{STATE}.state___app_state____app_state"
CHAT_STATE = f"{APP_STATE}.state___chat____chat_state"
ROOM_STATE = f"{STATE}.reflex___istate___shared____shared_state_base_internal.state___chat____chat_room"
FORM_DATA = "__reflex_form_data__"
BOUNDARY = "----BenchChatBoundary7MA4YWxkTrZu0gW"

HEADERS = ["run", "clients", "sent", "delivered", "p50 ms", "p95 ms", "p99 ms", "msgs/s",
           "server RSS before MiB", "server RSS after MiB", "p95 ratio to baseline", "RSS after ratio to baseline"]


# ---------------------------------------------------------------- helper servers, each in its own process


class Helper:
    """`python -m bench.chat <role> <arg>` in its own process group; it prints its port on the first line and runs
    until its stdin closes (so it also ends when the bench dies)."""

    def __init__(self, role: str, arg: str = ""):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.chat", role, arg], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the {role} server did not start: {line!r}")
        self.port = int(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)


def _serve_mongo(path: str) -> None:
    """nx-27017 (MongoDB wire protocol on SQLite), the app's embedded store, but outside the app."""
    from backend.chat.adapters.mongo import embedded_mongo

    client, stop = embedded_mongo(Path(path))
    print(client.address[1], flush=True)
    sys.stdin.read()
    stop()


def _serve_echo(_arg: str) -> None:
    """The baseline: a bare WebSocket echo server (asyncio + wsproto; no socket.io, no state, no storage)."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request, TextMessage

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        parts: list[str] = []
        try:
            while data := await reader.read(65536):
                ws.receive_data(data)
                out = bytearray()
                for event in ws.events():
                    if isinstance(event, Request):
                        out += ws.send(AcceptConnection())
                    elif isinstance(event, TextMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            out += ws.send(Message(data="".join(parts)))
                            parts.clear()
                    elif isinstance(event, Ping):
                        out += ws.send(event.response())
                    elif isinstance(event, CloseConnection):
                        out += ws.send(event.response())
                writer.write(out)
                await writer.drain()
        except Exception:  # a client going away mid-frame is not the server's problem
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


# ---------------------------------------------------------------- the app in a throwaway clone


class App:
    """`reflex run --env prod --single-port` in a clone, as tests/e2e/conftest.py starts it, in its own session."""

    def __init__(self, clone: Path, env: dict, log: Path):
        self.clone, self.env, self.log_path = clone, env, log
        self.port = startup.free_port()
        self.env["PUBLIC_URL"] = self.url
        self.runner = startup.MakeRun(clone, self.port, log)  # for its process-tree stop and log tail

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def pid(self) -> int:
        return self.runner.proc.pid

    def start(self, timeout_s: float) -> float:
        argv = [str(self.clone / ".venv/bin/reflex"), "run", "--env", "prod", "--single-port", "--frontend-port",
                str(self.port), "--backend-port", str(self.port), "--loglevel", "warning"]
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.runner.proc = subprocess.Popen(argv, cwd=self.clone, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
        with httpx.Client(timeout=5) as client:
            while time.perf_counter() - t0 < timeout_s:
                if self.runner.proc.poll() is not None:
                    raise RuntimeError(f"the app exited with {self.runner.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(self.url + "/ping").status_code == 200 and client.get(self.url + "/").is_success:
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        raise TimeoutError(f"the app did not answer on {self.url} within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.runner.proc is not None:
            self.runner.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self.runner.log_tail(lines)


@contextmanager
def running_app(log=print):
    """Throwaway database, clone, data dir and message store; the seeded app running. Yields (app, settings for
    services in this process, the message store's helper process, its URL); stops and removes all of it after."""
    from backend.config import Settings

    own_clone = not os.environ.get("BENCH_CHAT_CLONE")
    clone = startup.make_clone() if own_clone else Path(os.environ["BENCH_CHAT_CLONE"])
    try:
        with throwaway_database() as db_url, tempfile.TemporaryDirectory(prefix="mp-bench-chat-") as tmp:
            data_dir = Path(tmp) / "data"
            mongo = Helper("mongo", str(Path(tmp) / "chat"))
            try:
                mongo_url = f"mongodb://127.0.0.1:{mongo.port}/marketplace?directConnection=true"
                env = startup.child_env(clone) | {"DATABASE_URL": db_url, "DATA_DIR": str(data_dir),
                                                 "MONGODB_URL": mongo_url, "ENVIRONMENT": "development",
                                                 "REFLEX_TELEMETRY_ENABLED": "false"}
                subprocess.run([str(clone / ".venv/bin/python"), "-m", "backend.seed"], cwd=clone, env=env,
                               check=True, capture_output=True, timeout=180)
                app = App(clone, env, Path(tmp) / "app.log")
                log(f"  `reflex run --env prod` in {clone} on port {app.port} ...", end=" ", flush=True)
                try:
                    seconds = app.start(BUILD_TIMEOUT_S)
                    log(f"up after {seconds:.0f} s", flush=True)
                    settings = Settings(_env_file=None, database_url=db_url, data_dir=data_dir, redis_url=None,
                                        mongodb_url=mongo_url)
                    yield app, settings, mongo, mongo_url
                finally:
                    app.stop()
            finally:
                mongo.stop()
    finally:
        if own_clone:
            startup.remove_clone(clone)


# ---------------------------------------------------------------- users and conversations through the services


def make_pairs(svc, pairs: int) -> tuple[int, list[dict]]:
    """`pairs` client/professional pairs in the seeded default tenant, one job conversation each (rows inserted as
    QuoteService.send_quote's ensure_job_conversation would, minus the request), every user logged in through
    accounts.login. Returns (tenant id, [{conversation, client: {id, email, token}, pro: {...}}])."""
    from concurrent.futures import ThreadPoolExecutor

    from backend.identity import Role
    from backend.accounts.models import User
    from backend.chat.models import Conversation, ConversationKind
    from backend.db import utcnow
    from backend.profiles.models import Profile

    tenant = svc.tenants.by_slug(svc.settings.default_tenant)
    run = uuid.uuid4().hex[:6]
    pw_hash = svc.accounts.passwords.hash(PASSWORD)
    out = []
    with svc.db.tenant_session(tenant.id) as session:
        for i in range(pairs):
            users = {}
            for role, kind in (("client", Role.CLIENT), ("pro", Role.PROFESSIONAL)):
                user = User(email=f"chat-{role}-{i}-{run}@bench.example", password_hash=pw_hash, role=kind,
                            email_verified_at=utcnow())
                session.add(user)
                session.flush()
                session.add(Profile(user_id=user.id, full_name=f"Bench {role.title()} {i}", city="Austin"))
                users[role] = {"id": user.id, "email": user.email}
            conversation = Conversation(kind=ConversationKind.JOB, client_id=users["client"]["id"],
                                        pro_id=users["pro"]["id"])
            session.add(conversation)
            session.flush()
            out.append({"conversation": conversation.id, **users})

    def login(user: dict) -> None:
        _, user["token"] = svc.accounts.login(tenant, user["email"], PASSWORD, ip="127.0.0.1", user_agent="bench")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # argon2 releases the GIL
        list(pool.map(login, [p[r] for p in out for r in ("client", "pro")]))
    return tenant.id, out


# ---------------------------------------------------------------- WebSocket and socket.io clients


class WebSocket:
    """A minimal WebSocket client (asyncio + wsproto, as the echo server); on_text(text, arrived) per message,
    `arrived` = perf_counter() when the bytes were read."""

    def __init__(self, on_text):
        self.on_text = on_text
        self.closed = False

    async def open(self, port: int, target: str, headers: list[tuple[str, str]] = (), subprotocols=()) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import Request

        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.accepted = asyncio.get_running_loop().create_future()
        self.writer.write(self.ws.send(Request(host=f"localhost:{port}", target=target,
                                               subprotocols=list(subprotocols),
                                               extra_headers=[(k.encode(), v.encode()) for k, v in headers])))
        self.task = asyncio.create_task(self._pump())
        await self.accepted

    async def _pump(self) -> None:
        from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, TextMessage

        parts: list[str] = []
        try:
            while data := await self.reader.read(1 << 16):
                arrived = time.perf_counter()
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, TextMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            text = "".join(parts)
                            parts.clear()
                            self.on_text(text, arrived)
                    elif isinstance(event, AcceptConnection):
                        self.accepted.set_result(True)
                    elif isinstance(event, RejectConnection):
                        raise ConnectionError(f"WebSocket refused: HTTP {event.status_code}")
                    elif isinstance(event, Ping):
                        self.writer.write(self.ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        return
        except (ConnectionError, OSError) as exc:
            if not self.accepted.done():
                self.accepted.set_exception(exc)
        finally:
            self.closed = True
            if not self.accepted.done():
                self.accepted.set_exception(ConnectionError("closed before the handshake"))

    def send_text(self, text: str) -> None:
        from wsproto.events import Message

        if not self.closed:
            self.writer.write(self.ws.send(Message(data=text)))

    async def close(self) -> None:
        from wsproto.events import CloseConnection

        try:
            if not self.closed:
                self.writer.write(self.ws.send(CloseConnection(code=1000)))
        except Exception:
            pass
        self.task.cancel()
        self.writer.close()


class ChatPage:
    """One user with /messages/<id> open: a socket.io connection speaking Reflex's event protocol, and the form's
    send (one send_text event over the socket). on_room(messages, arrived) per ChatRoom delta."""

    def __init__(self, port: int, session_token: str, conversation_id: int, on_room):
        self.port, self.session_token, self.on_room = port, session_token, on_room
        self.tab_token = str(uuid.uuid4())  # the browser's sessionStorage "token"
        path = f"/messages/{conversation_id}"
        self.router = {"pathname": path, "asPath": path, "query": {"conversation_id": str(conversation_id)}}
        self.origin = f"http://localhost:{port}"
        self.loaded = asyncio.Event()
        self.problems: list[str] = []
        self.pushes: list[tuple[int, int]] = []  # room deltas pushed to this page: (frame chars, root state chars)
        self.ws = WebSocket(self._on_text)

    async def open(self) -> None:
        hydrate = {"name": f"{STATE}.hydrate_and_load", "payload": {"vars": {}},
                   "router_data": self.router}
        self._auth = json.dumps({"event": hydrate})
        await self.ws.open(self.port, f"{NAMESPACE}/?token={self.tab_token}&EIO=4&transport=websocket",
                           headers=[("Origin", self.origin), ("User-Agent", "bench-chat"),
                                    ("Cookie", f"mp_session={self.session_token}")],
                           subprotocols=[REFLEX_VERSION])
        await self.loaded.wait()

    def emit(self, name: str, payload: dict | None = None) -> None:
        event = {"name": name, "router_data": self.router} | ({"payload": payload} if payload else {})
        self.ws.send_text(f"42{NAMESPACE}," + json.dumps(["event", event]))

    def _on_text(self, text: str, arrived: float) -> None:
        if text.startswith(f"42{NAMESPACE},"):
            name, data = json.loads(text[len(NAMESPACE) + 3:])
            if name == "event":
                self._update(data, arrived, len(text))
        elif text == "2":  # Engine.IO ping
            self.ws.send_text("3")
        elif text.startswith("0{"):  # Engine.IO open: connect the namespace, the hydrate riding along
            self.ws.send_text(f"40{NAMESPACE},{self._auth}")
        elif text.startswith((f"44{NAMESPACE}", f"41{NAMESPACE}")):
            self.problems.append(f"socket.io: {text[:200]}")
            self.loaded.set()

    def _update(self, update: dict, arrived: float, size: int) -> None:
        delta = update.get("delta") or {}
        room = delta.get(ROOM_STATE)
        if room and "messages_rx_state_" in room:
            self.on_room(room["messages_rx_state_"], arrived)
            if self.loaded.is_set():  # a push from someone else's event, not this page's own load
                self.pushes.append((size, len(json.dumps(delta.get(STATE, {})))))
        chat = delta.get(CHAT_STATE)
        if chat:
            if chat.get("conversation_rx_state_"):
                self.loaded.set()
            elif chat.get("missing_rx_state_"):
                self.problems.append("ChatState.load: conversation missing")
                self.loaded.set()
        for event in update.get("events") or []:  # as the browser's queue: state events go back to the backend
            if str(event.get("name", "")).startswith(STATE):
                self.emit(event["name"], event.get("payload"))
            elif "toast" in json.dumps(event):
                self.problems.append(f"toast: {json.dumps(event)[:200]}")

    def send(self, body: str) -> None:
        """What the composer's on_submit does: one `send_text` event over the socket (files go separately)."""
        self.emit(f"{CHAT_STATE}.send_text", {"form": {FORM_DATA: [["body", body], ["chat_body", body]]}})

    def tick(self) -> None:
        self.emit(f"{CHAT_STATE}.tick", {"_value": time.strftime("%a %b %d %Y %H:%M:%S GMT+0000", time.gmtime())})

    async def close(self) -> None:
        await self.ws.close()


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
    acks: list[float] = field(default_factory=list)  # chat: the sender's upload POST, until its response ended
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


class Sampler:
    """Peak RSS of a process tree, sampled every 0.25 s in a thread (off the clients' event loop)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, tree_rss_mib(self.pid))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


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
    with Sampler(pid) as sampler:
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

            pages.append((f"{me[0]}{pair['conversation']}", ChatPage(app.port, pair[me]["token"], pair["conversation"], on_room)))

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

    limits = httpx.Limits(max_connections=len(pages), max_keepalive_connections=len(pages))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}", limits=limits, timeout=30,
                                 headers={"Host": f"localhost:{app.port}"}) as http:
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
    from backend.bootstrap import build_services

    table = Table(f"Chat delivery over Reflex's WebSocket vs a bare WebSocket echo ({CLIENTS} users in "
                  f"{CLIENTS // 2} conversations, {MESSAGES} messages each)", HEADERS)
    main_pairs, tick_pairs = CLIENTS // 2, CLIENTS // 2 if TICK_S else 0
    echo = Helper("echo")
    try:
        with running_app(log) as (app, settings, mongo, mongo_url):
            svc = build_services(settings, jobs=InlineJobQueue(raise_errors=True), migrate=False)
            try:
                total = main_pairs + tick_pairs + SMALL_CLIENTS // 2
                log(f"  {total} conversations, {2 * total} users logging in ...", flush=True)
                tenant_id, pairs = make_pairs(svc, total)
            finally:
                svc.close()
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
        if label == "main" and run.acks:
            acks = [a * 1000 for a in run.acks]
            table.add("  the sender's upload POST until its response ended (same run)", n, len(acks), None,
                      percentile(acks, 50), percentile(acks, 95), percentile(acks, 99), None, None, None, None,
                      None)
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


# ---------------------------------------------------------------- the browser, recorded once (protocol study)


def record(app: App, pair: dict, log=print) -> None:
    """Open the conversation in chromium as the pair's client, send one message, print the frames."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context()
            ctx.add_cookies([{"name": "mp_session", "value": pair["client"]["token"], "url": app.url}])
            page = ctx.new_page()

            def on_ws(ws):
                log(f"WS open {ws.url}")
                ws.on("framesent", lambda f: log(f"  >> {str(f)[:3000]}"))
                ws.on("framereceived", lambda f: log(f"  << {str(f)[:3000]}"))

            page.on("websocket", on_ws)
            page.on("request", lambda r: "_upload" in r.url and log(
                f"HTTP {r.method} {r.url}\n  headers {r.headers}\n  body {r.post_data!r}"))
            page.on("response", lambda r: "_upload" in r.url and log(f"HTTP {r.status} {r.url}\n  {r.text()[:3000]}"))
            page.goto(f"{app.url}/messages/{pair['conversation']}")
            page.locator("#chat-body").wait_for(timeout=30_000)
            time.sleep(1)
            log("---- typing and sending")
            page.locator("#chat-body").fill("hello from the recording")
            page.locator("#chat-send").click()
            page.locator(".message-body", has_text="hello from the recording").wait_for(timeout=15_000)
            time.sleep(2)
            ctx.close()
        finally:
            browser.close()


def _record_main() -> None:
    from backend.bootstrap import build_services

    with running_app() as (app, settings, _, _):
        svc = build_services(settings, jobs=InlineJobQueue(raise_errors=True), migrate=False)
        try:
            _, pairs = make_pairs(svc, 1)
        finally:
            svc.close()
        record(app, pairs[0])


if __name__ == "__main__":
    role, arg = (sys.argv[1:] + ["", ""])[:2]
    {"mongo": _serve_mongo, "echo": _serve_echo, "record": lambda _: _record_main()}[role](arg)
