"""Live chat. Each open conversation links the page's ChatRoom shared state to the conversation,
so a message sent by one participant is pushed over Reflex's WebSocket to every other open page
(across backend processes when REFLEX_REDIS_URL is set). History lives in the chat store; the room
holds only the latest window, older pages stay per viewer."""

from __future__ import annotations

import time

import reflex as rx

from backend.bootstrap import services
from backend.chat.models import ConversationRow, MessageView
from backend.chat.service import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from backend.db import utcnow
from backend.errors import DomainError
from backend.identity import Caller, TenantPublic
from backend.notifications.service import OutboxRow
from state.app_state import FAILED, MEMBER_ROLES, AppState, Ctx, FormMixin, requires
from state.uploads import read_uploads

TYPING_SECONDS = 5
TICK_REUSES_CALLER_FOR = 30  # seconds a page's tick trusts the caller its last full check admitted
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


def _unread(tenant: TenantPublic, caller: Caller) -> int:
    """Blocking: mark the caller present and count their unread messages (0 when chat refuses)."""
    try:
        services().chat.touch(tenant, caller)
        return services().chat.unread_total(tenant, caller)
    except DomainError:
        return 0


def _inbox(ctx: Ctx) -> tuple[list[ConversationRow], list[OutboxRow]]:
    return services().chat.conversations(ctx.tenant, ctx.caller), services().notifications.recent_in_app(ctx.caller)


def _open(ctx: Ctx, conversation_id: int):
    """Blocking: the conversation, its latest messages (and whether there are older ones), read by the caller now,
    and when each participant last read it."""
    chat = services().chat
    conversation = chat.conversation(ctx.tenant, ctx.caller, conversation_id)
    messages, has_more = chat.history(ctx.tenant, ctx.caller, conversation_id)
    chat.mark_read(ctx.tenant, ctx.caller, conversation_id)
    return conversation, messages, has_more, chat.read_times(ctx.tenant, ctx.caller, conversation_id)


def _present(ctx: Ctx, other_id: int | None, read_conversation: int = 0) -> bool:
    """Blocking, one trip off the loop per tick: mark the conversation read (when given) and the caller present;
    is the other participant?"""
    if read_conversation:
        services().chat.mark_read(ctx.tenant, ctx.caller, read_conversation)
    services().chat.touch(ctx.tenant, ctx.caller)
    return bool(other_id and services().chat.online(ctx.tenant, [other_id]))


def _refused_files():
    return [rx.toast.error("Please log in first."), rx.clear_selected_files("chat-files")]


class InboxState(AppState):
    """The unread badge in the navigation, refreshed on page loads and every few seconds. Not guarded: polling
    must not change what the page shows (`access`)."""

    unread_total: int = 0

    @rx.event
    async def refresh_unread(self):
        tenant, caller = await self._identify()
        self.unread_total = 0 if tenant is None or caller is None else await self._run(_unread, tenant, caller)


class ConversationsState(AppState):
    conversations: list[ConversationRow] = []
    notifications: list[OutboxRow] = []
    loaded: bool = False

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.conversations, self.notifications = await self._run(_inbox, ctx)
        self.loaded = True

    @rx.event
    @requires(*MEMBER_ROLES)
    async def open_support(self, ctx: Ctx):
        conversation_id = await self._run(services().chat.support_conversation, ctx.tenant, ctx.caller)
        return rx.redirect(f"/messages/{conversation_id}")


