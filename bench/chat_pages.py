"""The simulated chat page, and the users who open it.

A user = one tab with /messages/<id> open (a `ReflexPage`: socket.io connection, hydrated, ChatState.load run, so
linked to the conversation's shared ChatRoom). What the page adds to Reflex's protocol (bench/socket_client.py),
learnt from `python -m bench.chat record`:
  * Send = the composer's on_submit: one `send_text` event over the socket with the form as
    `{"form": {"__reflex_form_data__": [["body", text], ["chat_body", text]]}}` (attachments go separately as an
    upload POST to /_upload); the sender's own deltas come back over its socket; everyone else linked to the room
    gets theirs over their socket;
  * every open conversation page also sends ChatState.tick every 2 s (rx.moment); `ChatPage.tick` is one of those;
  * nothing orders the socket event and the upload POST: under load the POST can be processed first, and then
    send() finds no draft ("Write a message or attach a file.", the message is lost) or the one stashed before.

Users and conversations are made through the services in this process, and every user logs in through
`accounts.login` for a session token. The services and tables are imported inside make_pairs: `python -m bench` imports
every bench at start, and the other parts report this process's peak RSS.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from backend.jobqueue import InlineJobQueue
from bench.socket_client import STATE, ReflexPage

PASSWORD = "bench-password-1"
APP_STATE = f"{STATE}.state___app_state____app_state"
CHAT_STATE = f"{APP_STATE}.state___chat____chat_state"
ROOM_STATE = f"{STATE}.reflex___istate___shared____shared_state_base_internal.state___chat____chat_room"
FORM_DATA = "__reflex_form_data__"


class ChatPage(ReflexPage):
    """One user with /messages/<id> open, and the form's send (one send_text event over the socket).
    on_room(messages, arrived) per ChatRoom delta."""

    def __init__(self, port: int, session_token: str, conversation_id: int, on_room):
        path = f"/messages/{conversation_id}"
        super().__init__(port, session_token,
                         {"pathname": path, "asPath": path, "query": {"conversation_id": str(conversation_id)}})
        self.on_room = on_room
        self.pushes: list[tuple[int, int]] = []  # room deltas pushed to this page: (frame chars, root state chars)

    def on_delta(self, delta: dict, arrived: float, size: int) -> None:
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

    def send(self, body: str) -> None:
        """What the composer's on_submit does: one `send_text` event over the socket (files go separately)."""
        self.emit(f"{CHAT_STATE}.send_text", {"form": {FORM_DATA: [["body", body], ["chat_body", body]]}})

    def tick(self) -> None:
        self.emit(f"{CHAT_STATE}.tick", {"_value": time.strftime("%a %b %d %Y %H:%M:%S GMT+0000", time.gmtime())})


def make_pairs(settings, pairs: int) -> tuple[int, list[dict]]:
    """`pairs` client/professional pairs in the seeded default tenant, through services built here for the app's
    `settings` (inline jobs; the app migrated the database); returns (tenant id, [{conversation, client: {id, email,
    token}, pro: {...}}])."""
    from backend.bootstrap import build_services

    svc = build_services(settings, jobs=InlineJobQueue(raise_errors=True), migrate=False)
    try:
        return _make_pairs(svc, pairs)
    finally:
        svc.close()


def _make_pairs(svc, pairs: int) -> tuple[int, list[dict]]:
    """One job conversation per pair (rows inserted as QuoteService.send_quote's ensure_job_conversation would,
    minus the request), every user logged in through accounts.login."""
    from backend.accounts.models import User
    from backend.chat.models import Conversation, ConversationKind
    from backend.db import utcnow
    from backend.identity import Role
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
