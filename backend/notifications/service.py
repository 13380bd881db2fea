"""Notification service: one delivery row per (event, recipient, channel), written in the caller's transaction;
email, SMS and push rows delivered by a job per row, in-app rows shown by being stored. Push has one row per device
the user turned notifications on for (`subscribe_push`).

Who gets what is decided once, in `notify`, from the catalogue (which channels an event may use, which are on by
default), the user's stored preferences (security is locked on), the marketplace's channels and whether the user can
receive on the channel (a suppressed address, or a number that replied STOP, gets a SKIPPED row that says why; SMS
needs a verified phone, push a device). Texts and pushes that can wait are held through the recipient's night (their
time zone, else UTC): both wake a phone on the nightstand.
Delivery (`deliver`) is idempotent under retries: the row is locked while it is handed over, and a row that left
PENDING is never handed over again. A lost enqueue (Redis down) or a retry waiting out its backoff is found again by
`due`, which the periodic sweeper re-enqueues.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.crypto import SecretBox
from backend.db import CrossTenantWrite, Database, utcnow
from backend.errors import DomainError, NotFound, PermissionDenied, TokenInvalid, ValidationFailed
from backend.identity import Caller, Role, TenantPublic, TenantStatus
from backend.notifications.bell import BellFeed
from backend.notifications.catalogue import (GROUP_CHANNELS, GROUP_LABELS, PRO_GROUPS, Event, Group,
                                            default_enabled, locked, spec)
from backend.notifications.models import (FINAL_STATUSES, ONE_TIME_TOKEN, SENT_TOKEN_TEXT, Channel, DeliveryStatus,
                                          EmailSuppression, Notification, NotificationPreference, PushSubscription,
                                          SmsSuppression)
from backend.notifications.ports import (Contact, Contacts, DeliveryError, DevMailbox, DevSmsBox, EmailSender,
                                         OutgoingEmail, OutgoingSms, PermanentDeliveryError, PushMessage, PushSender,
                                         SmsSender, StatusKind, StatusUpdate, SubscriptionGone, format_reference,
                                         parse_reference)
from backend.notifications.push import MAX_DEVICES, PushDevice, clean_label, parse_subscription, push_payload
from backend.notifications.render import Branding, Rendered, absolute_link, render
from backend.tenancy.models import Tenant
from backend.tenancy.service import public_view

# Rows queued before one-time tokens were sealed (migration 0006) still carry `?token=<raw>` in their body: once
# such a message is sent, its token is redacted like the sealed ones.
_LEGACY_TOKEN_IN_LINK = re.compile(r"([?&]token=)[A-Za-z0-9_-]{20,}")

DEV_OUTBOX_ONLY = ("The dev outbox is a development tool: it exists only with ENVIRONMENT=development. "
                   "In production, emails go to their recipients only.")

MAX_ATTEMPTS = 8  # transient failures before a row is given up (FAILED); the admin can retry it
BACKOFF_MAX = timedelta(minutes=10)
# A PENDING row with no next attempt set is normally delivered within seconds of its commit; one still waiting
# after this long lost its enqueue (Redis down, a worker killed before it took the job): the sweeper re-enqueues it.
LOST_AFTER = timedelta(minutes=1)
# SMS is not sent at night, on the recipient's clock (their account's time zone; UTC when unknown): a text written
# between QUIET_START and QUIET_END waits for the next QUIET_END there. Security never waits.
QUIET_START, QUIET_END = time(21, 0), time(8, 0)
SMS_STOPPED = ("Not sent: this number replied STOP to our texts, so the carrier blocks them. Texts resume when the "
               "user verifies the number again.")
PUSH_DEVICE_GONE = "Not sent: the user turned notifications off on this device (or removed it) since."
PUSH_NOT_SET_UP = "Notifications on devices are not set up on this marketplace."
DEFAULT_CHANNELS = "email,sms,in_app"
# Not among the channels a marketplace's admin picks (`channels`, `set_channels`): push is the in-app notification
# shown on the devices each member turned it on for, which costs the marketplace nothing; it needs the deployment's
# VAPID keys (`push` set) and, for each member, a device.
ALWAYS_OFFERED = frozenset({Channel.PUSH})
PUSH_LANDING = "/notifications"  # where a push without a link of its own opens
ADMIN_FAILED_DELIVERIES_PATH = "/admin/notifications"
_CHUNK = 500  # ids per IN (...) list: SQLite limits bound parameters

# The link in an email's footer opens this page, which says what changed; mail clients' one-click button POSTs the
# same token to the REST route (RFC 8058: no page, no confirmation).
UNSUBSCRIBE_PAGE = "/unsubscribe"
UNSUBSCRIBE_ONE_CLICK = "/api/v1/unsubscribe"
# Stands for the unsubscribe link while a message is rendered once for all its recipients: nothing in it is
# escaped by HTML, and no real text contains it.
_UNSUBSCRIBE_STAND_IN = "https://unsubscribe.invalid/0c6e1f0a9d2b4c57a3f8e2d1b7c9a640"
_BELL_PENDING = "bell_pending"  # session.info key: {tenant_id: {user_id: None}} to ring after commit
CHANNEL_WORDS = {Channel.EMAIL: "emails", Channel.SMS: "text messages", Channel.IN_APP: "in-app notifications",
                 Channel.PUSH: "push notifications"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    recipient: str
    subject: str
    body: str
    status: str
    attempts: int
    created_at: str
    channel: str = Channel.EMAIL.value


@dataclass(frozen=True)
class PreferenceCell:
    channel: str
    enabled: bool
    locked: bool  # security: shown, cannot be changed
    available: bool  # the group has events on this channel and the marketplace uses the channel


@dataclass(frozen=True)
class PreferenceRow:
    group: str
    label: str
    cells: list[PreferenceCell]


@dataclass(frozen=True)
class InAppItem:
    id: int
    title: str
    body: str
    link: str
    created_at: str  # ISO 8601, UTC
    read: bool


@dataclass(frozen=True)
class BellView:
    """What a user's bell shows: the unread count and the latest in-app notifications."""
    unread: int
    items: list[InAppItem]


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery the admin should know about: failed for good, or skipped (e.g. the address bounced)."""
    id: int
    event: str
    channel: str
    recipient: str
    subject: str
    status: str
    attempts: int
    last_error: str
    created_at: str  # ISO 8601, UTC
    can_retry: bool


@dataclass(frozen=True)
class AdminAlert:
    """One occurrence of an admin alert (`notify_admins`): what caused it and when it was first written."""
    key: str  # the `key` the alert was written with (e.g. "payout-failed:<order id>:<reason hash>")
    at: datetime
    subject: str


def _local_base_url(slug: str) -> str:
    """The default marketplace URL (development); bootstrap passes the real one per tenant."""
    return "http://localhost:3000"


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _insert_rows_pipelined(connection: sa.Connection, rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """PostgreSQL: the ids first, from the table's sequence in one query, then one prepared INSERT run for every row
    in psycopg's pipeline mode (executemany). Multi-row VALUES statements with RETURNING, SQLAlchemy's bulk path,
    spent most of a 10,000-recipient fan-out in psycopg parsing their tens of thousands of placeholders; COPY would
    be faster still, but PostgreSQL refuses COPY FROM into a table with row-level security. Same connection and
    transaction as the caller's, so the tenant binding (RLS) applies to these inserts too."""
    table = Notification.__table__
    ids = connection.execute(sa.text("SELECT nextval(pg_get_serial_sequence('notification', 'id')) "
                                     "FROM generate_series(1, :n)"), {"n": len(rows)}).scalars().all()
    columns = ["id", *rows[0]]
    quoted = ", ".join('"' + column + '"' for column in columns)  # "group" is a reserved word
    statement = f"INSERT INTO {table.name} ({quoted}) VALUES ({', '.join(['%s'] * len(columns))})"
    values = [(note_id, *(row[c] for c in columns[1:])) for note_id, row in zip(ids, rows, strict=True)]
    try:
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.executemany(statement, values)
    except psycopg.IntegrityError as exc:  # the dedupe race (unique key), reported as SQLAlchemy's bulk path would
        raise IntegrityError(statement, None, exc) from exc
    return list(zip(ids, rows, strict=True))


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def parse_channels(value: str) -> frozenset[Channel]:
    """A tenant's stored channel list ("email,sms,in_app"); unknown words are ignored; in-app is always there.
    Push is not the admin's choice (ALWAYS_OFFERED)."""
    known = {c.value for c in Channel} - ALWAYS_OFFERED
    return frozenset(Channel(word) for word in (w.strip() for w in value.split(",")) if word in known) | {
        Channel.IN_APP}


