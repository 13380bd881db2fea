"""Live chat. Each open conversation links the page's ChatRoom shared state to the conversation,
so a message sent by one participant is pushed over Reflex's WebSocket to every other open page
(across backend processes when REFLEX_REDIS_URL is set). History lives in the chat store; the room
holds only the latest window, older pages stay per viewer."""

from __future__ import annotations

import asyncio
import time

import reflex as rx

from backend.bootstrap import services
from backend.chat.models import ConversationRow, MessageView
from backend.chat.service import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from backend.errors import DomainError, PermissionDenied
from backend.notifications.service import OutboxRow
from state.app_state import FAILED, AppState, FormMixin
from state.uploads import read_uploads

MEMBER_ROLES = ("client", "professional", "admin")
TYPING_SECONDS = 5
ROOM_WINDOW = 200  # messages kept in the shared room; older ones are paged per viewer


class ChatRoom(rx.SharedState):
    """Shared by everyone viewing one conversation."""

    messages: list[MessageView] = []
    typing: dict[str, str] = {}  # user id -> name, while they type
    typing_until: dict[str, float] = {}
    read_at: dict[str, str] = {}  # user id -> ISO time they last read

    @rx.var
    def seen_ids(self) -> list[str]:
        """Messages read by someone other than their sender (read receipts)."""
        return [m.id for m in self.messages
                if any(uid != str(m.sender_id) and at >= m.created_at for uid, at in self.read_at.items())]


class InboxState(AppState):
    """The unread badge in the navigation, refreshed on page loads and every few seconds."""

    unread_total: int = 0

    @rx.event
    def refresh_unread(self):
        tenant, actor = self._tenant(), self._actor()
        if tenant is None or actor is None:
            self.unread_total = 0
            return
        try:
            services().chat.touch(tenant, actor)
            self.unread_total = services().chat.unread_total(tenant, actor)
        except DomainError:
            self.unread_total = 0


class ConversationsState(AppState):
    conversations: list[ConversationRow] = []
    notifications: list[OutboxRow] = []
    loaded: bool = False

    @rx.event
    def load(self):
        self.loaded = False
        tenant, actor, redirect = self._guard(*MEMBER_ROLES)
        if redirect or self.access != "ok":
            return redirect
        self.conversations = services().chat.conversations(tenant, actor)
        self.notifications = services().notifications.recent_in_app(actor)
        self.loaded = True

    @rx.event
    def open_support(self):
        tenant, actor, _ = self._guard(*MEMBER_ROLES)
        try:
            conversation_id = services().chat.support_conversation(tenant, actor)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return rx.redirect(f"/messages/{conversation_id}")


