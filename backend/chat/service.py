"""Chat use cases: job conversations (client <-> professional about a request, carried over to its order)
and support conversations (a user <-> the tenant's admins).

Who may read or write is decided here, not by the page: participants only (and, for support, the
tenant's admins); anyone else gets NotFound, so conversation ids reveal nothing. Message text is data,
never markup: it is stored exactly as written and the web layer renders it as text.

Where things live: conversation rows and read marks in the SQL database (tenant-scoped, RLS on
PostgreSQL); messages in the MessageStore (MongoDB); presence/typing/flood counters in Presence (Redis);
attachment files in the ObjectStore.

Someone who is away (not online) when a message comes gets a MESSAGES_DIGEST, never one notification per message:
at most one per conversation per quiet period, the period being the DIGEST_PERIOD slot in which the first message
they have not seen came. Later messages of that period find the digest already written (notify()'s dedupe key)
and add nothing; once they read the conversation, the next unseen message starts a new period.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import replace
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.identity import Caller, Role, TenantPublic
from backend.accounts.models import User, UserStatus
from backend.chat.models import (
    AttachmentView, Conversation, ConversationKind, ConversationRead, ConversationRow, MessageView,
)
from backend.chat.ports import MessageStore, Presence, StoreUnavailable
from backend.db import Database, utcnow
from backend.errors import DomainError, NotFound, PermissionDenied, Throttled, ValidationFailed
from backend.notifications.catalogue import Event
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.orders.facts import order_parties, request_client_id, request_titles
from backend.profiles.models import Profile
from backend.storage.images import ImageTooLarge, load_image, reencode
from backend.storage.ports import ObjectStore

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 4000
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
PAGE_SIZE = 50
FLOOD_LIMIT = 20  # messages ...
FLOOD_WINDOW_S = 10  # ... per this many seconds
NOT_FOUND = "No such conversation."
TOO_FAST = "You're sending messages too quickly. Please wait a few seconds and try again."
ONLY_FILES = "only images (JPEG, PNG, WebP, GIF) and PDF files can be attached"
DIGEST_PERIOD = timedelta(minutes=15)  # one message digest per conversation and recipient per slot this long
EXCERPT_CHARS = 140  # of the newest message, in a digest


# ---------------------------------------------------------------- helpers usable inside other services' transactions


def _dialect_insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def ensure_job_conversation(session: Session, tenant_id: int, *, client_id: int, pro_id: int, request_id: int,
                            order_id: int | None = None) -> int:
    """The job conversation of (request, professional), created if missing; returns its id.

    Runs in the caller's transaction (e.g. QuoteService.send_quote), so the conversation exists
    exactly when the quote does. Concurrent callers converge on one row: INSERT ... ON CONFLICT DO
    NOTHING against uq_conversation_job, then read it back."""
    def find() -> int | None:
        return session.exec(select(Conversation.id).where(Conversation.request_id == request_id,
                                                          Conversation.pro_id == pro_id)).first()

    found = find()
    if found is None:
        insert = _dialect_insert(session)
        session.execute(insert(Conversation).values(
            tenant_id=tenant_id, kind=ConversationKind.JOB, client_id=client_id, pro_id=pro_id,
            request_id=request_id, order_id=order_id, created_at=utcnow()).on_conflict_do_nothing())
        found = find()
    return found


def attach_order(session: Session, tenant_id: int, *, request_id: int, order_id: int) -> int:
    """Carry the accepted professional's conversation over to the new order (created when the pair
    never chatted); returns its id. Runs in the caller's transaction (QuoteService.accept_quote)."""
    order = order_parties(session, order_id)
    if order is None or order.request_id != request_id:
        raise NotFound("No such order.")
    conversation_id = ensure_job_conversation(session, tenant_id, client_id=order.client_id, pro_id=order.pro_id,
                                              request_id=request_id, order_id=order_id)
    session.exec(sa.update(Conversation).where(Conversation.id == conversation_id).values(order_id=order_id))
    return conversation_id


