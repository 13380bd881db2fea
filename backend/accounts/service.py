"""Auth service use cases: sign-up, login with throttling, sessions, verification, reset,
and the tenant admin's user management. Every call checks the caller's role in here."""

from __future__ import annotations

import hashlib
import math
import time
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.accounts.addresses import throttle_bucket
from backend.accounts.devices import device_label, is_new_place
from backend.identity import Caller, Role, TenantPublic
from backend.accounts.models import AttemptKind, AuthSession, LoginAttempt, NewPassword, OneTimeToken, OperatorAccount, OperatorSession, PhoneVerification, SignUp, TokenPurpose, User, UserRow, UserStatus
from backend.accounts.phones import (
    CODE_TTL, MAX_TRIES, SEND_WINDOW, SENDS_PER_WINDOW, CodeHasher, PhoneError, mask_phone, new_code, normalize_code,
    PhoneView, number_bucket, parse_phone,
)
from backend.accounts.security import Passwords, hash_token, new_token
from backend.accounts.timezones import TimeZoneError, TimeZoneView, guess_time_zone, local_time, parse_time_zone
from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import (
    AuthenticationFailed, DomainError, NotFound, PermissionDenied, Throttled, TokenInvalid, ValidationFailed,
)
from backend.notifications.catalogue import Event
from backend.notifications.ports import JobQueue
from backend.notifications.models import ONE_TIME_TOKEN, Channel
from backend.notifications.service import QUIET_END, QUIET_START, NotificationService
from backend.profiles import ensure_pro_profile
from backend.profiles.models import Profile, ProProfile
from backend.profiles.ports import SearchIndexJobs
from backend.validation import normalize_email, parse_input as _parse

OPERATOR_SCOPE = "operator"
BAD_LOGIN = "Email or password is incorrect."
# SMS codes are throttled installation-wide per number (one phone, however many marketplaces ask to text it);
# the user key is the user's id, unique across tenants. No tenant slug contains ":".
PHONE_SCOPE = "sms:all"
CODE_EXPIRED = "The code expired. Ask for a new one."
# Twilio (the carrier) stops our texts to a number that replied STOP until it texts START to our sender, which we are
# not told of: the first code asked for after a STOP gets this answer, the next one is sent (the carrier decides).
STOPPED_NUMBER = ("This number replied STOP to our texts, so your carrier blocks them. Reply START to our last text "
                  "message, then ask for a code again.")
TOO_MANY_CODES = "Too many wrong codes. Ask for a new one."
# A login from a device or network none of the user's sessions of this long used is told to them (NEW_LOGIN).
NEW_LOGIN_LOOKBACK = timedelta(days=90)


def _lock_key(*parts: str) -> int:
    """A PostgreSQL advisory-lock key (signed 64-bit) for one throttling bucket."""
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big", signed=True)