class NotificationService:
    """`contacts` tells who a user is (accounts implements it); `unsubscribe_secret` signs unsubscribe links (bootstrap
    derives it from SECRET_KEY); `public_url(slug)` is a marketplace's absolute base URL; `status_callback_url` is the
    absolute URL Twilio posts SMS status to ("" = none). `dev_mailbox` / `dev_sms` exist in development only.
    `bell` is rung after a transaction that changed someone's in-app notifications commits (None: no live bell); the
    web process drains the same feed (marketplace_app/bell_push.py). `push` sends web push (None: no VAPID keys, so
    no push channel); `allow_loopback_push` accepts push endpoints on 127.0.0.1/localhost (development and tests:
    the local fake push service), never in production."""

    def __init__(self, db: Database, email: EmailSender, secrets: SecretBox, *, contacts: Contacts,
                 unsubscribe_secret: bytes | str, sms: SmsSender | None = None,
                 dev_mailbox: DevMailbox | None = None, dev_sms: DevSmsBox | None = None,
                 public_url: Callable[[str], str] = _local_base_url, status_callback_url: str = "",
                 clock: Callable[[], datetime] = utcnow, bell: BellFeed | None = None,
                 push: PushSender | None = None, allow_loopback_push: bool = False):
        if not unsubscribe_secret:
            raise ValueError("unsubscribe_secret is required: it signs the one-click unsubscribe links")
        self.db = db
        self.email = email
        self.secrets = secrets
        self.contacts = contacts
        self.sms = sms
        self.dev_mailbox = dev_mailbox
        self.dev_sms = dev_sms
        self.public_url = public_url
        self.status_callback_url = status_callback_url
        self.clock = clock
        self.bell = bell
        self.push = push
        self.allow_loopback_push = allow_loopback_push
        self._unsubscribe_tokens = URLSafeSerializer(unsubscribe_secret, salt="unsubscribe")

    # ------------------------------------------------------------------------------------------------ fan-out

    def notify(self, session: Session, tenant: TenantPublic, event: Event, user_ids: Sequence[int], *,
               key: str, context: Mapping[str, Any], link: str = "", one_time_token: str = "",
               sms_to: str = "") -> list[int]:
        """In the caller's transaction: one row per (user, channel) the event may use, the tenant offers, the user
        has on (security always) and the user can receive (email not suppressed; SMS needs a verified phone, or
        `sms_to` for PHONE_CODE); dedupe_key f"{key}:{user_id}:{channel}" makes a repeated call a no-op.
        In-app rows are SENT at once. SMS outside quiet hours (21:00-08:00 on the recipient's clock, UTC when their
        time zone is unknown) or held: next_attempt_at = the next 08:00 there (security events never wait). A number
        that replied STOP gets a SKIPPED row, security texts included (the carrier would block them); a PHONE_CODE
        goes once the user was told to text START (`advise_start`). Returns the ids of the email/SMS rows to
        deliver; the caller passes them to `jobs.deliver_notification` after commit."""
        return self._notify(session, tenant, Event(event), user_ids, key=key, context=context, link=link,
                            one_time_token=one_time_token, sms_to=sms_to)

    def notify_admins(self, session: Session, tenant: TenantPublic, event: Event, *, key: str,
                      context: Mapping[str, Any], link: str = "") -> list[int]:
        """`notify` to every active admin of the tenant (each per their own preferences)."""
        return self.notify(session, tenant, event, self.contacts.admins(session), key=key, context=context,
                           link=link)

    def _notify(self, session: Session, tenant: TenantPublic, event: Event, user_ids: Sequence[int], *, key: str,
                context: Mapping[str, Any], link: str, one_time_token: str = "", sms_to: str = "",
                only: frozenset[Channel] | None = None) -> list[int]:
        if not key or len(key) > 150:
            raise ValueError("a notification needs a key (what caused it) of at most 150 characters")
        if one_time_token and ONE_TIME_TOKEN not in link:
            raise ValueError("the link must show where the one-time token goes")
        if sms_to and event != Event.PHONE_CODE:
            raise ValueError("sms_to is for phone codes only: other texts go to the user's verified phone")
        if session.info.get("tenant_id") != tenant.id:  # rows go in by Core inserts, past the ORM's write guard
            raise CrossTenantWrite("notify() needs a session bound to the tenant it writes for")
        event_spec = spec(event)
        channels = self._usable_channels(session, tenant, event_spec.channels, event_spec.group)
        if only is not None:
            channels &= only
        ids = list(dict.fromkeys(user_ids))  # once each, in order
        if not channels or not ids:
            return []
        contacts = self.contacts.contacts(session, ids)
        prefs = self._stored_preferences(session, list(contacts), event_spec.group)
        suppressed = self._suppressed(session, [c.email for c in contacts.values()]) \
            if Channel.EMAIL in channels else set()
        stopped = self._stopped(session, [sms_to, *(c.phone for c in contacts.values())], event) \
            if Channel.SMS in channels else set()
        devices = self._devices(session, list(contacts)) if Channel.PUSH in channels else {}
        branding = self._branding(tenant)
        # Rendered once per call, not per recipient (a fan-out reaches thousands): the email with a stand-in for
        # the unsubscribe link, which differs per user and is put in per row.
        shared = render(event, context, branding, link=link,
                        unsubscribe_url=_UNSUBSCRIBE_STAND_IN if not locked(event_spec.group) else "")
        now = self.clock()
        planned: list[dict[str, Any]] = []
        for user_id in ids:
            contact = contacts.get(user_id)
            if contact is None:  # unknown, suspended or deleted: nobody to tell
                continue
            for channel in sorted(channels):
                stored = prefs.get((user_id, channel))
                if locked(event_spec.group) or stored is None:
                    wanted = channel in event_spec.defaults
                else:
                    wanted = stored
                if not wanted:
                    continue
                if channel == Channel.PUSH:  # one row per device (none: push is simply not a channel for them)
                    planned.extend(self._row(tenant, event, event_spec.group, contact, channel, key=key, link=link,
                                             shared=shared, token=one_time_token, sms_to=sms_to,
                                             suppressed=suppressed, stopped=stopped, opted_in=stored is True,
                                             now=now, device=device)
                                   for device in devices.get(user_id, ()))
                    continue
                note = self._row(tenant, event, event_spec.group, contact, channel, key=key, link=link,
                                 shared=shared, token=one_time_token, sms_to=sms_to, suppressed=suppressed,
                                 stopped=stopped, opted_in=stored is True, now=now)
                if note is not None:
                    planned.append(note)
        added = self._insert_new(session, planned)
        self._ring_after_commit(session, tenant.id, [row["user_id"] for _, row in added
                                                     if row["channel"] == Channel.IN_APP])
        return sorted(note_id for note_id, row in added if row["status"] == DeliveryStatus.PENDING
                      and row["channel"] != Channel.IN_APP and row["next_attempt_at"] is None)

    def _row(self, tenant: TenantPublic, event: Event, group: Group, contact: Contact, channel: Channel, *,
             key: str, link: str, shared: Rendered, token: str, sms_to: str, suppressed: set[str],
             stopped: set[str], opted_in: bool, now: datetime,
             device: PushSubscription | None = None) -> dict[str, Any] | None:
        """The delivery row (its column values) for one user on one channel (push: on one `device`), or None when
        the channel does not apply to them. Plain values, inserted in bulk: a fan-out to thousands builds no ORM
        object per row."""
        row: dict[str, Any] = dict(
            tenant_id=tenant.id, user_id=contact.user_id, channel=channel.value, event=event.value,
            group=group.value, dedupe_key=f"{key}:{contact.user_id}:{channel.value}", recipient="",
            subject=shared.subject[:200], body="", html_body="", link=link[:500], unsubscribe_url="",
            sealed_token="", status=DeliveryStatus.PENDING.value, attempts=0, last_error="", provider_id="",
            created_at=now, sent_at=None, next_attempt_at=None, delivered_at=None, read_at=None, device_id=None)
        if channel == Channel.PUSH:  # the in-app title and body, on a device; the link is made absolute when sent
            row.update(recipient=device.label[:254] or f"device {device.id}", device_id=device.id,
                       dedupe_key=f"{key}:{contact.user_id}:push-{device.id}",
                       subject=(shared.title or shared.subject)[:200],
                       body=shared.body.replace(ONE_TIME_TOKEN, SENT_TOKEN_TEXT),
                       link="" if ONE_TIME_TOKEN in link else link[:500])
            zone = _zone(contact.time_zone)
            if group != Group.SECURITY and _in_quiet_hours(now, zone):
                row["next_attempt_at"] = _quiet_end(now, zone)
            return row
        if channel == Channel.IN_APP:
            row.update(recipient=f"user:{contact.user_id}", subject=(shared.title or shared.subject)[:200],
                       body=shared.body.replace(ONE_TIME_TOKEN, SENT_TOKEN_TEXT),
                       link="" if ONE_TIME_TOKEN in link else link[:500],  # a one-time link never sits in the app
                       status=DeliveryStatus.SENT.value, sent_at=now)
            return row
        if channel == Channel.EMAIL:
            unsubscribe = "" if locked(group) else self.unsubscribe_url(tenant, contact.user_id, group, channel)
            row.update(recipient=contact.email, unsubscribe_url=unsubscribe,
                       body=shared.text.replace(_UNSUBSCRIBE_STAND_IN, unsubscribe),
                       html_body=shared.html.replace(_UNSUBSCRIBE_STAND_IN, unsubscribe))
            if contact.email.strip().lower() in suppressed:
                return _skipped(row, "Not sent: this address bounced (the mailbox does not exist). Email resumes "
                                     "when the user changes their email address.")
        else:
            row.update(recipient=sms_to if (event == Event.PHONE_CODE and sms_to) else contact.phone,
                       body=shared.sms)
            if not row["recipient"]:
                if not opted_in:  # SMS is simply not a channel for someone without a verified phone
                    return None
                return _skipped(row, "Not sent: the user turned text messages on but has no verified phone number.")
            if row["recipient"] in stopped:
                return _skipped(row, SMS_STOPPED)
            zone = _zone(contact.time_zone)
            if group != Group.SECURITY and _in_quiet_hours(now, zone):
                row["next_attempt_at"] = _quiet_end(now, zone)
        if token and (ONE_TIME_TOKEN in row["body"] or ONE_TIME_TOKEN in row["html_body"]):
            row["sealed_token"] = self.secrets.seal(token)
        return row

    def _insert_new(self, session: Session, planned: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        """Insert the rows whose dedupe key is new; returns (id, row) of those. Two transactions racing on the same
        key: the unique index stops the second; on PostgreSQL it rolls back to a savepoint, looks again and adds
        only what is still new."""
        if not planned:
            return []
        session.flush()  # the caller's own pending rows first: an error below is about ours only
        for _ in range(3):
            existing = self._existing_keys(session, [r["dedupe_key"] for r in planned])
            fresh = [r for r in planned if r["dedupe_key"] not in existing]
            if not fresh:
                return []
            if not self.db.is_postgres:  # SQLite has one writer at a time: no race to lose
                return self._insert_rows(session, fresh)
            try:
                with session.begin_nested():
                    return self._insert_rows(session, fresh)
            except IntegrityError:
                log.info("notification dedupe race: looking again")
        raise DomainError("These notifications could not be written; please try again.")

    @staticmethod
    def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        connection = session.connection()  # Core, not the ORM's bulk path: several times faster for thousands
        if connection.dialect.name == "postgresql":
            return _insert_rows_pipelined(connection, rows)
        by_key = {r["dedupe_key"]: r for r in rows}
        added: list[tuple[int, dict[str, Any]]] = []
        table = Notification.__table__
        insert = sa.insert(table).returning(table.c.id, table.c.dedupe_key)
        for chunk in _chunks(rows):
            added.extend((note_id, by_key[key]) for note_id, key in connection.execute(insert, list(chunk)).all())
        return added

    @staticmethod
    def _existing_keys(session: Session, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(keys):
            found.update(session.exec(select(Notification.dedupe_key)
                                      .where(col(Notification.dedupe_key).in_(chunk))).all())
        return found

    def _usable_channels(self, session: Session, tenant: TenantPublic, channels: frozenset[Channel],
                         group: Group) -> frozenset[Channel]:
        """The event's channels the marketplace uses (read fresh, not from the cached TenantPublic). Security
        messages (verify email, reset password, phone code, new login) belong to the account, not to the
        marketplace's choice of channels: they always go. SMS needs a configured SMS channel."""
        row = session.get(Tenant, tenant.id)
        offered = parse_channels(row.notification_channels if row else tenant.notification_channels) | ALWAYS_OFFERED
        usable = channels if group == Group.SECURITY else channels & offered
        if self.sms is None:
            usable -= {Channel.SMS}
        if self.push is None:
            usable -= {Channel.PUSH}
        return frozenset(usable)

    @staticmethod
    def _devices(session: Session, user_ids: list[int]) -> dict[int, list[PushSubscription]]:
        """The push devices of these users, oldest first."""
        found: dict[int, list[PushSubscription]] = {}
        for chunk in _chunks(user_ids):
            for device in session.exec(select(PushSubscription).where(col(PushSubscription.user_id).in_(chunk))
                                       .order_by(col(PushSubscription.id))).all():
                found.setdefault(device.user_id, []).append(device)
        return found

    @staticmethod
    def _stored_preferences(session: Session, user_ids: list[int], group: Group) -> dict[tuple[int, str], bool]:
        stored: dict[tuple[int, str], bool] = {}
        for chunk in _chunks(user_ids):
            for pref in session.exec(select(NotificationPreference).where(
                    col(NotificationPreference.user_id).in_(chunk), NotificationPreference.group == group)).all():
                stored[(pref.user_id, pref.channel)] = pref.enabled
        return stored

    @staticmethod
    def _suppressed(session: Session, emails: Iterable[str]) -> set[str]:
        wanted = sorted({e.strip().lower() for e in emails if e})
        found: set[str] = set()
        for chunk in _chunks(wanted):
            found.update(session.exec(select(EmailSuppression.email)
                                      .where(col(EmailSuppression.email).in_(chunk))).all())
        return found

    @staticmethod
    def _stopped(session: Session, phones: Iterable[str], event: Event | str) -> set[str]:
        """The numbers among `phones` that replied STOP: no text of `event` goes to them. A phone code is the way
        back: it goes once the user who asked for it was told to text START first (`advise_start`)."""
        wanted = sorted({p for p in phones if p})
        found: set[str] = set()
        for chunk in _chunks(wanted):
            query = select(SmsSuppression.phone).where(col(SmsSuppression.phone).in_(chunk))
            if event == Event.PHONE_CODE:
                query = query.where(col(SmsSuppression.start_advised_at).is_(None))
            found.update(session.exec(query).all())
        return found

    # ------------------------------------------------------------------------------------------------ STOP

    @staticmethod
    def sms_paused(session: Session, phone: str) -> bool:
        """In the caller's transaction (accounts: the phone card): this number replied STOP to our texts and has
        not been verified again since."""
        return bool(phone) and session.exec(select(SmsSuppression.id).where(SmsSuppression.phone == phone)
                                            .limit(1)).first() is not None

    def advise_start(self, session: Session, phone: str) -> bool:
        """In the caller's transaction, before a phone code is texted to `phone`. True when the number replied STOP
        and its user has not yet been told how to get texts again: the caller refuses, telling them to text START
        first, and this is recorded (commit it) so that their next request goes out and the carrier decides.
        False (text the code) otherwise, as for a number that never replied STOP."""
        row = session.exec(select(SmsSuppression).where(SmsSuppression.phone == phone).with_for_update()).first()
        if row is None or row.start_advised_at is not None:
            return False
        row.start_advised_at = self.clock()
        return True

    @staticmethod
    def resume_sms(session: Session, phone: str) -> None:
        """In the caller's transaction: a texted code to `phone` came back, so texts reach it again (its user texted
        START to the carrier): the STOP is forgotten."""
        if phone:
            session.exec(sa.delete(SmsSuppression).where(SmsSuppression.phone == phone))

    def _stop_texts(self, session: Session, phone: str, reason: str) -> None:
        """The carrier reported a STOP from `phone`: record it (again: a new STOP after START starts over)."""
        if not phone:
            return
        row = session.exec(select(SmsSuppression).where(SmsSuppression.phone == phone).with_for_update()).first()
        if row is not None:
            row.created_at, row.reason, row.start_advised_at = self.clock(), reason[:300], None
            return
        row = SmsSuppression(phone=phone, reason=reason[:300], created_at=self.clock())
        if not self.db.is_postgres:  # SQLite has one writer at a time: no race to lose
            session.add(row)
            session.flush()
            return
        try:
            with session.begin_nested():  # a concurrent report of the same STOP may insert it first
                session.add(row)
        except IntegrityError:
            log.info("STOP from a number already recorded by a concurrent report")

    def _branding(self, tenant: TenantPublic) -> Branding:
        return Branding.for_tenant(tenant, self.public_url(tenant.slug))

    # ------------------------------------------------------------------------------------------------ legacy API

    def recent_in_app(self, actor: Caller, *, limit: int = 10) -> list[OutboxRow]:
        tenant_id = _member(actor)
        with self.db.tenant_session(tenant_id) as session:
            rows = session.exec(select(Notification).where(Notification.user_id == actor.id,
                                                           Notification.channel == Channel.IN_APP)
                                .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
                                .limit(limit)).all()
            return [OutboxRow(id=n.id, recipient=n.recipient, subject=n.subject, body=n.body, status=n.status,
                              attempts=n.attempts, created_at=n.created_at.strftime("%Y-%m-%d %H:%M"))
                    for n in rows]

    def outbox(self, actor: Caller, *, limit: int = 100) -> list[OutboxRow]:
        """Development only: this marketplace's emails as the embedded channel delivered them (links included) and
        its text messages (codes included), so a developer can follow them without a mail server or a phone.
        Nowhere else does a page show other users' messages."""
        if self.dev_mailbox is None:
            raise PermissionDenied(DEV_OUTBOX_ONLY)
        if actor is None or actor.role != Role.ADMIN or actor.tenant_id is None:
            raise PermissionDenied("Only the marketplace admin can read the outbox.")
        with self.db.tenant_session(actor.tenant_id) as session:
            rows = session.exec(
                select(Notification).where(col(Notification.channel).in_([Channel.EMAIL, Channel.SMS]))
                .order_by(col(Notification.created_at).desc(), col(Notification.id).desc()).limit(limit)
            ).all()
            return [
                OutboxRow(id=n.id, recipient=n.recipient, subject=n.subject,
                          body=self._outbox_body(n) if n.channel == Channel.EMAIL else n.body, status=n.status,
                          attempts=n.attempts, created_at=n.created_at.strftime("%Y-%m-%d %H:%M"), channel=n.channel)
                for n in rows
            ]

    def _outbox_body(self, note: Notification) -> str:
        delivered = self.dev_mailbox.read(note.provider_id) if note.provider_id else None
        if delivered is not None:
            return delivered
        return note.body.replace(ONE_TIME_TOKEN, SENT_TOKEN_TEXT if note.status in FINAL_STATUSES
                                 else "[one-time link, added when sent]")

    # ------------------------------------------------------------------------------------------------ delivery

    def deliver(self, tenant_id: int, notification_id: int) -> str:
        """Idempotent (row lock; SENT/DELIVERED/FAILED/SKIPPED rows are never sent again; returns a word).
        Not before next_attempt_at (returns "later"). Email -> EmailSender with List-Unsubscribe /
        List-Unsubscribe-Post headers; SMS -> SmsSender. Transient DeliveryError: attempts += 1, stays PENDING with
        next_attempt_at = backoff (2**attempts s, jitter, max 10 min), re-raised for Celery to retry with
        `retry_in` = seconds until that next_attempt_at; after MAX_ATTEMPTS (8) -> FAILED. PermanentDeliveryError
        -> FAILED with the reason, no raise; an ADMIN_DELIVERY_FAILED in-app alert goes to the admins (in-app only:
        never loops), except for a recipient who replied STOP (`opted_out`): their number stops getting texts, which
        is their choice, not a fault. A text to a number that replied STOP since it was queued is SKIPPED."""
        failure: DeliveryError | None = None
        with self.db.tenant_session(tenant_id) as session:
            note = session.exec(select(Notification).where(Notification.id == notification_id)
                                .with_for_update()).first()
            if note is None:
                log.warning("notification %s not found in tenant %s", notification_id, tenant_id)
                return "missing"
            if note.status in FINAL_STATUSES:
                return "already-sent" if note.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED) \
                    else note.status
            now = self.clock()
            if note.channel == Channel.IN_APP:  # stored = delivered
                note.status, note.sent_at = DeliveryStatus.SENT, now
                return "sent"
            if note.next_attempt_at is not None and note.next_attempt_at > now:
                return "later"
            if note.channel == Channel.EMAIL and self._suppressed(session, [note.recipient]):
                note.status = DeliveryStatus.SKIPPED
                note.last_error = "Not sent: this address bounced (the mailbox does not exist)."
                return "skipped"
            if note.channel == Channel.SMS and self._stopped(session, [note.recipient], note.event):
                note.status, note.last_error, note.sealed_token = DeliveryStatus.SKIPPED, SMS_STOPPED, ""
                return "skipped"
            device = self._device_of(session, note) if note.channel == Channel.PUSH else None
            if note.channel == Channel.PUSH and device is None:
                note.status, note.last_error = DeliveryStatus.SKIPPED, PUSH_DEVICE_GONE
                return "skipped"
            note.attempts += 1
            try:
                note.provider_id = self._hand_over(session, tenant_id, note, device)[:120]
            except SubscriptionGone as exc:  # the browser dropped it: nothing will reach it again
                note.status, note.device_id = DeliveryStatus.SKIPPED, None
                note.last_error = f"Not sent: {exc} The device was removed."[:500]
                session.delete(device)
                log.info("push device %s of tenant %s removed: %s", device.id, tenant_id, exc)
                return "skipped"
            except PermanentDeliveryError as exc:
                reason = str(exc) or type(exc).__name__
                if exc.opted_out and note.channel == Channel.SMS:
                    self._stop_texts(session, note.recipient, reason)
                self._give_up(session, tenant_id, note, reason, alert=not exc.opted_out)
                return "failed"
            except DeliveryError as exc:
                if note.attempts >= MAX_ATTEMPTS:
                    self._give_up(session, tenant_id, note, f"Gave up after {note.attempts} attempts: {exc}")
                    return "failed"
                note.last_error = str(exc)[:500]
                note.next_attempt_at = now + _backoff(note.attempts)
                exc.retry_in = max(0.0, (note.next_attempt_at - now).total_seconds())
                failure = exc
            else:
                note.status, note.sent_at = DeliveryStatus.SENT, now
                note.next_attempt_at, note.last_error = None, ""
                note.sealed_token = ""  # handed over: nothing usable stays at rest
                note.body = _LEGACY_TOKEN_IN_LINK.sub(rf"\1{SENT_TOKEN_TEXT}", note.body)
                if device is not None:
                    device.last_used_at = now
        if failure is not None:
            raise failure
        return "sent"

    def _hand_over(self, session: Session, tenant_id: int, note: Notification,
                   device: PushSubscription | None = None) -> str:
        """Give the row's message to its channel; returns the provider's id. Raises the channel's errors."""
        token = self._token(note)
        reference = format_reference(tenant_id, note.id)
        if note.channel == Channel.PUSH:
            if self.push is None:
                raise DeliveryError("No web push keys are configured (VAPID_* settings), so this push was not sent.")
            tenant = session.get(Tenant, tenant_id)
            url = absolute_link(note.link or PUSH_LANDING, self.public_url(tenant.slug if tenant else ""))
            # The tag is the row's reference: a retry after a timeout (the push service may have taken the first
            # try) replaces the first copy on the device instead of showing it twice.
            payload = push_payload(title=note.subject, body=_with_token(note.body, token), url=url, tag=reference)
            return self.push.send(PushMessage(endpoint=device.endpoint, p256dh=device.p256dh, auth=device.auth,
                                              payload=payload, reference=reference))
        if note.channel == Channel.SMS:
            if self.sms is None:
                raise DeliveryError("No SMS provider is configured, so this text was not sent.")
            callback = f"{self.status_callback_url}?ref={reference}" if self.status_callback_url else ""
            return self.sms.send(OutgoingSms(to=note.recipient, body=_with_token(note.body, token),
                                             reference=reference, status_callback=callback))
        headers: dict[str, str] = {}
        if note.unsubscribe_url:  # RFC 8058: mail clients show an unsubscribe button that POSTs to the link
            one_click = note.unsubscribe_url.replace(f"{UNSUBSCRIBE_PAGE}?", f"{UNSUBSCRIBE_ONE_CLICK}?", 1)
            headers = {"List-Unsubscribe": f"<{one_click}>",
                       "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        tenant = session.get(Tenant, tenant_id)
        return self.email.send(OutgoingEmail(
            recipient=note.recipient, subject=note.subject, text=_with_token(note.body, token),
            html=_with_token(note.html_body, token), reference=reference, headers=headers,
            sender_name=tenant.name if tenant else "", category=note.event))

    def _token(self, note: Notification) -> str:
        if not note.sealed_token:
            return ""
        token = self.secrets.open(note.sealed_token)
        if token is None:  # SECRET_KEY changed since it was queued: the link could never work, so don't send it
            raise PermanentDeliveryError("The one-time link in this message can no longer be opened (was "
                                         "SECRET_KEY changed?); the user has to ask for a new one.")
        return token

    def _give_up(self, session: Session, tenant_id: int, note: Notification, reason: str, *,
                 alert: bool = True) -> None:
        """FAILED for good, and (`alert`) the admins hear of it in the app (never by email: a failing channel must
        not trigger more of itself)."""
        note.status, note.last_error, note.next_attempt_at = DeliveryStatus.FAILED, reason[:500], None
        log.warning("notification %s of tenant %s failed: %s", note.id, tenant_id, reason)
        if alert:
            self._alert_admins(session, tenant_id, note)

    def _alert_admins(self, session: Session, tenant_id: int, note: Notification) -> None:
        tenant_row = session.get(Tenant, tenant_id)
        if tenant_row is None:
            return
        admins = self.contacts.admins(session)
        context = {"channel": note.channel, "recipient": note.recipient, "subject": note.subject,
                   "reason": note.last_error}
        # One alert per channel and reason per hour: a provider that is down, or missing, fails every message the
        # same way, and the admins need to hear it once, not once per message (the list shows them all).
        reason = hashlib.sha256(f"{note.channel}:{note.last_error}".encode()).hexdigest()[:16]
        key = f"delivery-failed:{reason}:{self.clock().astimezone(UTC):%Y%m%d%H}"
        self._notify(session, public_view(tenant_row), Event.ADMIN_DELIVERY_FAILED, admins, key=key,
                     context=context, link=ADMIN_FAILED_DELIVERIES_PATH, only=frozenset({Channel.IN_APP}))

    def due(self, now: datetime | None = None, limit: int = 500) -> list[tuple[int, int]]:
        """(tenant_id, id) of PENDING email/SMS/push rows whose next_attempt_at passed (or None and older than a minute):
        the sweeper re-enqueues them (a lost enqueue, Redis down): nothing is lost. Cross-tenant the way the
        timers are: the active tenants from the platform table, then each tenant's own rows in its own session
        (so row-level security holds; a suspended marketplace's messages wait until it is active again)."""
        now = now or self.clock()
        found: list[tuple[int, int]] = []
        for tenant_id in self._active_tenant_ids():
            if len(found) >= limit:
                break
            with self.db.tenant_session(tenant_id) as session:
                waiting = sa.or_(col(Notification.next_attempt_at) <= now,
                                 sa.and_(col(Notification.next_attempt_at).is_(None),
                                         col(Notification.created_at) <= now - LOST_AFTER))
                ids = session.exec(select(Notification.id).where(
                    Notification.status == DeliveryStatus.PENDING,
                    col(Notification.channel).in_([Channel.EMAIL, Channel.SMS, Channel.PUSH]), waiting)
                    .order_by(col(Notification.id)).limit(limit - len(found))).all()
            found.extend((tenant_id, i) for i in ids)
        return found

    def _active_tenant_ids(self) -> list[int]:
        with self.db.platform_session() as session:
            return list(session.exec(select(Tenant.id).where(Tenant.status == TenantStatus.ACTIVE)
                                     .order_by(Tenant.id)).all())

    def apply_status(self, updates: Sequence[StatusUpdate]) -> int:
        """Provider webhooks (verified by the web layer): DELIVERED -> status delivered; BOUNCED/FAILED -> failed +
        reason; a hard bounce adds an EmailSuppression for the address, a text's recipient who replied STOP an
        SmsSuppression for the number (no admin alert: their choice). Rows found by reference (tenant, id), else
        by provider_id (tenant by tenant, like the timers). Returns rows changed."""
        changed = 0
        for update in updates:
            target = parse_reference(update.reference) or self._find_by_provider_id(update.provider_id)
            if target is None:
                log.info("status update for an unknown message ignored: %r / %r", update.reference,
                         update.provider_id)
                continue
            tenant_id, notification_id = target
            with self.db.tenant_session(tenant_id) as session:
                note = session.exec(select(Notification).where(Notification.id == notification_id)
                                    .with_for_update()).first()
                if note is not None and self._apply_one(session, tenant_id, note, update):
                    changed += 1
        return changed

    def _apply_one(self, session: Session, tenant_id: int, note: Notification, update: StatusUpdate) -> bool:
        if note.channel == Channel.IN_APP:
            return False
        if update.kind == StatusKind.DELIVERED:
            if note.status not in (DeliveryStatus.PENDING, DeliveryStatus.SENT):  # a late "delivered" after a bounce
                return False
            note.status, note.delivered_at = DeliveryStatus.DELIVERED, self.clock()
            return True
        if update.hard_bounce and note.channel == Channel.EMAIL:
            self._suppress(session, update.recipient or note.recipient, update.reason or "hard bounce")
        opted_out = update.opted_out and note.channel == Channel.SMS
        if opted_out:  # the number we texted (ours, not the callback's word for it)
            self._stop_texts(session, note.recipient, update.reason or "replied STOP")
        if note.status in (DeliveryStatus.FAILED, DeliveryStatus.SKIPPED):
            return False
        word = "bounced" if update.kind == StatusKind.BOUNCED else "failed"
        reason = f"The provider reported it {word}" + (f": {update.reason}" if update.reason else ".")
        self._give_up(session, tenant_id, note, reason, alert=not opted_out)
        return True

    @staticmethod
    def _suppress(session: Session, address: str, reason: str) -> None:
        email = address.strip().lower()
        if not email:
            return
        if session.exec(select(EmailSuppression).where(EmailSuppression.email == email)).first() is None:
            session.add(EmailSuppression(email=email, reason=reason[:300]))
            session.flush()

    def _find_by_provider_id(self, provider_id: str) -> tuple[int, int] | None:
        """Rare (our adapters echo the reference): look for the provider's id in each tenant, newest tenants last."""
        if not provider_id:
            return None
        with self.db.platform_session() as session:
            tenant_ids = list(session.exec(select(Tenant.id).order_by(Tenant.id)).all())
        for tenant_id in tenant_ids:
            with self.db.tenant_session(tenant_id) as session:
                found = session.exec(select(Notification.id).where(Notification.provider_id == provider_id)).first()
            if found is not None:
                return tenant_id, found
        return None

    # ------------------------------------------------------------------------------------------------ live bell

    def touch(self, session: Session, tenant_id: int, user_ids: Iterable[int]) -> None:
        """Something these users may have open changed (an order moved, its invoice arrived) without a notification
        for them: their open pages are told after commit, as a bell ring that adds nothing to the bell, so that a
        page showing it (the order page) reloads it. Never if the transaction rolls back."""
        self._ring_after_commit(session, tenant_id, user_ids)

    def _ring_after_commit(self, session: Session, tenant_id: int, user_ids: Iterable[int]) -> None:
        """Ring these users' bells once the session's transaction commits; never if it rolls back (a bell must not
        light up for a notification that does not exist).

        One listener per session gathers every change of the transaction. SQLAlchemy also fires `after_commit` when
        a SAVEPOINT is released (notify() itself uses one on PostgreSQL), so the listener waits for the outermost
        commit rather than being registered `once=True`. A ring that fails is logged: the use case has committed."""
        if self.bell is None:
            return
        users = [u for u in user_ids if u is not None]
        if not users:
            return
        pending = session.info.get(_BELL_PENDING)
        if pending is None:
            pending = session.info[_BELL_PENDING] = {}
            sa.event.listen(session, "after_commit", self._ring_pending)
            sa.event.listen(session, "after_soft_rollback", _forget_pending)
        pending.setdefault(tenant_id, {}).update(dict.fromkeys(users))

    def _ring_pending(self, session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint was released; the transaction goes on
            return
        pending = session.info.pop(_BELL_PENDING, None) or {}
        for tenant_id, users in pending.items():
            try:
                self.bell.publish(tenant_id, list(users))
            except Exception:  # noqa: BLE001 - after commit: nothing may undo the use case
                log.exception("ringing %d bell(s) of tenant %s failed", len(users), tenant_id)

    # ------------------------------------------------------------------------------------------------ push devices

    def push_key(self) -> str:
        """The VAPID public key a browser subscribes with (its `applicationServerKey`); "" when push is not set up."""
        return self.push.public_key if self.push is not None else ""

    def subscribe_push(self, tenant: TenantPublic, caller: Caller, subscription: Mapping[str, Any], *,
                       label: str = "") -> PushDevice:
        """The caller turned notifications on in this browser: `subscription` is its `PushSubscription.toJSON()`
        (ValidationFailed per field otherwise), `label` how the device list names it ("Chrome on Android").
        The same browser again updates its keys; a browser another user of this marketplace had subscribed becomes
        the caller's (their pending pushes to it are not sent: deliver checks the owner). At most MAX_DEVICES per
        user: the one that went longest without a message goes."""
        tenant_id = _member_of(tenant, caller)
        if self.push is None:
            raise DomainError(PUSH_NOT_SET_UP)
        parsed = parse_subscription(subscription, allow_loopback=self.allow_loopback_push)
        with self.db.tenant_session(tenant_id) as session:
            for _ in range(3):
                try:
                    device = self._store_device(session, caller.id, parsed.endpoint, parsed.p256dh, parsed.auth,
                                                clean_label(label))
                    break
                except IntegrityError:  # the same browser subscribing twice at once: the other insert won
                    log.info("push subscription race: looking again")
            else:
                raise DomainError("Notifications could not be turned on; please try again.")
            self._drop_extra_devices(session, caller.id, keep=device.id)
            return _push_device(device)

    def _store_device(self, session: Session, user_id: int, endpoint: str, p256dh: str, auth: str,
                      label: str) -> PushSubscription:
        if not self.db.is_postgres:  # SQLite has one writer at a time: no race to lose
            return self._put_device(session, user_id, endpoint, p256dh, auth, label)
        with session.begin_nested():
            return self._put_device(session, user_id, endpoint, p256dh, auth, label)

    def _put_device(self, session: Session, user_id: int, endpoint: str, p256dh: str, auth: str,
                    label: str) -> PushSubscription:
        device = session.exec(select(PushSubscription).where(PushSubscription.endpoint == endpoint)
                              .with_for_update()).first()
        if device is not None and device.user_id != user_id:
            # Another account on this browser before: its row goes (with the link from its pending messages).
            session.delete(device)
            session.flush()
            device = None
        if device is None:
            device = PushSubscription(user_id=user_id, endpoint=endpoint, p256dh=p256dh, auth=auth, label=label,
                                      created_at=self.clock())
            session.add(device)
        else:
            device.p256dh, device.auth, device.label = p256dh, auth, label
        session.flush()
        return device

    def _drop_extra_devices(self, session: Session, user_id: int, *, keep: int) -> None:
        devices = session.exec(select(PushSubscription).where(PushSubscription.user_id == user_id)).all()
        if len(devices) <= MAX_DEVICES:
            return
        ranked = sorted((d for d in devices if d.id != keep), key=lambda d: (d.last_used_at or d.created_at, d.id))
        for device in ranked[:len(devices) - MAX_DEVICES]:
            session.delete(device)

    def unsubscribe_push(self, tenant: TenantPublic, caller: Caller, endpoint: str) -> bool:
        """The caller turned notifications off in this browser: its device goes (True), if it was theirs."""
        tenant_id = _member_of(tenant, caller)
        if not isinstance(endpoint, str) or not endpoint:
            raise ValidationFailed({"endpoint": "Which device? The browser sent no endpoint."})
        with self.db.tenant_session(tenant_id) as session:
            result = session.execute(sa.delete(PushSubscription).where(
                PushSubscription.endpoint == endpoint, PushSubscription.user_id == caller.id))
            return bool(result.rowcount)

    def remove_push_device(self, tenant: TenantPublic, caller: Caller, device_id: int) -> None:
        """One of the caller's devices, from their list (a lost phone): nothing more is pushed to it."""
        tenant_id = _member_of(tenant, caller)
        with self.db.tenant_session(tenant_id) as session:
            device = session.exec(select(PushSubscription).where(PushSubscription.id == device_id,
                                                                 PushSubscription.user_id == caller.id)).first()
            if device is None:
                raise NotFound("That device is not on your list.")
            session.delete(device)

    def push_devices(self, tenant: TenantPublic, caller: Caller) -> list[PushDevice]:
        """The caller's devices with notifications on, newest first."""
        tenant_id = _member_of(tenant, caller)
        with self.db.tenant_session(tenant_id) as session:
            rows = session.exec(select(PushSubscription).where(PushSubscription.user_id == caller.id)
                                .order_by(col(PushSubscription.created_at).desc(),
                                          col(PushSubscription.id).desc())).all()
            return [_push_device(d) for d in rows]

    @staticmethod
    def _device_of(session: Session, note: Notification) -> PushSubscription | None:
        """A push row's device, if it is still there and still its recipient's (a browser another user of the
        marketplace subscribed since is theirs now)."""
        if note.device_id is None:
            return None
        device = session.get(PushSubscription, note.device_id)
        return device if device is not None and device.user_id == note.user_id else None

    def _configured(self, channel: Channel) -> bool:
        """SMS needs an SMS provider, push VAPID keys."""
        return (channel != Channel.SMS or self.sms is not None) and (channel != Channel.PUSH or self.push is not None)

    # ------------------------------------------------------------------------------------------------ preferences

    def preferences(self, actor: Caller) -> list[PreferenceRow]:
        """The matrix: every group (admin alerts for admins only, leads for professionals only) x every channel."""
        tenant_id = _member(actor)
        offered = self.channels(tenant_id) | ALWAYS_OFFERED
        with self.db.tenant_session(tenant_id) as session:
            stored = {(p.group, p.channel): p.enabled for p in session.exec(
                select(NotificationPreference).where(NotificationPreference.user_id == actor.id)).all()}
        rows = []
        for group in Group:
            if (group == Group.ADMIN and actor.role != Role.ADMIN) or (
                    group in PRO_GROUPS and actor.role != Role.PROFESSIONAL):
                continue
            cells = []
            for channel in Channel:
                available = channel in GROUP_CHANNELS[group] and (
                    group == Group.SECURITY or channel in offered) and self._configured(channel)
                enabled = available and (_group_default(group, channel) if locked(group)
                                         else stored.get((group.value, channel.value),
                                                         _group_default(group, channel)))
                cells.append(PreferenceCell(channel=channel.value, enabled=bool(enabled), locked=locked(group),
                                            available=available))
            rows.append(PreferenceRow(group=group.value, label=GROUP_LABELS[group], cells=cells))
        return rows

    def set_preference(self, actor: Caller, group: str, channel: str, enabled: bool) -> None:
        tenant_id = _member(actor)
        group_, channel_ = _cell(group, channel)
        if group_ == Group.ADMIN and actor.role != Role.ADMIN:
            raise ValidationFailed({"group": "Admin alerts are for marketplace admins."})
        with self.db.tenant_session(tenant_id) as session:
            self._store_preference(session, actor.id, group_, channel_, enabled)

    @staticmethod
    def _store_preference(session: Session, user_id: int, group: Group, channel: Channel, enabled: bool) -> None:
        """Only a choice that differs from the default is stored; choosing the default again removes it."""
        row = session.get(NotificationPreference, (user_id, group.value, channel.value))
        if enabled == _group_default(group, channel):
            if row is not None:
                session.delete(row)
            return
        if row is None:
            session.add(NotificationPreference(user_id=user_id, group=group, channel=channel, enabled=enabled))
        else:
            row.enabled, row.updated_at = enabled, utcnow()

    def unsubscribe_url(self, tenant: TenantPublic, user_id: int, group: Group, channel: Channel) -> str:
        """The signed one-click link that turns off exactly (group, channel) for this user; no login needed."""
        group_, channel_ = Group(group), Channel(channel)
        if locked(group_):
            raise ValueError("security messages have no unsubscribe link: they cannot be turned off")
        token = self._unsubscribe_tokens.dumps([tenant.id, user_id, group_.value, channel_.value])
        return f"{self.public_url(tenant.slug).rstrip('/')}{UNSUBSCRIBE_PAGE}?token={token}"

    def unsubscribe(self, tenant: TenantPublic, token: str) -> str:
        """Turns that one preference off (again: same answer); returns the sentence to show. A link that is not
        ours, or is another marketplace's -> TokenInvalid."""
        invalid = TokenInvalid("This unsubscribe link is not valid. Open the link from the email again, or change "
                               "your notification settings on your account page.")
        try:
            tenant_id, user_id, group, channel = self._unsubscribe_tokens.loads(token or "")
            group_, channel_ = Group(group), Channel(channel)
        except (BadSignature, ValueError, TypeError):
            raise invalid from None
        if tenant_id != tenant.id or not isinstance(user_id, int):
            raise invalid
        label = GROUP_LABELS[group_]
        if locked(group_):
            raise DomainError(f"{label} messages cannot be turned off: they keep your account safe.")
        with self.db.tenant_session(tenant.id) as session:
            if not self.contacts.contacts(session, [user_id]):
                raise invalid  # no such active user here any more
            self._store_preference(session, user_id, group_, channel_, False)
        return f"You will no longer get {CHANNEL_WORDS[channel_]} about {label}."

    # ------------------------------------------------------------------------------------------------ tenant channels

    def channels(self, tenant_id: int) -> frozenset[Channel]:
        """The channels this marketplace uses (in-app always)."""
        with self.db.platform_session() as session:
            row = session.get(Tenant, tenant_id)
            if row is None:
                raise NotFound("No such marketplace.")
            return parse_channels(row.notification_channels)

    def set_channels(self, actor: Caller, channels: Sequence[str]) -> None:
        """The tenant admin picks the channels; in-app cannot be removed (it is where everything shows)."""
        if actor is None or actor.role != Role.ADMIN or actor.tenant_id is None:
            raise PermissionDenied("Only the marketplace admin can choose the notification channels.")
        known = {c.value for c in Channel}
        unknown = [c for c in channels if c not in known]
        if unknown:
            raise ValidationFailed({"channels": f"Unknown channel: {', '.join(map(str, unknown))}. "
                                                f"Choose among email, sms and in_app."})
        chosen = [c.value for c in Channel if (c.value in set(channels) and c not in ALWAYS_OFFERED)
                  or c == Channel.IN_APP]
        with self.db.platform_session() as session:
            row = session.get(Tenant, actor.tenant_id)
            if row is None:
                raise NotFound("No such marketplace.")
            row.notification_channels = ",".join(chosen)

    # ------------------------------------------------------------------------------------------------ in-app inbox

    def inbox(self, actor: Caller, *, unread_only: bool = False, limit: int = 50) -> list[InAppItem]:
        tenant_id = _member(actor)
        query = select(Notification).where(Notification.user_id == actor.id, Notification.channel == Channel.IN_APP)
        if unread_only:
            query = query.where(col(Notification.read_at).is_(None))
        with self.db.tenant_session(tenant_id) as session:
            rows = session.exec(query.order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
                                .limit(max(1, min(limit, 200)))).all()
            return [_in_app_item(n) for n in rows]

    def unread_count(self, actor: Caller) -> int:
        tenant_id = _member(actor)
        with self.db.tenant_session(tenant_id) as session:
            return session.exec(select(sa.func.count()).select_from(Notification).where(
                Notification.user_id == actor.id, Notification.channel == Channel.IN_APP,
                col(Notification.read_at).is_(None))).one()

    def mark_read(self, actor: Caller, notification_id: int) -> None:
        tenant_id = _member(actor)
        with self.db.tenant_session(tenant_id) as session:
            note = session.exec(select(Notification).where(
                Notification.id == notification_id, Notification.user_id == actor.id,
                Notification.channel == Channel.IN_APP)).first()
            if note is None:
                raise NotFound("Notification not found.")
            if note.read_at is None:
                note.read_at = self.clock()
                self._ring_after_commit(session, tenant_id, [actor.id])  # the user's other tabs

    def mark_all_read(self, actor: Caller) -> int:
        tenant_id = _member(actor)
        with self.db.tenant_session(tenant_id) as session:
            result = session.execute(sa.update(Notification).where(
                Notification.user_id == actor.id, Notification.channel == Channel.IN_APP,
                col(Notification.read_at).is_(None)).values(read_at=self.clock()))
            if result.rowcount:
                self._ring_after_commit(session, tenant_id, [actor.id])
            return result.rowcount or 0

    def bell_view(self, tenant_id: int, user_id: int, *, limit: int = 5) -> BellView:
        """The unread count and latest items of one user's bell, for the web process's live push, which runs
        outside any request (no Caller). Platform-internal, and safe: it reads only that user's own in-app rows, in
        their tenant's scope, and the push hands them only to that user's bell, whose token the web layer derives
        from the signed-in session; no client input reaches (tenant_id, user_id)."""
        with self.db.tenant_session(tenant_id) as session:
            mine = (Notification.user_id == user_id, Notification.channel == Channel.IN_APP)
            unread = session.exec(select(sa.func.count()).select_from(Notification).where(
                *mine, col(Notification.read_at).is_(None))).one()
            rows = session.exec(select(Notification).where(*mine).order_by(
                col(Notification.created_at).desc(), col(Notification.id).desc()).limit(max(1, min(limit, 50)))).all()
            return BellView(unread=unread, items=[_in_app_item(n) for n in rows])

    # ------------------------------------------------------------------------------------------------ admin

    def failed_deliveries(self, actor: Caller, limit: int = 100) -> list[DeliveryRow]:
        """This marketplace's email/SMS deliveries that failed or were skipped, newest first (admin only)."""
        tenant_id = _admin(actor)
        with self.db.tenant_session(tenant_id) as session:
            rows = session.exec(select(Notification).where(
                col(Notification.status).in_([DeliveryStatus.FAILED, DeliveryStatus.SKIPPED]),
                Notification.channel != Channel.IN_APP)
                .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
                .limit(max(1, min(limit, 500)))).all()
            return [DeliveryRow(id=n.id, event=n.event, channel=n.channel, recipient=n.recipient, subject=n.subject,
                                status=n.status, attempts=n.attempts, last_error=n.last_error,
                                created_at=_iso(n.created_at), can_retry=n.status == DeliveryStatus.FAILED)
                    for n in rows]

    def failed_queue(self, actor: Caller, limit: int = 20) -> tuple[int, list[DeliveryRow]]:
        """The admin's operations queue: this marketplace's email/SMS deliveries that FAILED (each can be retried on
        the deliveries page; skipped ones cannot, so they are not in it), newest first, and how many in all. At most
        `limit` (<= 100) rows; 0 counts only (the navigation's badge)."""
        tenant_id = _admin(actor)
        limit = max(0, min(limit, 100))
        failed = (Notification.status == DeliveryStatus.FAILED, Notification.channel != Channel.IN_APP)
        with self.db.tenant_session(tenant_id) as session:
            total = session.exec(select(sa.func.count()).select_from(Notification).where(*failed)).one()
            if not total or not limit:
                return total, []
            rows = session.exec(select(Notification).where(*failed).order_by(
                col(Notification.created_at).desc(), col(Notification.id).desc()).limit(limit)).all()
            return total, [DeliveryRow(id=n.id, event=n.event, channel=n.channel, recipient=n.recipient,
                                       subject=n.subject, status=n.status, attempts=n.attempts,
                                       last_error=n.last_error, created_at=_iso(n.created_at), can_retry=True)
                           for n in rows]

    def admin_alerts(self, session: Session, event: Event) -> list[AdminAlert]:
        """In the caller's tenant session: every occurrence of an admin alert event, once per cause (the `key` given
        to notify_admins), oldest first. For a service whose only durable trace of something is the alert it sent
        (a payout the provider refused). Read from the rows of the tenant's current active admins (by the user
        index, not a scan of every message): an occurrence only admins since removed were told of is not found."""
        admins = self.contacts.admins(session)
        if not admins:
            return []
        rows = session.exec(select(Notification.dedupe_key, Notification.created_at, Notification.subject).where(
            Notification.event == Event(event).value, col(Notification.user_id).in_(admins),
            col(Notification.dedupe_key).is_not(None)).order_by(col(Notification.created_at), col(Notification.id))
        ).all()
        found: dict[str, AdminAlert] = {}
        for dedupe_key, at, subject in rows:
            key = dedupe_key.rsplit(":", 2)[0]  # f"{key}:{user_id}:{channel}" (see _row)
            found.setdefault(key, AdminAlert(key=key, at=at, subject=subject))
        return list(found.values())

    def retry(self, actor: Caller, notification_id: int) -> int:
        """FAILED -> PENDING with its attempts reset; returns the id for the caller to enqueue after this commit."""
        tenant_id = _admin(actor)
        with self.db.tenant_session(tenant_id) as session:
            note = session.exec(select(Notification).where(Notification.id == notification_id,
                                                           Notification.channel != Channel.IN_APP)
                                .with_for_update()).first()
            if note is None:
                raise NotFound("Delivery not found.")
            if note.status != DeliveryStatus.FAILED:
                raise DomainError("Only a failed delivery can be retried." if note.status != DeliveryStatus.SKIPPED
                                  else f"This delivery was skipped and cannot be retried: {note.last_error}")
            if note.channel == Channel.EMAIL and self._suppressed(session, [note.recipient]):
                raise DomainError("This address bounced (the mailbox does not exist): email to it stays off until "
                                  "the user changes their email address.")
            if note.channel == Channel.SMS and self._stopped(session, [note.recipient], note.event):
                raise DomainError("This number replied STOP to our texts: texts to it stay off until the user "
                                  "verifies the number again.")
            if note.channel == Channel.PUSH and self._device_of(session, note) is None:
                raise DomainError(PUSH_DEVICE_GONE.replace("Not sent: the", "The") + " It cannot be sent again.")
            note.status, note.attempts, note.next_attempt_at = DeliveryStatus.PENDING, 0, None
            return note.id


def _forget_pending(session: Session, previous_transaction: Any) -> None:
    """The transaction rolled back: its rings go with it (a rolled-back savepoint keeps them: `notify` adds its
    recipients only after its own savepoint succeeded)."""
    if previous_transaction.parent is None:
        session.info.pop(_BELL_PENDING, None)


def _in_app_item(note: Notification) -> InAppItem:
    return InAppItem(id=note.id, title=note.subject, body=note.body, link=note.link, created_at=_iso(note.created_at),
                     read=note.read_at is not None)


def _member(actor: Caller | None) -> int:
    """The caller's tenant; only a signed-in user of a marketplace has notifications."""
    if actor is None or actor.tenant_id is None or actor.is_operator:
        raise PermissionDenied("Please log in first.")
    return actor.tenant_id


def _member_of(tenant: TenantPublic, caller: Caller | None) -> int:
    """The tenant's id, when the caller is a signed-in user of it."""
    if tenant is None or caller is None or caller.is_operator or caller.tenant_id != tenant.id or not caller.id:
        raise PermissionDenied("Please log in first.")
    return tenant.id


def _push_device(device: PushSubscription) -> PushDevice:
    return PushDevice(id=device.id, label=device.label, created_at=_iso(device.created_at),
                      last_used_at=_iso(device.last_used_at), endpoint=device.endpoint)


def _admin(actor: Caller | None) -> int:
    tenant_id = _member(actor)
    if actor.role != Role.ADMIN:
        raise PermissionDenied("Only the marketplace admin can see and retry failed deliveries.")
    return tenant_id


def _cell(group: str, channel: str) -> tuple[Group, Channel]:
    """A preference cell the user may change, or ValidationFailed saying why not."""
    try:
        group_ = Group(group)
    except ValueError:
        raise ValidationFailed({"group": f"Unknown notification group: {group!r}."}) from None
    try:
        channel_ = Channel(channel)
    except ValueError:
        raise ValidationFailed({"channel": f"Unknown channel: {channel!r}."}) from None
    if locked(group_):
        raise ValidationFailed({"group": f"{GROUP_LABELS[group_]} messages cannot be turned off."})
    if channel_ not in GROUP_CHANNELS[group_]:
        raise ValidationFailed({"channel": f"{GROUP_LABELS[group_]} are not sent as {CHANNEL_WORDS[channel_]}."})
    return group_, channel_


def _group_default(group: Group, channel: Channel) -> bool:
    """A cell's value when the user never touched it; only cells the group uses can be on."""
    return channel in GROUP_CHANNELS[group] and default_enabled(group, channel)


def _skipped(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """A row that is never sent, kept so that the admin (and the user) can see why."""
    row.update(status=DeliveryStatus.SKIPPED.value, last_error=reason[:500], html_body="", unsubscribe_url="")
    return row


def _with_token(text: str, token: str) -> str:
    return text.replace(ONE_TIME_TOKEN, token) if token else text


def _backoff(attempts: int) -> timedelta:
    """2**attempts seconds, between half and all of it (jitter: retries of a fan-out do not arrive together),
    at most 10 minutes."""
    ceiling = min(2.0 ** attempts, BACKOFF_MAX.total_seconds())
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _zone(name: str) -> tzinfo:
    """A recipient's time zone by its IANA name; UTC when unknown (or missing from this system's tz database)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r: quiet hours in UTC", name)
        return UTC


def _in_quiet_hours(now: datetime, zone: tzinfo = UTC) -> bool:
    moment = now.astimezone(zone).time()
    return moment >= QUIET_START or moment < QUIET_END


def _quiet_end(now: datetime, zone: tzinfo = UTC) -> datetime:
    """The next QUIET_END on the clock of `zone` after `now`, in UTC. Made from the local date rather than by adding
    a day to an instant, so a night whose clocks change (DST) still ends at 08:00 there."""
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), QUIET_END, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), QUIET_END, tzinfo=zone)
    return end.astimezone(UTC)