class ChatState(FormMixin, AppState):
    conversation: ConversationRow | None = None
    older: list[MessageView] = []
    has_more: bool = False
    missing: bool = False
    other_online: bool = False

    def _ids(self):
        tenant, actor, _ = self._guard(*MEMBER_ROLES)
        return tenant, actor, self._route_id()

    @rx.event
    async def load(self):
        self._reset_form()
        self.conversation, self.older, self.missing = None, [], False
        tenant, actor, redirect = self._guard(*MEMBER_ROLES)
        if redirect or self.access != "ok":
            yield redirect
            return
        conversation_id = self._route_id()
        try:
            self.conversation = services().chat.conversation(tenant, actor, conversation_id)
            messages, self.has_more = services().chat.history(tenant, actor, conversation_id)
            services().chat.mark_read(tenant, actor, conversation_id)
        except DomainError:
            self.missing = True
            return
        room = await self.get_state(ChatRoom)
        room = await room._link_to(f"t{tenant.id}c{conversation_id}")
        room.messages = messages
        room.read_at = room.read_at | services().chat.read_times(tenant, actor, conversation_id)
        yield InboxState.refresh_unread

    @rx.event
    async def load_older(self):
        tenant, actor, conversation_id = self._ids()
        room = await self.get_state(ChatRoom)
        first = (self.older or room.messages or [None])[0]
        if first is None:
            return
        try:
            page, self.has_more = services().chat.history(tenant, actor, conversation_id, before_id=first.id)
        except DomainError as exc:
            yield rx.toast.error(exc.message)
            return
        self.older = page + self.older

    async def _send(self, body: str, attachments: list[tuple[str, bytes]]):
        tenant, actor, conversation_id = self._ids()
        if self.access != "ok":
            return
        self.busy = True
        yield
        message = await self._call(services().chat.send, tenant, actor, conversation_id, body, attachments)
        if message is FAILED:
            yield rx.toast.error(self.errors.get("body") or self.errors.get("attachments") or self.form_error)
            return
        room = await self.get_state(ChatRoom)
        room.messages = [*room.messages, message][-ROOM_WINDOW:]
        room.typing = {k: v for k, v in room.typing.items() if k != str(actor.id)}
        room.read_at = room.read_at | {str(actor.id): message.created_at}

    @rx.event
    async def send_text(self, form: dict):
        """The composer: text travels with its own event, so nothing can overtake it."""
        async for update in self._send(form.get("body", ""), []):
            yield update

    @rx.event
    async def send_files(self, files: list[rx.UploadFile]):
        """Files chosen with the paperclip are sent at once, as a message of their own. Who is asking is
        checked before any file is read: only a participant's files are read, counted and size-checked
        first, each read no further than its limit (ChatService.send checks all of it again)."""
        tenant, actor, conversation_id = self._ids()
        try:
            if self.access != "ok":
                raise PermissionDenied("Please log in first.")
            await asyncio.to_thread(services().chat.check_may_send, tenant, actor, conversation_id)
            attachments = await read_uploads(files, field="attachments", max_files=MAX_ATTACHMENTS,
                                             max_bytes=MAX_ATTACHMENT_BYTES)
        except DomainError as exc:
            yield rx.toast.error(getattr(exc, "errors", {}).get("attachments") or exc.message)
            yield rx.clear_selected_files("chat-files")
            return
        if not attachments:
            return
        async for update in self._send("", attachments):
            yield update
        yield rx.clear_selected_files("chat-files")

    @rx.event
    async def typing(self, _value: str):
        tenant, actor, conversation_id = self._ids()
        if self.access != "ok":
            return
        try:
            services().chat.typing(tenant, actor, conversation_id)
        except DomainError:
            return
        room = await self.get_state(ChatRoom)
        key = str(actor.id)
        room.typing = room.typing | {key: actor.name.split(" ")[0] or "Someone"}
        room.typing_until = room.typing_until | {key: time.time() + TYPING_SECONDS}

    @rx.event
    async def tick(self, _value=None):
        """Every few seconds while the page is open: read receipts, typing expiry, presence."""
        tenant, actor, conversation_id = self._ids()
        if self.access != "ok" or self.conversation is None:
            return
        room = await self.get_state(ChatRoom)
        now = time.time()
        expired = [k for k, until in room.typing_until.items() if until < now]
        if expired:
            room.typing = {k: v for k, v in room.typing.items() if k not in expired}
            room.typing_until = {k: v for k, v in room.typing_until.items() if k not in expired}
        last_other = next((m for m in reversed(room.messages) if m.sender_id != actor.id), None)
        if last_other and room.read_at.get(str(actor.id), "") < last_other.created_at:
            await asyncio.to_thread(services().chat.mark_read, tenant, actor, conversation_id)
            room.read_at = room.read_at | {str(actor.id): _now_iso()}
        services().chat.touch(tenant, actor)
        other = self.conversation.other_id
        self.other_online = bool(other and services().chat.online(tenant, [other]))

    @rx.var
    def my_id(self) -> str:
        return str(self.user_id)


def _now_iso() -> str:
    from backend.db import utcnow

    return utcnow().isoformat()