def _in_minutes(unlock: datetime) -> str:
    minutes = max(1, math.ceil((unlock - utcnow()).total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _first_name(full_name: str, email: str) -> str:
    """How an email greets the user: their first name, else their address's local part."""
    return (full_name or "").split(maxsplit=1)[0] if (full_name or "").strip() else email.partition("@")[0]


def _set_phone(session: Session, user: User, e164: str, verified_at: datetime | None, currency: str) -> None:
    """The account's number and whether it is verified. A professional's public profile shows the "phone verified"
    badge from its own copy of the flag (profiles sit below accounts and do not read users), written here in the
    same transaction (the profile row is made if the professional has none yet)."""
    user.phone_e164, user.phone_verified_at = e164, verified_at
    if user.role == Role.PROFESSIONAL:
        ensure_pro_profile(session, user.id, currency).phone_verified = bool(e164) and verified_at is not None


def _time_zone_view(zone: str | None) -> TimeZoneView:
    return TimeZoneView(name=zone or "", local_time=local_time(zone, utcnow()),
                        quiet_hours=f"{QUIET_START:%H:%M}–{QUIET_END:%H:%M}")


def _user_row(user: User, profile: Profile | None, verified: bool | None) -> UserRow:
    return UserRow(id=user.id, email=user.email, full_name=profile.full_name if profile else "", role=user.role,
                   status=user.status, email_verified=user.email_verified_at is not None,
                   created_at=user.created_at.strftime("%Y-%m-%d"),
                   last_login_at=user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never",
                   verified=bool(verified))


def _require_active_tenant(tenant: TenantPublic) -> None:
    if not tenant.is_active:
        raise DomainError("This marketplace is suspended. Please try again later.")


class AccountJobs(JobQueue, SearchIndexJobs, Protocol):
    """Emails, and the search index: whether a professional can be found depends on their account (active,
    email verified, the admin's verified badge, last active)."""


class AccountService:
    def __init__(self, db: Database, settings: Settings, passwords: Passwords, jobs: AccountJobs,
                 notifications: NotificationService):
        self.db = db
        self.settings = settings
        self.passwords = passwords
        self.jobs = jobs
        self.notifications = notifications
        self.codes = CodeHasher(settings.secret_key.get_secret_value())

    # ------------------------------------------------------------------ sign-up

    def sign_up(self, tenant: TenantPublic, data: dict, *, ip: str = "", user_agent: str = "") -> tuple[Caller, str]:
        """Create the account and its profile, start a session, send the verification email."""
        _require_active_tenant(tenant)
        form = _parse(SignUp, data)
        password_hash = self.passwords.hash(form.password)
        with self.db.tenant_session(tenant.id) as session:
            if session.exec(select(User.id).where(User.email == form.email)).first() is not None:
                raise ValidationFailed({"email": "An account with this email already exists. Log in instead?"})
            user = User(email=form.email, password_hash=password_hash, role=form.role)
            session.add(user)
            try:
                session.flush()
            except sa.exc.IntegrityError:  # a concurrent sign-up with the same email won the race
                raise ValidationFailed({"email": "An account with this email already exists. Log in instead?"}) from None
            session.add(Profile(user_id=user.id, full_name=form.full_name))
            note_ids = self._queue_verification(session, tenant, user, form.full_name)
            token, _ = self._open_session(session, user, ip=ip, user_agent=user_agent)
            actor = self._actor(user, form.full_name)
        self._deliver(tenant, note_ids)
        return actor, token

    def _queue_verification(self, session: Session, tenant: TenantPublic, user: User, full_name: str) -> list[int]:
        hours = self.settings.verify_token_hours
        return self._queue_link_email(session, tenant, user, Event.VERIFY_EMAIL, TokenPurpose.VERIFY_EMAIL,
                                      timedelta(hours=hours), "/verify", full_name=full_name,
                                      expires_in=_count(hours, "hour"))

    def _queue_link_email(self, session: Session, tenant: TenantPublic, user: User, event: Event,
                          purpose: TokenPurpose, ttl: timedelta, page: str, *, full_name: str,
                          expires_in: str) -> list[int]:
        """The email with a one-time link to `page` on this marketplace, in this transaction. The link carries the
        ONE_TIME_TOKEN placeholder: the token itself stays sealed in the delivery row until the email is sent.
        Keyed by the token's row: a re-send is a new message, a retried job the same one."""
        token, row_id = self._issue_token(session, user, purpose, ttl)
        return self.notifications.notify(
            session, tenant, event, [user.id], key=f"{purpose}:{row_id}",
            context={"first_name": _first_name(full_name, user.email), "expires_in": expires_in},
            link=f"{page}?token={ONE_TIME_TOKEN}", one_time_token=token)

    def _deliver(self, tenant: TenantPublic, note_ids: list[int]) -> None:
        """After commit: hand the email/SMS rows to their delivery jobs."""
        for note_id in note_ids:
            self.jobs.deliver_notification(tenant.id, note_id)

    def resend_verification(self, tenant: TenantPublic, actor: Caller, *, ip: str = "") -> None:
        self._require_user(actor, tenant)
        self._admit_email_request(AttemptKind.VERIFY, tenant.slug, actor.email, ip)
        with self.db.tenant_session(tenant.id) as session:
            user = session.get(User, actor.id)
            if user is None:
                raise NotFound("Account not found.")
            if user.email_verified_at is not None:
                raise DomainError("Your email is already confirmed.")
            profile = session.get(Profile, user.id)
            note_ids = self._queue_verification(session, tenant, user, profile.full_name if profile else "")
        self._deliver(tenant, note_ids)

    def verify_email(self, tenant: TenantPublic, token: str) -> str:
        """Confirm the email behind a verification token; returns the confirmed address."""
        with self.db.tenant_session(tenant.id) as session:
            user = self._consume_token(session, token, TokenPurpose.VERIFY_EMAIL)
            newly_verified = user.email_verified_at is None
            if newly_verified:
                user.email_verified_at = utcnow()
            email, user_id, role = user.email, user.id, user.role
        if newly_verified and role == Role.PROFESSIONAL:  # a professional can be found from now on
            self.jobs.index_pro(tenant.id, user_id)
        return email

    # ------------------------------------------------------------------ login / sessions

    def login(self, tenant: TenantPublic, email: str, password: str, *, ip: str = "",
              user_agent: str = "") -> tuple[Caller, str]:
        _require_active_tenant(tenant)
        email = (email or "").strip().lower()[:254]
        if not email or not password:
            raise ValidationFailed({k: "Required" for k, v in (("email", email), ("password", password)) if not v})
        self._admit_login(tenant.slug, email, ip)  # recorded (as a failure until proven right) before the check
        with self.db.tenant_session(tenant.id) as session:
            user = session.exec(select(User).where(User.email == email)).first()
            ok = self.passwords.verify(user.password_hash if user else None, password)
            if ok and user is not None:
                if user.status != UserStatus.ACTIVE:
                    raise AuthenticationFailed("Your account is suspended. Contact the marketplace admin.")
                if self.passwords.needs_rehash(user.password_hash):
                    user.password_hash = self.passwords.hash(password)
                now = utcnow()
                # search documents keep "last active" to the day: only a pro's first login of a day changes it
                reindex = user.role == Role.PROFESSIONAL and (
                    user.last_login_at is None or user.last_login_at.date() != now.date())
                # the first login after sign-up is expected from anywhere: only later ones are compared
                new_place = user.last_login_at is not None and self._from_new_place(session, user, ip, user_agent,
                                                                                   now)
                user.last_login_at = now
                token, session_id = self._open_session(session, user, ip=ip, user_agent=user_agent)
                profile = session.get(Profile, user.id)
                actor = self._actor(user, profile.full_name if profile else "")
                note_ids = self._warn_new_login(session, tenant, user, session_id, ip, user_agent,
                                                now) if new_place else []
        if not ok:
            self._prune_attempts()
            raise AuthenticationFailed(BAD_LOGIN)
        self._clear_failures(tenant.slug, email)
        self._deliver(tenant, note_ids)
        if reindex:
            self.jobs.index_pro(tenant.id, actor.id)
        return actor, token

    def _open_session(self, session: Session, user: User, *, ip: str, user_agent: str) -> tuple[str, int]:
        """A new session: its token (for the cookie) and its row id."""
        token, token_hash = new_token()
        row = AuthSession(user_id=user.id, token_hash=token_hash, ip=ip[:64], user_agent=user_agent[:255],
                          expires_at=utcnow() + timedelta(days=self.settings.session_days))
        session.add(row)
        session.flush()
        return token, row.id

    @staticmethod
    def _from_new_place(session: Session, user: User, ip: str, user_agent: str, now: datetime) -> bool:
        """Whether this login's device or network is one none of the user's sessions of the last
        NEW_LOGIN_LOOKBACK used (read before this login's own session is added)."""
        seen = session.exec(select(AuthSession.ip, AuthSession.user_agent).where(
            AuthSession.user_id == user.id, AuthSession.created_at >= now - NEW_LOGIN_LOOKBACK)).all()
        return is_new_place(ip, user_agent, [(address or "", agent or "") for address, agent in seen])

    def _warn_new_login(self, session: Session, tenant: TenantPublic, user: User, session_id: int, ip: str,
                        user_agent: str, now: datetime) -> list[int]:
        """NEW_LOGIN (security: always sent), keyed by the session it opened."""
        return self.notifications.notify(
            session, tenant, Event.NEW_LOGIN, [user.id], key=f"login:{session_id}",
            context={"when": f"{now:%b} {now.day}, {now:%Y at %H:%M} UTC", "device": device_label(user_agent),
                     "ip": ip or "unknown"},
            link="/forgot")

    def resolve_session(self, tenant: TenantPublic, token: str) -> Caller | None:
        """The user behind a session token on this tenant, or None (unknown, expired, revoked,
        suspended user, or a token from another tenant)."""
        if not token or not tenant.is_active:
            return None
        with self.db.tenant_session(tenant.id) as session:
            row = session.exec(
                select(AuthSession, User, Profile)
                .join(User, User.id == AuthSession.user_id)
                .join(Profile, Profile.user_id == User.id, isouter=True)
                .where(AuthSession.token_hash == hash_token(token))
            ).first()
            if row is None:
                return None
            auth, user, profile = row
            if auth.revoked_at is not None or auth.expires_at <= utcnow() or user.status != UserStatus.ACTIVE:
                return None
            return self._actor(user, profile.full_name if profile else "")

    def claim_browser_session(self, tenant: TenantPublic, token: str) -> Caller | None:
        """The session behind a login ticket, once: the first claim marks it, so a copied ticket (a script that
        saw it, a replay) opens nothing later. None also for an unknown, expired or revoked session."""
        if not token or not tenant.is_active:
            return None
        with self.db.tenant_session(tenant.id) as session:
            claimed = session.execute(
                sa.update(AuthSession).where(AuthSession.token_hash == hash_token(token),
                                             AuthSession.cookie_claimed_at.is_(None))
                .values(cookie_claimed_at=utcnow())).rowcount
        return self.resolve_session(tenant, token) if claimed == 1 else None

    def logout(self, tenant: TenantPublic, token: str) -> None:
        if not token:
            return
        with self.db.tenant_session(tenant.id) as session:
            auth = session.exec(select(AuthSession).where(AuthSession.token_hash == hash_token(token))).first()
            if auth is not None and auth.revoked_at is None:
                auth.revoked_at = utcnow()

    # ------------------------------------------------------------------ throttling
    #
    # Every throttled action writes its row *before* it is evaluated and counts in the same transaction,
    # serialized per account and per address: of N concurrent attempts at one account at most the limit
    # are admitted (an argon2 check, an email sent); the others are refused without doing that work and
    # leave no row (the exception rolls it back). A login's row counts as a failure unless the password
    # was right, and then the account's login rows are deleted.

    def _admit(self, kind: AttemptKind, scope: str, email: str, bucket: str, *, window: timedelta,
               per_account: int, per_address: int, refusal) -> None:
        """Record one attempt, or raise Throttled(refusal("account"|"address", unlock_time)). `email` is the
        account's key, `bucket` the second one (the client address's bucket, or "" for none)."""
        since = utcnow() - window
        with self.db.platform_session() as session:
            if self.db.is_postgres:
                # Transaction-scoped advisory locks, taken in a fixed order (no two admissions wait on
                # each other in a cycle). SQLite serializes all writers already: the INSERT below takes
                # the database's write lock until this transaction ends.
                keys = {_lock_key(kind, scope, "email", email)} | ({_lock_key(kind, scope, "ip", bucket)} if bucket else set())
                for key in sorted(keys):
                    session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            session.add(LoginAttempt(scope=scope, kind=kind, email=email, ip=bucket))
            session.flush()

            def attempts(*conds):
                return session.exec(
                    select(sa.func.count(), sa.func.min(LoginAttempt.at))
                    .where(LoginAttempt.scope == scope, LoginAttempt.kind == kind, LoginAttempt.at >= since, *conds)
                ).one()

            count, first = attempts(LoginAttempt.email == email)
            if count > per_account:  # this attempt included
                raise Throttled(refusal("account", first + window))
            if bucket:
                count, first = attempts(LoginAttempt.ip == bucket)
                if count > per_address:
                    raise Throttled(refusal("address", first + window))

    def _admit_login(self, scope: str, email: str, ip: str) -> None:
        def refusal(what: str, unlock: datetime) -> str:
            whom = "this account" if what == "account" else "your network address"
            return (f"Too many failed login attempts for {whom}. "
                    f"Try again in {_in_minutes(unlock)}, or reset your password.")

        self._admit(AttemptKind.LOGIN, scope, email, throttle_bucket(ip) if ip else "",
                    window=timedelta(minutes=self.settings.login_lockout_minutes),
                    per_account=self.settings.login_max_failures_per_account,
                    per_address=self.settings.login_max_failures_per_address, refusal=refusal)

    def _admit_email_request(self, kind: AttemptKind, scope: str, email: str, ip: str) -> None:
        """Reset requests and verification re-sends, counted per email asked for (whether or not it
        has an account, so the answer is the same for both) and per address."""
        def refusal(what: str, unlock: datetime) -> str:
            if kind == AttemptKind.VERIFY:
                return ("We have sent several confirmation emails already. Check your inbox and spam folder, "
                        f"or try again in {_in_minutes(unlock)}.")
            whom = "this email address" if what == "account" else "your network address"
            return f"Too many password reset requests for {whom}. Try again in {_in_minutes(unlock)}."

        self._admit(kind, scope, email, throttle_bucket(ip) if ip else "",
                    window=timedelta(minutes=self.settings.email_requests_window_minutes),
                    per_account=self.settings.email_requests_per_account,
                    per_address=self.settings.email_requests_per_address, refusal=refusal)

    def _prune_attempts(self) -> None:
        """Old rows are worthless; pruning after a failed login keeps the table small without a timer."""
        keep = max(timedelta(days=1), timedelta(minutes=self.settings.login_lockout_minutes),
                   timedelta(minutes=self.settings.email_requests_window_minutes))
        try:
            with self.db.platform_session() as session:
                session.exec(sa.delete(LoginAttempt).where(LoginAttempt.at < utcnow() - keep))
        except sa.exc.OperationalError:  # best effort: a concurrent prune may hold the rows
            pass

    def _clear_failures(self, scope: str, email: str) -> None:
        with self.db.platform_session() as session:
            session.exec(sa.delete(LoginAttempt).where(LoginAttempt.scope == scope, LoginAttempt.email == email,
                                                       LoginAttempt.kind == AttemptKind.LOGIN))

    # A reset request lasts at least `reset_request_min_ms` (see request_password_reset); seams for tests.
    _clock = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)

    def _pace(self, started: float, min_ms: int) -> None:
        remaining = min_ms / 1000 - (self._clock() - started)
        if remaining > 0:
            self._sleep(remaining)

    # ------------------------------------------------------------------ password reset

    def request_password_reset(self, tenant: TenantPublic, email: str, *, ip: str = "") -> None:
        """Always succeeds from the caller's point of view, so it never reveals who has an account: the
        same throttling (counted per email asked for, registered or not), the same token work, and at
        least `reset_request_min_ms` for a known and an unknown email alike. Throttled requests return at
        once (identically for both), so an attacker cannot tie up threads with sleeping requests."""
        started = self._clock()
        _require_active_tenant(tenant)
        try:
            email = normalize_email(email)
        except ValueError as exc:
            raise ValidationFailed({"email": str(exc)}) from None
        self._admit_email_request(AttemptKind.RESET, tenant.slug, email, ip)
        note_ids: list[int] = []
        with self.db.tenant_session(tenant.id) as session:
            user = session.exec(select(User).where(User.email == email)).first()
            if user is not None and user.status == UserStatus.ACTIVE:
                minutes = self.settings.reset_token_minutes
                profile = session.get(Profile, user.id)
                note_ids = self._queue_link_email(
                    session, tenant, user, Event.RESET_PASSWORD, TokenPurpose.RESET_PASSWORD,
                    timedelta(minutes=minutes), "/reset", full_name=profile.full_name if profile else "",
                    expires_in=_count(minutes // 60, "hour") if minutes % 60 == 0 else _count(minutes, "minute"))
            else:
                new_token()  # the token work a real request does (the time floor below covers the rest)
        self._deliver(tenant, note_ids)
        self._pace(started, self.settings.reset_request_min_ms)

    def reset_password(self, tenant: TenantPublic, token: str, new_password: str) -> None:
        form = _parse(NewPassword, {"password": new_password})
        password_hash = self.passwords.hash(form.password)
        with self.db.tenant_session(tenant.id) as session:
            user = self._consume_token(session, token, TokenPurpose.RESET_PASSWORD)
            user.password_hash = password_hash
            # A reset proves control of the mailbox, and old sessions may be the attacker's.
            session.exec(sa.update(AuthSession).where(AuthSession.user_id == user.id,
                                                      AuthSession.revoked_at.is_(None))
                         .values(revoked_at=utcnow()))
            if user.email_verified_at is None:
                user.email_verified_at = utcnow()
        self._clear_failures(tenant.slug, user.email)

    # ------------------------------------------------------------------ phone number

    def start_phone_verification(self, tenant: TenantPublic, actor: Caller, phone: str, region: str = "US") -> str:
        """Text a 6-digit code to `phone`, which becomes the account's number, unverified until the code comes
        back (verify_phone). `region` reads a number typed without its country code. Returns the number masked
        ("+1 ••• ••• 0123"), to say where the code went. A number that replied STOP to our texts is refused once
        with the advice to text START (STOPPED_NUMBER); asked again, the code goes."""
        self._require_user(actor, tenant)
        _require_active_tenant(tenant)
        try:
            e164 = parse_phone(phone, region)
        except PhoneError as exc:
            raise ValidationFailed({"phone": str(exc)}) from None
        return self._text_code(tenant, actor, e164)

    def resend_phone_code(self, tenant: TenantPublic, actor: Caller) -> str:
        """A new code to the account's own number (the page shows it masked only): how a verified number whose texts
        are paused (it replied STOP) is verified again. Same rules and answer as start_phone_verification."""
        self._require_user(actor, tenant)
        _require_active_tenant(tenant)
        with self.db.tenant_session(tenant.id) as session:
            e164 = self._active_user(session, actor).phone_e164
        if not e164:
            raise DomainError("There is no number on your account: enter one first.")
        return self._text_code(tenant, actor, e164)

    def _text_code(self, tenant: TenantPublic, actor: Caller, e164: str) -> str:
        if Channel.SMS not in self.notifications.channels(tenant.id):
            raise DomainError("This marketplace does not send text messages, so a phone cannot be verified here.")
        with self.db.tenant_session(tenant.id) as session:  # refused before it spends a code from the allowance
            user = self._active_user(session, actor)
            paused = self.notifications.sms_paused(session, e164)
            if user.phone_e164 == e164 and user.phone_verified_at is not None and not paused:
                raise DomainError("This number is already verified.")
            refusal = DomainError(STOPPED_NUMBER) if self.notifications.advise_start(session, e164) else None
        if refusal is not None:  # raised after the commit: the advice is given once, the next request is sent
            raise refusal
        self._admit_phone_code(actor.id, e164)
        code = new_code()
        with self.db.tenant_session(tenant.id) as session:
            user = self._active_user(session, actor)
            now = utcnow()
            self._expire_codes(session, user.id, now)  # only the newest code can be redeemed
            if user.phone_e164 != e164:  # a changed number is unverified until its own code comes back
                _set_phone(session, user, e164, None, tenant.currency)
            row = PhoneVerification(user_id=user.id, phone_e164=e164, expires_at=now + CODE_TTL,
                                    code_hash=self.codes.hash(tenant.id, user.id, e164, code))
            session.add(row)
            session.flush()
            note_ids = self.notifications.notify(session, tenant, Event.PHONE_CODE, [user.id], key=f"phone:{row.id}",
                                                 context={"code": code}, sms_to=e164)
            if not note_ids:  # nothing would reach the phone: keep no code the user cannot receive
                raise DomainError("We could not text a code to this number. Please try again later.")
        for note_id in note_ids:
            self.jobs.deliver_notification(tenant.id, note_id)
        return mask_phone(e164)

    def verify_phone(self, tenant: TenantPublic, actor: Caller, code: str) -> str:
        """Redeem the newest texted code: the account's number becomes verified. Returns it (E.164). The code came
        through, so a STOP the number once sent is over (texts resume); an account without a time zone gets the
        number's, when the number lies in exactly one."""
        self._require_user(actor, tenant)
        digits = normalize_code(code)
        if digits is None:  # not a guess: not counted
            raise ValidationFailed({"code": "Enter the 6-digit code from the text message."})
        with self.db.tenant_session(tenant.id) as session:
            user = self._active_user(session, actor)
            row = session.exec(select(PhoneVerification).where(PhoneVerification.user_id == user.id)
                               .order_by(PhoneVerification.id.desc()).limit(1).with_for_update()).first()
            refusal = self._redeem_code(tenant.id, user, row, digits, utcnow())
            if refusal is None:
                _set_phone(session, user, user.phone_e164, user.phone_verified_at, tenant.currency)
                self.notifications.resume_sms(session, user.phone_e164)
                if user.time_zone is None:
                    user.time_zone = guess_time_zone(user.phone_e164)
            e164 = user.phone_e164
        if refusal is not None:  # raised after the commit: a wrong code must stay counted
            raise refusal
        return e164

    def _redeem_code(self, tenant_id: int, user: User, row: PhoneVerification | None, code: str,
                     now: datetime) -> DomainError | None:
        """Check `code` against the user's newest code row and, when right, verify the number. Returns the
        refusal for the caller to raise once the transaction (with the counted try) has committed."""
        if row is None or row.verified_at is not None:
            return DomainError("There is no code waiting for you. Ask for a new one.")
        if row.attempts >= MAX_TRIES:
            return DomainError(TOO_MANY_CODES)
        if row.expires_at <= now:
            return DomainError(CODE_EXPIRED)
        if not self.codes.matches(row.code_hash, tenant_id, user.id, row.phone_e164, code):
            row.attempts += 1
            left = MAX_TRIES - row.attempts
            if left == 0:
                return DomainError(TOO_MANY_CODES)
            return ValidationFailed({"code": f"That code is not right. {left} {'try' if left == 1 else 'tries'} left."})
        row.verified_at = now
        # Not unique: another account of this marketplace may have verified the same number (a family sharing
        # one phone). Each account proved it holds the phone, which is all a verified number claims.
        user.phone_e164, user.phone_verified_at = row.phone_e164, now
        return None

    def remove_phone(self, tenant: TenantPublic, actor: Caller) -> None:
        """Take the number off the account (no more SMS); a code still on its way can no longer be redeemed."""
        self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            user = self._active_user(session, actor)
            _set_phone(session, user, "", None, tenant.currency)
            self._expire_codes(session, user.id, utcnow())

    def phone(self, tenant: TenantPublic, actor: Caller) -> PhoneView:
        """The caller's own number as their account page shows it: masked, verified or not, whether a texted
        code is still waiting to be entered (also over a verified number being verified again, after a STOP), and
        whether texts to it are paused (it replied STOP)."""
        self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            user = self._active_user(session, actor)
            waiting = session.exec(select(PhoneVerification.id).where(
                PhoneVerification.user_id == user.id, PhoneVerification.phone_e164 == user.phone_e164,
                PhoneVerification.verified_at.is_(None), PhoneVerification.attempts < MAX_TRIES,
                PhoneVerification.expires_at > utcnow()).limit(1)).first()
            verified = bool(user.phone_e164) and user.phone_verified_at is not None
            return PhoneView(masked=mask_phone(user.phone_e164), verified=verified,
                             code_pending=bool(user.phone_e164) and waiting is not None,
                             texts_paused=self.notifications.sms_paused(session, user.phone_e164))

    # ------------------------------------------------------------------ time zone

    def time_zone(self, tenant: TenantPublic, actor: Caller) -> TimeZoneView:
        """The caller's time zone as their account page shows it, with the clock there and the quiet hours."""
        self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            return _time_zone_view(self._active_user(session, actor).time_zone)

    def set_time_zone(self, tenant: TenantPublic, actor: Caller, name: str) -> TimeZoneView:
        """The caller's time zone: an IANA name from the tz database, or "" for none (UTC). Anything else is a
        field error and changes nothing."""
        self._require_user(actor, tenant)
        try:
            zone = parse_time_zone(name)
        except TimeZoneError as exc:
            raise ValidationFailed({"time_zone": str(exc)}) from None
        with self.db.tenant_session(tenant.id) as session:
            user = self._active_user(session, actor)
            user.time_zone = zone
            return _time_zone_view(zone)

    @staticmethod
    def _expire_codes(session: Session, user_id: int, now: datetime) -> None:
        session.exec(sa.update(PhoneVerification)
                     .where(PhoneVerification.user_id == user_id, PhoneVerification.verified_at.is_(None),
                            PhoneVerification.expires_at > now)
                     .values(expires_at=now))

    def _admit_phone_code(self, user_id: int, e164: str) -> None:
        """At most SENDS_PER_WINDOW codes per user and per number in SEND_WINDOW (SMS cost, and a phone that
        strangers could otherwise flood with codes)."""
        window_minutes = int(SEND_WINDOW.total_seconds() // 60)

        def refusal(what: str, unlock: datetime) -> str:
            whom = "you" if what == "account" else "this number"
            return (f"We have already sent {SENDS_PER_WINDOW} codes to {whom} in the last {window_minutes} minutes. "
                    f"Try again in {_in_minutes(unlock)}.")

        self._admit(AttemptKind.PHONE_CODE, PHONE_SCOPE, f"user:{user_id}",
                    number_bucket(self.settings.secret_key.get_secret_value(), e164),
                    window=SEND_WINDOW, per_account=SENDS_PER_WINDOW, per_address=SENDS_PER_WINDOW, refusal=refusal)

    # ------------------------------------------------------------------ one-time tokens

    def _issue_token(self, session: Session, user: User, purpose: TokenPurpose, ttl: timedelta) -> tuple[str, int]:
        """A new one-time token: the token itself (for the link) and its row id."""
        token, token_hash = new_token()
        row = OneTimeToken(user_id=user.id, purpose=purpose, token_hash=token_hash, expires_at=utcnow() + ttl)
        session.add(row)
        session.flush()
        return token, row.id

    def _consume_token(self, session: Session, token: str, purpose: TokenPurpose) -> User:
        what = "reset" if purpose == TokenPurpose.RESET_PASSWORD else "confirmation"
        if not token:
            raise TokenInvalid(f"This {what} link is incomplete. Open the link from the email again.")
        row = session.exec(
            select(OneTimeToken).where(OneTimeToken.token_hash == hash_token(token),
                                       OneTimeToken.purpose == purpose).with_for_update()
        ).first()
        if row is None:
            raise TokenInvalid(f"This {what} link is not valid.")
        if row.used_at is not None:
            raise TokenInvalid(f"This {what} link has already been used. Request a new one.")
        if row.expires_at <= utcnow():
            raise TokenInvalid(f"This {what} link has expired. Request a new one.")
        row.used_at = utcnow()
        user = session.get(User, row.user_id)
        if user is None or user.status != UserStatus.ACTIVE:
            raise TokenInvalid(f"This {what} link is not valid.")
        return user

    # ------------------------------------------------------------------ tenant admin

    def list_users(self, tenant: TenantPublic, actor: Caller, *, search: str = "", role: str = "") -> list[UserRow]:
        self._require_admin(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            query = (select(User, Profile, ProProfile.verified)
                     .join(Profile, Profile.user_id == User.id, isouter=True)
                     .join(ProProfile, ProProfile.user_id == User.id, isouter=True)
                     .order_by(User.created_at.desc(), User.id.desc()).limit(500))
            if search.strip():
                like = f"%{search.strip().lower()[:80]}%"
                query = query.where(sa.or_(sa.func.lower(User.email).like(like),
                                           sa.func.lower(Profile.full_name).like(like)))
            if role:
                query = query.where(User.role == role)
            return [_user_row(u, p, verified) for u, p, verified in session.exec(query).all()]

    def user_counts(self, tenant: TenantPublic, actor: Caller) -> dict[str, int]:
        """Totals for the admin dashboard: users per role, and how many are suspended."""
        self._require_admin(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            by_role = dict(session.exec(select(User.role, sa.func.count()).group_by(User.role)).all())
            suspended = session.exec(select(sa.func.count()).where(User.status == UserStatus.SUSPENDED)).one()
        return {role.value: by_role.get(role.value, 0) for role in (Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN)} | {
            "suspended": suspended}

    def pros_awaiting_verification(self, tenant: TenantPublic, actor: Caller,
                                   limit: int = 20) -> tuple[int, list[UserRow]]:
        """The admin's operations queue: active professionals without the verified badge (set_pro_verified), the
        newest sign-up first, and how many in all. At most `limit` (<= 100) rows; 0 counts only."""
        unverified = (User.role == Role.PROFESSIONAL, User.status == UserStatus.ACTIVE,
                      sa.or_(ProProfile.user_id.is_(None), ProProfile.verified.is_(False)))
        return self._queue(tenant, actor, unverified, limit)

    def suspended_users(self, tenant: TenantPublic, actor: Caller, limit: int = 20) -> tuple[int, list[UserRow]]:
        """The admin's operations queue: suspended users (set_user_status), the newest account first, and how many
        in all. At most `limit` (<= 100) rows; 0 counts only."""
        return self._queue(tenant, actor, (User.status == UserStatus.SUSPENDED,), limit)

    def _queue(self, tenant: TenantPublic, actor: Caller, where: tuple, limit: int) -> tuple[int, list[UserRow]]:
        self._require_admin(actor, tenant)
        limit = max(0, min(limit, 100))
        with self.db.tenant_session(tenant.id) as session:
            total = session.exec(select(sa.func.count()).select_from(User)
                                 .join(ProProfile, ProProfile.user_id == User.id, isouter=True).where(*where)).one()
            if not total or not limit:
                return total, []
            query = (select(User, Profile, ProProfile.verified)
                     .join(Profile, Profile.user_id == User.id, isouter=True)
                     .join(ProProfile, ProProfile.user_id == User.id, isouter=True)
                     .where(*where).order_by(User.created_at.desc(), User.id.desc()).limit(limit))
            return total, [_user_row(u, p, verified) for u, p, verified in session.exec(query).all()]

    def set_user_status(self, tenant: TenantPublic, actor: Caller, user_id: int, status: UserStatus) -> None:
        self._require_admin(actor, tenant)
        status = UserStatus(status)
        with self.db.tenant_session(tenant.id) as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound("No such user in this marketplace.")
            if user.id == actor.id:
                raise DomainError("You cannot suspend your own account.")
            if user.role == Role.ADMIN:
                raise PermissionDenied("Admins can only be suspended by the platform operator.")
            user.status = status
            if status == UserStatus.SUSPENDED:
                session.exec(sa.update(AuthSession).where(AuthSession.user_id == user.id,
                                                          AuthSession.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
            is_pro = user.role == Role.PROFESSIONAL
        if is_pro:  # suspended: out of search; reactivated: back in
            self.jobs.index_pro(tenant.id, user_id)

    def set_pro_verified(self, tenant: TenantPublic, actor: Caller, pro_id: int, verified: bool) -> None:
        """The admin's verified badge on one of this marketplace's professionals (shown in the directory)."""
        if actor is None or not actor.is_admin_of(tenant.id):
            raise PermissionDenied("Only the marketplace admin can verify professionals.")
        with self.db.tenant_session(tenant.id) as session:
            user = session.get(User, pro_id)
            if user is None or user.role != Role.PROFESSIONAL:
                raise NotFound("No such professional.")
            ensure_pro_profile(session, pro_id, tenant.currency).verified = verified
        self.jobs.index_pro(tenant.id, pro_id)

    # ------------------------------------------------------------------ platform operators

    def operator_login(self, email: str, password: str, *, ip: str = "") -> tuple[Caller, str]:
        email = (email or "").strip().lower()[:254]
        if not email or not password:
            raise ValidationFailed({k: "Required" for k, v in (("email", email), ("password", password)) if not v})
        self._admit_login(OPERATOR_SCOPE, email, ip)
        with self.db.platform_session() as session:
            op = session.exec(select(OperatorAccount).where(OperatorAccount.email == email)).first()
            ok = self.passwords.verify(op.password_hash if op else None, password)
            if ok and op is not None:
                token, token_hash = new_token()
                session.add(OperatorSession(operator_id=op.id, token_hash=token_hash,
                                            expires_at=utcnow() + timedelta(days=1)))
                actor = Caller(role=Role.OPERATOR, id=op.id, tenant_id=None, email=op.email, name=op.name,
                              email_verified=True)
        if not ok:
            self._prune_attempts()
            raise AuthenticationFailed(BAD_LOGIN)
        self._clear_failures(OPERATOR_SCOPE, email)
        return actor, token

    def resolve_operator_session(self, token: str) -> Caller | None:
        if not token:
            return None
        with self.db.platform_session() as session:
            row = session.exec(
                select(OperatorSession, OperatorAccount)
                .join(OperatorAccount, OperatorAccount.id == OperatorSession.operator_id)
                .where(OperatorSession.token_hash == hash_token(token))
            ).first()
            if row is None or row[0].revoked_at is not None or row[0].expires_at <= utcnow():
                return None
            op = row[1]
            return Caller(role=Role.OPERATOR, id=op.id, tenant_id=None, email=op.email, name=op.name,
                         email_verified=True)

    def claim_operator_browser_session(self, token: str) -> Caller | None:
        """As claim_browser_session, for the operator console."""
        if not token:
            return None
        with self.db.platform_session() as session:
            claimed = session.execute(
                sa.update(OperatorSession).where(OperatorSession.token_hash == hash_token(token),
                                                 OperatorSession.cookie_claimed_at.is_(None))
                .values(cookie_claimed_at=utcnow())).rowcount
        return self.resolve_operator_session(token) if claimed == 1 else None

    def operator_logout(self, token: str) -> None:
        with self.db.platform_session() as session:
            row = session.exec(select(OperatorSession).where(OperatorSession.token_hash == hash_token(token))).first()
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()

    def create_operator(self, email: str, password: str, name: str = "Platform operator") -> int:
        """Used by the seed and the `backend.cli` command; there is no public sign-up for operators."""
        email = normalize_email(email)
        _parse(NewPassword, {"password": password})
        with self.db.platform_session() as session:
            op = OperatorAccount(email=email, password_hash=self.passwords.hash(password), name=name)
            session.add(op)
            session.flush()
            return op.id

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _actor(user: User, name: str) -> Caller:
        return Caller(role=Role(user.role), id=user.id, tenant_id=user.tenant_id, email=user.email, name=name,
                     email_verified=user.email_verified_at is not None)

    @staticmethod
    def _active_user(session: Session, actor: Caller) -> User:
        user = session.get(User, actor.id)
        if user is None or user.status != UserStatus.ACTIVE:
            raise PermissionDenied("Please log in first.")
        return user

    @staticmethod
    def _require_user(actor: Caller | None, tenant: TenantPublic) -> Caller:
        if actor is None or actor.is_operator or actor.tenant_id != tenant.id:
            raise PermissionDenied("Please log in first.")
        return actor

    def _require_admin(self, actor: Caller | None, tenant: TenantPublic) -> Caller:
        actor = self._require_user(actor, tenant)
        if not actor.is_admin_of(tenant.id):
            raise PermissionDenied("Only the marketplace admin can do that.")
        return actor