class JobConversations:
    """The two helpers above as orders' Conversations port (backend/orders/ports.py): bootstrap hands this to
    QuoteService, whose transaction they join (chat sits above orders, so orders cannot import them)."""

    ensure_job_conversation = staticmethod(ensure_job_conversation)
    attach_order = staticmethod(attach_order)


def _mark_read(session: Session, tenant_id: int, conversation_id: int, user_id: int, at: datetime) -> None:
    """Upsert the read mark; it only ever moves forward."""
    insert = _dialect_insert(session)
    greatest = sa.func.greatest if session.get_bind().dialect.name == "postgresql" else sa.func.max
    stmt = insert(ConversationRead).values(tenant_id=tenant_id, conversation_id=conversation_id, user_id=user_id,
                                           last_read_at=at)
    column = ConversationRead.__table__.c.last_read_at
    session.execute(stmt.on_conflict_do_update(index_elements=["conversation_id", "user_id"],
                                               set_={"last_read_at": greatest(column, stmt.excluded.last_read_at)}))


# ---------------------------------------------------------------- attachments


_PDF_HEADER = re.compile(rb"%PDF-[12]\.\d")
_PDF_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF")
_PDF_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b")


def _period(at: datetime) -> int:
    """The DIGEST_PERIOD slot a moment falls in (a number: slots since the epoch)."""
    return int(at.timestamp() // DIGEST_PERIOD.total_seconds())


def _excerpt(text: str, attachments: list[dict[str, Any]]) -> str:
    """The newest message as a digest quotes it: its text on one line, cut at a word; a file's name without."""
    line = " ".join(text.split())
    if not line:
        names = [a["name"] for a in attachments]
        return f"Sent {names[0]}" if len(names) == 1 else f"Sent {len(names)} files"
    if len(line) <= EXCERPT_CHARS:
        return line
    return line[:EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _digest_title(tenant: TenantPublic, conversation: Conversation, user_id: int, titles: dict[int, str],
                  member: str) -> str:
    """What the recipient calls the conversation (as its row in their list does); `member`: the name of whoever
    the support conversation is with."""
    if conversation.kind == ConversationKind.SUPPORT:
        return f"{tenant.name} support" if user_id == conversation.client_id else f"Support: {member}"
    return titles.get(conversation.request_id) or (f"Order #{conversation.order_id}" if conversation.order_id
                                                   else "Job")


def looks_like_pdf(data: bytes) -> bool:
    """A minimal structural check, not a full parse: the `%PDF-x.y` header, a `startxref <offset> %%EOF`
    trailer near the end, an offset inside the file that points at a cross-reference table (`xref`) or
    a cross-reference stream object, and a document catalog (`/Root`). Renamed executables, HTML and
    truncated uploads fail it."""
    if not _PDF_HEADER.match(data):
        return False
    trailers = list(_PDF_STARTXREF.finditer(data[-4096:]))
    if not trailers:
        return False
    offset = int(trailers[-1].group(1))
    if not 0 < offset < len(data):
        return False
    at = data[offset:offset + 64].lstrip()
    if not (at.startswith(b"xref") or _PDF_OBJECT.match(at)):
        return False
    return b"/Root" in data and b"endobj" in data


def _display_name(name: str) -> str:
    """The uploader's file name for display (as text): no directories, no control characters."""
    name = re.split(r"[\\/]", str(name or ""))[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:120] or "file"


def _key_name(name: str, ext: str) -> str:
    """A storage-safe name whose extension matches the content, not what the uploader claimed."""
    stem = _display_name(name).rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:60]
    return f"{stem or 'file'}.{ext}"


def _sniff(name: str, data: bytes) -> tuple[bytes, str, str]:
    """(bytes to store, content_type, extension), decided from the content; ValidationFailed for anything
    else. A PDF is stored as sent, once it is structurally a PDF; an image is stored re-encoded from its
    pixels (first frame, upright), so nothing the sender's device wrote into it (EXIF with GPS position
    and camera, XMP, ICC text, comments) reaches the other participant."""
    shown = _display_name(name)
    if not isinstance(data, (bytes, bytearray)):
        raise ValidationFailed({"attachments": f"{shown}: that file could not be read"})
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ValidationFailed({"attachments": f"{shown}: files can be at most "
                                               f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB"})
    if data[:5] == b"%PDF-":
        if not looks_like_pdf(bytes(data)):
            raise ValidationFailed({"attachments": f"{shown}: that PDF is damaged or not a PDF"})
        return bytes(data), "application/pdf", "pdf"
    try:
        image = load_image(bytes(data), field="attachments", max_bytes=MAX_ATTACHMENT_BYTES)
    except ImageTooLarge as exc:
        raise ValidationFailed({"attachments": f"{shown}: {exc.errors['attachments']}"}) from None
    except ValidationFailed:
        raise ValidationFailed({"attachments": f"{shown}: {ONLY_FILES}"}) from None
    return reencode(image)


# ---------------------------------------------------------------- the service


class ChatService:
    """`notifications` and `jobs` tell participants who are away about new messages (MESSAGES_DIGEST); without
    them nobody is told (tests of the chat alone)."""

    def __init__(self, db: Database, store: MessageStore, presence: Presence, objects: ObjectStore,
                 notifications: NotificationService | None = None, jobs: JobQueue | None = None, *,
                 flood_limit: int = FLOOD_LIMIT, flood_window_s: int = FLOOD_WINDOW_S):
        if (notifications is None) != (jobs is None):
            raise ValueError("notifications and jobs go together: digests are written, then delivered by jobs")
        self.db = db
        self.store = store
        self.presence = presence
        self.objects = objects
        self.notifications = notifications
        self.jobs = jobs
        self.flood_limit = flood_limit
        self.flood_window_s = flood_window_s

    # ------------------------------------------------------------ access

    @staticmethod
    def _require_user(actor: Caller | None, tenant: TenantPublic) -> Caller:
        if actor is None or actor.is_operator or actor.tenant_id != tenant.id:
            raise PermissionDenied("Please log in first.")
        return actor

    @staticmethod
    def _may_access(conversation: Conversation, actor: Caller) -> bool:
        if actor.id in (conversation.client_id, conversation.pro_id):
            return True
        return conversation.kind == ConversationKind.SUPPORT and actor.role == Role.ADMIN

    def _load(self, session: Session, actor: Caller, conversation_id: int) -> Conversation:
        """The conversation if the actor takes part in it; NotFound otherwise (whether it exists or not).
        The session is tenant-bound, so another tenant's conversation is never found."""
        try:
            conversation = session.get(Conversation, int(conversation_id))
        except (TypeError, ValueError):
            conversation = None
        if conversation is None or not self._may_access(conversation, actor):
            raise NotFound(NOT_FOUND)
        return conversation

    @staticmethod
    def _admin_ids(session: Session) -> list[int]:
        return list(session.exec(select(User.id).where(User.role == Role.ADMIN, User.status == UserStatus.ACTIVE)
                                 .order_by(User.id)).all())

    def _participants(self, session: Session, conversation: Conversation) -> list[int]:
        if conversation.kind == ConversationKind.SUPPORT:
            return list(dict.fromkeys([conversation.client_id, *self._admin_ids(session)]))
        return [conversation.client_id, conversation.pro_id]

    @staticmethod
    def _names(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
        ids = list(set(user_ids))
        if not ids:
            return {}
        return dict(session.exec(select(Profile.user_id, Profile.full_name).where(Profile.user_id.in_(ids))).all())

    # ------------------------------------------------------------ creating conversations

    def ensure_job_conversation(self, tenant: TenantPublic, client_id: int, pro_id: int, request_id: int) -> int:
        """Idempotent. Called by the system (a professional sent the first quote), so it takes ids, not an
        actor; it still checks that the request belongs to that client in this tenant."""
        with self.db.tenant_session(tenant.id) as session:
            if request_client_id(session, request_id) != client_id:  # None: no such request in this tenant
                raise NotFound("No such request.")
            if pro_id == client_id:
                raise DomainError("A conversation needs two different people.")
            return ensure_job_conversation(session, tenant.id, client_id=client_id, pro_id=pro_id,
                                           request_id=request_id)

    def attach_order(self, tenant: TenantPublic, request_id: int, order_id: int) -> int:
        with self.db.tenant_session(tenant.id) as session:
            return attach_order(session, tenant.id, request_id=request_id, order_id=order_id)

    def support_conversation(self, tenant: TenantPublic, actor: Caller) -> int:
        """The actor's conversation with the marketplace's admins (one per user), created on first use."""
        actor = self._require_user(actor, tenant)
        if actor.role == Role.ADMIN:
            raise PermissionDenied("Admins answer support conversations from the support inbox.")
        with self.db.tenant_session(tenant.id) as session:
            def find() -> int | None:
                return session.exec(select(Conversation.id).where(Conversation.kind == ConversationKind.SUPPORT,
                                                                  Conversation.client_id == actor.id)).first()

            found = find()
            if found is None:
                insert = _dialect_insert(session)
                session.execute(insert(Conversation).values(
                    tenant_id=tenant.id, kind=ConversationKind.SUPPORT, client_id=actor.id,
                    created_at=utcnow()).on_conflict_do_nothing())  # uq_conversation_support_user
                found = find()
            return found

    # ------------------------------------------------------------ listing

    def _rows(self, session: Session, tenant: TenantPublic, actor: Caller,
              conversations: Sequence[Conversation]) -> list[tuple[Conversation, ConversationRow, datetime | None]]:
        ids = [c.id for c in conversations]
        reads = dict(session.exec(select(ConversationRead.conversation_id, ConversationRead.last_read_at).where(
            ConversationRead.user_id == actor.id, ConversationRead.conversation_id.in_(ids))).all()) if ids else {}
        request_ids = {c.request_id for c in conversations if c.request_id}
        titles = request_titles(session, request_ids)
        names = self._names(session, [uid for c in conversations for uid in (c.client_id, c.pro_id) if uid])
        out = []
        for c in conversations:
            if c.kind == ConversationKind.SUPPORT:
                if actor.id == c.client_id:
                    title, other_id, other_name = "Support", None, f"{tenant.name} support"
                else:  # an admin looking at someone's support conversation
                    other_id, other_name = c.client_id, names.get(c.client_id, "A member")
                    title = f"Support: {other_name}"
            else:
                other_id = c.pro_id if actor.id == c.client_id else c.client_id
                other_name = names.get(other_id, "")
                title = titles.get(c.request_id) or (f"Order #{c.order_id}" if c.order_id else "Job")
            row = ConversationRow(id=c.id, kind=c.kind, title=title, other_name=other_name, other_id=other_id,
                                  unread=0, last_message_at=c.last_message_at.isoformat() if c.last_message_at else "",
                                  order_id=c.order_id, request_id=c.request_id)
            out.append((c, row, reads.get(c.id)))
        return out

    def _with_unread(self, tenant: TenantPublic, actor: Caller,
                     rows: list[tuple[Conversation, ConversationRow, datetime | None]]) -> list[ConversationRow]:
        out = []
        store_down = False
        for c, row, read_at in rows:
            unread = 0
            # Nothing new since the last read (the common case): no store query at all.
            if c.last_message_at is not None and (read_at is None or c.last_message_at > read_at) and not store_down:
                try:
                    unread = self.store.count_after(tenant.id, c.id, read_at, exclude_sender=actor.id)
                except StoreUnavailable:
                    # The list itself comes from SQL: show it without counts rather than an error,
                    # and don't wait for the store once per conversation.
                    store_down = True
            out.append(replace(row, unread=unread) if unread else row)
        return out

    def conversations(self, tenant: TenantPublic, actor: Caller) -> list[ConversationRow]:
        """The actor's conversations (admins: also every support conversation), newest activity first."""
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            mine = sa.or_(Conversation.client_id == actor.id, Conversation.pro_id == actor.id)
            if actor.role == Role.ADMIN:
                mine = sa.or_(mine, Conversation.kind == ConversationKind.SUPPORT)
            conversations = session.exec(select(Conversation).where(mine).order_by(
                Conversation.last_message_at.desc().nulls_last(), Conversation.created_at.desc(),
                Conversation.id.desc())).all()
            rows = self._rows(session, tenant, actor, conversations)
        return self._with_unread(tenant, actor, rows)

    def conversation(self, tenant: TenantPublic, actor: Caller, conversation_id: int) -> ConversationRow:
        """One conversation's header row (title, the other party, unread)."""
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            rows = self._rows(session, tenant, actor, [self._load(session, actor, conversation_id)])
        return self._with_unread(tenant, actor, rows)[0]

    def check_may_send(self, tenant: TenantPublic, actor: Caller, conversation_id: int) -> None:
        """Raises (PermissionDenied, NotFound) unless the actor may write in this conversation. The web layer
        asks before it reads an upload, so a stranger's files are never read; send() checks again."""
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            self._load(session, actor, conversation_id)

    def conversation_for_order(self, tenant: TenantPublic, actor: Caller, order_id: int) -> int | None:
        """The job conversation carried over to this order, if the actor takes part in it."""
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            c = session.exec(select(Conversation).where(Conversation.order_id == order_id)).first()
            return c.id if c is not None and self._may_access(c, actor) else None

    def participants(self, tenant: TenantPublic, conversation_id: int) -> list[int]:
        """User ids who read and write the conversation (for support: the user and every active admin).
        For the web layer's push fan-out; it carries no actor, so it never returns message content."""
        with self.db.tenant_session(tenant.id) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFound(NOT_FOUND)
            return self._participants(session, conversation)

    # ------------------------------------------------------------ messages

    def _view(self, doc: dict[str, Any], names: dict[int, str], actor: Caller) -> MessageView:
        attachments = [
            AttachmentView(key=a["key"], name=a.get("name", "file"), content_type=a.get("content_type", ""),
                           size=int(a.get("size", 0)), url=self.objects.signed_url(a["key"]),
                           is_image=str(a.get("content_type", "")).startswith("image/"))
            for a in doc.get("attachments") or []
        ]
        return MessageView(id=doc["id"], conversation_id=doc["conversation_id"], sender_id=doc["sender_id"],
                           sender_name=names.get(doc["sender_id"], ""), body=doc.get("body", ""),
                           attachments=attachments, created_at=doc["created_at"].isoformat(),
                           mine=doc["sender_id"] == actor.id)

    def history(self, tenant: TenantPublic, actor: Caller, conversation_id: int, before_id: str | None = None,
                limit: int = PAGE_SIZE) -> tuple[list[MessageView], bool]:
        """The newest `limit` messages (oldest first), or the `limit` before message `before_id`;
        and whether older ones exist."""
        actor = self._require_user(actor, tenant)
        limit = max(1, min(int(limit), 200))
        with self.db.tenant_session(tenant.id) as session:
            conversation = self._load(session, actor, conversation_id)
            names = self._names(session, self._participants(session, conversation))
        if before_id:
            pivot = self.store.get(tenant.id, conversation.id, str(before_id))
            if pivot is None:
                raise NotFound("No such message.")
            docs = self.store.before(tenant.id, conversation.id, pivot["created_at"], pivot["id"], limit + 1)
        else:
            docs = self.store.latest(tenant.id, conversation.id, limit + 1)
        has_more = len(docs) > limit
        docs = docs[-limit:]
        missing = {d["sender_id"] for d in docs} - names.keys()  # e.g. an admin who has since left
        if missing:
            with self.db.tenant_session(tenant.id) as session:
                names |= self._names(session, missing)
        return [self._view(d, names, actor) for d in docs], has_more

    def send(self, tenant: TenantPublic, actor: Caller, conversation_id: int, body: str,
             attachments: Sequence[tuple[str, bytes]] = ()) -> MessageView:
        """Store one message and return it. Nothing is stored (no message, no file) when anything is
        refused; if the message store is down this raises StoreUnavailable and the message was not sent."""
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            conversation = self._load(session, actor, conversation_id)
            participants = self._participants(session, conversation)
            sender_name = self._names(session, [actor.id]).get(actor.id, actor.name)

        text = body.strip() if isinstance(body, str) else ""
        files = list(attachments or ())
        if not text and not files:
            raise ValidationFailed({"body": "Write a message or attach a file."})
        if len(text) > MAX_BODY_CHARS:
            raise ValidationFailed({"body": f"Messages can be at most {MAX_BODY_CHARS:,} characters "
                                            f"(this one has {len(text):,})."})
        if len(files) > MAX_ATTACHMENTS:
            raise ValidationFailed({"attachments": f"Attach at most {MAX_ATTACHMENTS} files to one message."})
        if not self.presence.allow_message(tenant.id, actor.id, self.flood_limit, self.flood_window_s):
            raise Throttled(TOO_FAST)
        # Check every file before storing any, so a refused file leaves nothing behind.
        checked = [(name, *_sniff(name, data)) for name, data in files]  # images: re-encoded, metadata gone

        stored: list[dict[str, Any]] = []
        try:
            for name, data, content_type, ext in checked:
                key = f"t{tenant.id}/chat/{conversation.id}/{secrets.token_urlsafe(16)}-{_key_name(name, ext)}"
                self.objects.put(key, bytes(data), content_type)
                stored.append({"key": key, "name": _display_name(name), "content_type": content_type,
                               "size": len(data)})
            created_at = utcnow()
            created_at = created_at.replace(microsecond=created_at.microsecond // 1000 * 1000)  # BSON keeps ms
            doc = {"tenant_id": tenant.id, "conversation_id": conversation.id, "sender_id": actor.id,
                   "body": text, "attachments": stored, "created_at": created_at}
            doc["id"] = self.store.insert(doc)
        except BaseException:
            self._discard(stored)
            raise

        with self.db.tenant_session(tenant.id) as session:
            session.exec(sa.update(Conversation).where(
                Conversation.id == conversation.id,
                sa.or_(Conversation.last_message_at.is_(None), Conversation.last_message_at < created_at),
            ).values(last_message_at=created_at))
            _mark_read(session, tenant.id, conversation.id, actor.id, created_at)  # replying = having read

        self.presence.touch(tenant.id, actor.id)
        self._notify_away(tenant, conversation, sender_name or actor.name, _excerpt(text, stored),
                          [u for u in participants if u != actor.id])
        return self._view(doc, {actor.id: sender_name}, actor)

    def _discard(self, stored: list[dict[str, Any]]) -> None:
        for attachment in stored:
            try:
                self.objects.delete(attachment["key"])
            except Exception:  # the original error matters more; an orphan file is only wasted space
                log.exception("chat: could not delete attachment %s after a failed send", attachment["key"])

    def _notify_away(self, tenant: TenantPublic, conversation: Conversation, sender_name: str, excerpt: str,
                     recipients: list[int]) -> None:
        """A MESSAGES_DIGEST to each recipient who is not online, keyed by the DIGEST_PERIOD slot of the first
        message they have not seen: the first unseen message of a quiet period writes the digest, the others of
        that period find it written. Best effort: the message is stored, a lost digest must not make it look
        unsent."""
        if self.notifications is None or not recipients:
            return
        online = self.presence.online(tenant.id, recipients)  # Redis down: nobody online, everyone told
        away = [u for u in recipients if u not in online]
        if not away:
            return
        try:
            for note_id in self._write_digests(tenant, conversation, sender_name, excerpt, away):
                self.jobs.deliver_notification(tenant.id, note_id)  # a lost enqueue: the sweeper sends it later
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("chat: digest for conversation %s in tenant %s failed", conversation.id, tenant.id)

    def _write_digests(self, tenant: TenantPublic, conversation: Conversation, sender_name: str, excerpt: str,
                       away: list[int]) -> list[int]:
        with self.db.tenant_session(tenant.id) as session:
            reads = dict(session.exec(select(ConversationRead.user_id, ConversationRead.last_read_at).where(
                ConversationRead.conversation_id == conversation.id,
                ConversationRead.user_id.in_(away))).all())
            titles = request_titles(session, {conversation.request_id} if conversation.request_id else set())
            member = self._names(session, [conversation.client_id]).get(conversation.client_id, "A member")
        # The store is asked outside any transaction (it may be slow); notify() then writes in one.
        unseen: dict[int, tuple[int, int]] = {}  # user -> (period, count)
        for user_id in away:
            first = self.store.first_after(tenant.id, conversation.id, reads.get(user_id), exclude_sender=user_id)
            if first is None:  # they read it meanwhile
                continue
            count = self.store.count_after(tenant.id, conversation.id, reads.get(user_id), exclude_sender=user_id)
            unseen[user_id] = (_period(first["created_at"]), max(count, 1))
        if not unseen:
            return []
        note_ids: list[int] = []
        with self.db.tenant_session(tenant.id) as session:
            for user_id, (period, count) in unseen.items():
                note_ids += self.notifications.notify(
                    session, tenant, Event.MESSAGES_DIGEST, [user_id],
                    key=f"chat:{conversation.id}:{user_id}:{period}", link=f"/messages/{conversation.id}",
                    context={"sender_name": sender_name or "Someone", "count": count, "excerpt": excerpt,
                             "conversation_title": _digest_title(tenant, conversation, user_id, titles, member)})
        return note_ids

    def mark_read(self, tenant: TenantPublic, actor: Caller, conversation_id: int) -> None:
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            conversation = self._load(session, actor, conversation_id)
            _mark_read(session, tenant.id, conversation.id, actor.id, utcnow())

    def read_times(self, tenant: TenantPublic, actor: Caller, conversation_id: int) -> dict[str, str]:
        """When each participant last read the conversation (user id -> ISO time), for read receipts."""
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            conversation = self._load(session, actor, conversation_id)
            rows = session.exec(select(ConversationRead).where(
                ConversationRead.conversation_id == conversation.id)).all()
        return {str(r.user_id): r.last_read_at.isoformat() for r in rows}

    def unread_total(self, tenant: TenantPublic, actor: Caller) -> int:
        return sum(row.unread for row in self.conversations(tenant, actor))

    # ------------------------------------------------------------ presence

    def typing(self, tenant: TenantPublic, actor: Caller, conversation_id: int) -> None:
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            conversation = self._load(session, actor, conversation_id)
        self.presence.set_typing(tenant.id, conversation.id, actor.id)
        self.presence.touch(tenant.id, actor.id)

    def typing_names(self, tenant: TenantPublic, actor: Caller, conversation_id: int) -> list[str]:
        """Names of the other people typing in the conversation now."""
        actor = self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            conversation = self._load(session, actor, conversation_id)
            allowed = set(self._participants(session, conversation))
            typing = (self.presence.typing(tenant.id, conversation.id) & allowed) - {actor.id}
            names = self._names(session, typing)
        return sorted(names.get(u, "Someone") for u in typing)

    def online(self, tenant: TenantPublic, user_ids: Iterable[int]) -> set[int]:
        return self.presence.online(tenant.id, user_ids)

    def touch(self, tenant: TenantPublic, actor: Caller) -> None:
        actor = self._require_user(actor, tenant)
        self.presence.touch(tenant.id, actor.id)