class ChatState(FormMixin, AppState):
    conversation: ConversationRow | None = None
    older: list[MessageView] = []
    has_more: bool = False
    missing: bool = False
    other_online: bool = False
    max_attachments: int = MAX_ATTACHMENTS

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.conversation, self.older, self.missing = None, [], False
        conversation_id = self._route_id()
        try:
            self.conversation, messages, self.has_more, read_times = await self._run(_open, ctx, conversation_id)
        except DomainError:
            self.missing = True
            return None
        room = await self.get_state(ChatRoom)
        room = await room._link_to(f"t{ctx.tenant.id}c{conversation_id}")
        room.messages = messages
        room.read_at = room.read_at | read_times
        return InboxState.refresh_unread

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load_older(self, ctx: Ctx):
        room = await self.get_state(ChatRoom)
        first = (self.older or room.messages or [None])[0]
        if first is None:
            return
        page, self.has_more = await self._run(services().chat.history, ctx.tenant, ctx.caller, self._route_id(),
                                              before_id=first.id)
        self.older = page + self.older

    async def _send(self, ctx: Ctx, body: str, attachments: list[tuple[str, bytes]]):
        self.busy = True
        yield
        message = await self._call(services().chat.send, ctx.tenant, ctx.caller, self._route_id(), body, attachments)
        if message is FAILED:
            yield self._refused("body", "attachments")
            return
        room = await self.get_state(ChatRoom)
        room.messages = [*room.messages, message][-ROOM_WINDOW:]
        room.typing = {k: v for k, v in room.typing.items() if k != str(ctx.caller.id)}
        room.read_at = room.read_at | {str(ctx.caller.id): message.created_at}

    @rx.event
    @requires(*MEMBER_ROLES)
    async def send_text(self, ctx: Ctx, form: dict):
        """The composer: text travels with its own event, so nothing can overtake it."""
        async for update in self._send(ctx, form.get("body", ""), []):
            yield update

    async def _attachments(self, ctx: Ctx, files: list[rx.UploadFile]) -> list[tuple[str, bytes]]:
        """Only a participant's files are read: counted and size-checked first, each read no further than its
        limit (ChatService.send checks all of it again)."""
        await self._run(services().chat.check_may_send, ctx.tenant, ctx.caller, self._route_id())
        return await read_uploads(files, field="attachments", max_files=MAX_ATTACHMENTS,
                                  max_bytes=MAX_ATTACHMENT_BYTES)

    @rx.event
    @requires(*MEMBER_ROLES, refusal=_refused_files)
    async def send_files(self, ctx: Ctx, files: list[rx.UploadFile]):
        """Files chosen with the paperclip are sent at once, as a message of their own."""
        attachments = await self._call(self._attachments, ctx, files)
        if attachments is FAILED:
            yield self._refused("attachments")
            yield rx.clear_selected_files("chat-files")
            return
        if not attachments:
            return
        async for update in self._send(ctx, "", attachments):
            yield update
        yield rx.clear_selected_files("chat-files")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def typing(self, ctx: Ctx, _value: str):
        try:
            await self._run(services().chat.typing, ctx.tenant, ctx.caller, self._route_id())
        except DomainError:  # typing is a hint: a refusal shows nothing
            return
        room = await self.get_state(ChatRoom)
        key = str(ctx.caller.id)
        room.typing = room.typing | {key: ctx.caller.name.split(" ")[0] or "Someone"}
        room.typing_until = room.typing_until | {key: time.time() + TYPING_SECONDS}

    @rx.event
    @requires(*MEMBER_ROLES, reuse_seconds=TICK_REUSES_CALLER_FOR)
    async def tick(self, ctx: Ctx, _value=None):
        """Every few seconds while the page is open: read receipts, typing expiry, presence."""
        if self.conversation is None:
            return
        room = await self.get_state(ChatRoom)
        now = time.time()
        expired = [k for k, until in room.typing_until.items() if until < now]
        if expired:
            room.typing = {k: v for k, v in room.typing.items() if k not in expired}
            room.typing_until = {k: v for k, v in room.typing_until.items() if k not in expired}
        me = str(ctx.caller.id)
        last_other = next((m for m in reversed(room.messages) if m.sender_id != ctx.caller.id), None)
        unread = bool(last_other and room.read_at.get(me, "") < last_other.created_at)
        online = await self._run(_present, ctx, self.conversation.other_id, self._route_id() if unread else 0)
        if unread:
            room.read_at = room.read_at | {me: utcnow().isoformat()}
        if online != self.other_online:  # an unchanged var would still be sent to the page
            self.other_online = online

    @rx.var
    def my_id(self) -> str:
        return str(self.user_id)

