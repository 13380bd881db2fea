"""A browser tab's connection to Reflex, without the browser: a minimal WebSocket client and, over it, the
socket.io/Engine.IO exchange Reflex's frontend has with the backend on a page.

What a browser sends (learnt from `python -m bench.chat record`, which opens a conversation in chromium and prints
the socket.io frames; rerun it after a Reflex upgrade):
  * WebSocket GET /_event/?token=<tab token, a uuid>&EIO=4&transport=websocket, subprotocol = Reflex's version;
    the Origin header becomes `router.url` (so it picks the tenant); the session is the HttpOnly `mp_session`
    cookie of the handshake (the server reads it; the page cannot);
  * Engine.IO open `0{...}`, then socket.io CONNECT on namespace /_event whose auth carries the boot event:
    `40/_event,{"event": {"name": "reflex___state____state.hydrate_and_load", "payload": {"vars": {...},
    "hashes": [...]}, "router_data": {"pathname":
    "/messages/<id>", "asPath": ..., "query": {"conversation_id": "<id>"}}}, "state_schema": ...}`; the backend
    answers with deltas and runs the page's on_load itself, no further event needed;
  * events: `42/_event,["event", {"name", "payload", "router_data"}]`, deltas back as `42/_event,["event",
    {"delta": {state: {var_rx_state_: value}}, "events": [...]}]`; events the backend returns that name a state
    (ChatState.load yields InboxState.refresh_unread) are sent back by the browser; Engine.IO ping `2` -> pong `3`.

wsproto is imported where it is used: `python -m bench` imports every bench at start, and the other parts report
this process's peak RSS.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import time
import uuid

REFLEX_VERSION = importlib.metadata.version("reflex")
NAMESPACE = "/_event"
STATE = "reflex___state____state"


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


class ReflexPage:
    """One tab with a page open: a socket.io connection speaking Reflex's event protocol, logged in by its
    `mp_session` cookie. A subclass reads the deltas in on_delta and sets `loaded` once the page's on_load has run;
    open() returns then (or when socket.io refuses the connection, noted in `problems`)."""

    def __init__(self, port: int, session_token: str, router: dict):
        self.port, self.session_token, self.router = port, session_token, router
        self.tab_token = str(uuid.uuid4())  # the browser's sessionStorage "token"
        self.origin = f"http://localhost:{port}"
        self.loaded = asyncio.Event()
        self.problems: list[str] = []
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

    def on_delta(self, delta: dict, arrived: float, size: int) -> None:
        """One update's state delta, `arrived` = perf_counter() when it was read, `size` = its frame's chars."""

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
        self.on_delta(update.get("delta") or {}, arrived, size)
        for event in update.get("events") or []:  # as the browser's queue: state events go back to the backend
            if str(event.get("name", "")).startswith(STATE):
                self.emit(event["name"], event.get("payload"))
            elif "toast" in json.dumps(event):
                self.problems.append(f"toast: {json.dumps(event)[:200]}")

    async def close(self) -> None:
        await self.ws.close()
