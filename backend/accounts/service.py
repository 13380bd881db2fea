"""Auth service use cases: sign-up, login with throttling, sessions, verification, reset,
and the tenant admin's user management. Every call checks the caller's role in here."""

from __future__ import annotations

import math
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.accounts.models import (
    Actor, AuthSession, LoginAttempt, NewPassword, OneTimeToken, OperatorAccount, OperatorSession,
    Role, SignUp, TokenPurpose, User, UserRow, UserStatus,
)
from backend.accounts.security import Passwords, hash_token, new_token
from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import (
    AuthenticationFailed, DomainError, NotFound, PermissionDenied, Throttled, TokenInvalid, ValidationFailed,
)
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.profiles.models import Profile, ProProfile
from backend.tenancy.hosts import tenant_url
from backend.tenancy.models import TenantPublic
from backend.validation import normalize_email, parse_input as _parse

OPERATOR_SCOPE = "operator"
BAD_LOGIN = "Email or password is incorrect."


def _require_active_tenant(tenant: TenantPublic) -> None:
    if not tenant.is_active:
        raise DomainError("This marketplace is suspended. Please try again later.")


class AccountService:
    def __init__(self, db: Database, settings: Settings, passwords: Passwords, jobs: JobQueue):
        self.db = db
        self.settings = settings
        self.passwords = passwords
        self.jobs = jobs

    # ------------------------------------------------------------------ sign-up

    def sign_up(self, tenant: TenantPublic, data: dict, *, ip: str = "", user_agent: str = "") -> tuple[Actor, str]:
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
            note_id = self._queue_verification(session, tenant, user)
            token = self._open_session(session, user, ip=ip, user_agent=user_agent)
            actor = self._actor(user, form.full_name)
        self.jobs.deliver_notification(tenant.id, note_id)
        return actor, token

    def _queue_verification(self, session: Session, tenant: TenantPublic, user: User) -> int:
        token = self._issue_token(session, user, TokenPurpose.VERIFY_EMAIL,
                                  timedelta(hours=self.settings.verify_token_hours))
        link = tenant_url(self.settings.public_url, tenant.slug, self.settings.default_tenant, f"/verify?token={token}")
        note = NotificationService.queue_email(
            session, user_id=user.id, recipient=user.email,
            subject=f"Confirm your email for {tenant.name}",
            body=(f"Welcome to {tenant.name}!\n\nConfirm your email address by opening this link:\n{link}\n\n"
                  f"The link works once and expires in {self.settings.verify_token_hours} hours."),
        )
        return note.id

    def resend_verification(self, tenant: TenantPublic, actor: Actor) -> None:
        self._require_user(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            user = session.get(User, actor.id)
            if user is None:
                raise NotFound("Account not found.")
            if user.email_verified_at is not None:
                raise DomainError("Your email is already confirmed.")
            note_id = self._queue_verification(session, tenant, user)
        self.jobs.deliver_notification(tenant.id, note_id)

    def verify_email(self, tenant: TenantPublic, token: str) -> str:
        """Confirm the email behind a verification token; returns the confirmed address."""
        with self.db.tenant_session(tenant.id) as session:
            user = self._consume_token(session, token, TokenPurpose.VERIFY_EMAIL)
            if user.email_verified_at is None:
                user.email_verified_at = utcnow()
            return user.email

    # ------------------------------------------------------------------ login / sessions

    def login(self, tenant: TenantPublic, email: str, password: str, *, ip: str = "",
              user_agent: str = "") -> tuple[Actor, str]:
        _require_active_tenant(tenant)
        email = (email or "").strip().lower()[:254]
        if not email or not password:
            raise ValidationFailed({k: "Required" for k, v in (("email", email), ("password", password)) if not v})
        self._check_throttle(tenant.slug, email, ip)
        with self.db.tenant_session(tenant.id) as session:
            user = session.exec(select(User).where(User.email == email)).first()
            ok = self.passwords.verify(user.password_hash if user else None, password)
            if ok and user is not None:
                if user.status != UserStatus.ACTIVE:
                    raise AuthenticationFailed("Your account is suspended. Contact the marketplace admin.")
                if self.passwords.needs_rehash(user.password_hash):
                    user.password_hash = self.passwords.hash(password)
                user.last_login_at = utcnow()
                token = self._open_session(session, user, ip=ip, user_agent=user_agent)
                profile = session.get(Profile, user.id)
                actor = self._actor(user, profile.full_name if profile else "")
        if not ok:
            self._record_failure(tenant.slug, email, ip)
            raise AuthenticationFailed(BAD_LOGIN)
        self._clear_failures(tenant.slug, email)
        return actor, token

    def _open_session(self, session: Session, user: User, *, ip: str, user_agent: str) -> str:
        token, token_hash = new_token()
        session.add(AuthSession(
            user_id=user.id, token_hash=token_hash, ip=ip[:64], user_agent=user_agent[:255],
            expires_at=utcnow() + timedelta(days=self.settings.session_days),
        ))
        return token

    def resolve_session(self, tenant: TenantPublic, token: str) -> Actor | None:
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

    def logout(self, tenant: TenantPublic, token: str) -> None:
        if not token:
            return
        with self.db.tenant_session(tenant.id) as session:
            auth = session.exec(select(AuthSession).where(AuthSession.token_hash == hash_token(token))).first()
            if auth is not None and auth.revoked_at is None:
                auth.revoked_at = utcnow()

    # ------------------------------------------------------------------ throttling

    def _window_start(self):
        return utcnow() - timedelta(minutes=self.settings.login_lockout_minutes)

    def _check_throttle(self, scope: str, email: str, ip: str) -> None:
        since = self._window_start()
        with self.db.platform_session() as session:
            def failures(*conds):
                return session.exec(
                    select(sa.func.count(), sa.func.min(LoginAttempt.at))
                    .where(LoginAttempt.scope == scope, LoginAttempt.at >= since, *conds)
                ).one()

            per_account, first_account = failures(LoginAttempt.email == email)
            per_address, first_address = failures(LoginAttempt.ip == ip) if ip else (0, None)
        if per_account >= self.settings.login_max_failures_per_account:
            raise Throttled(self._lockout_message("this account", first_account))
        if per_address >= self.settings.login_max_failures_per_address:
            raise Throttled(self._lockout_message("your network address", first_address))

    def _lockout_message(self, what: str, first_failure) -> str:
        unlock = first_failure + timedelta(minutes=self.settings.login_lockout_minutes)
        minutes = max(1, math.ceil((unlock - utcnow()).total_seconds() / 60))
        return (f"Too many failed login attempts for {what}. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or reset your password.")

    def _record_failure(self, scope: str, email: str, ip: str) -> None:
        with self.db.platform_session() as session:
            session.add(LoginAttempt(scope=scope, email=email, ip=ip[:64]))
            # Old rows are worthless; pruning here keeps the table small without a timer.
            session.exec(sa.delete(LoginAttempt).where(LoginAttempt.at < utcnow() - timedelta(days=1)))

    def _clear_failures(self, scope: str, email: str) -> None:
        with self.db.platform_session() as session:
            session.exec(sa.delete(LoginAttempt).where(LoginAttempt.scope == scope, LoginAttempt.email == email))

    # ------------------------------------------------------------------ password reset

    def request_password_reset(self, tenant: TenantPublic, email: str) -> None:
        """Always succeeds from the caller's point of view, so it never reveals who has an account."""
        _require_active_tenant(tenant)
        try:
            email = normalize_email(email)
        except ValueError as exc:
            raise ValidationFailed({"email": str(exc)}) from None
        note_id = None
        with self.db.tenant_session(tenant.id) as session:
            user = session.exec(select(User).where(User.email == email)).first()
            if user is not None and user.status == UserStatus.ACTIVE:
                token = self._issue_token(session, user, TokenPurpose.RESET_PASSWORD,
                                          timedelta(minutes=self.settings.reset_token_minutes))
                link = tenant_url(self.settings.public_url, tenant.slug, self.settings.default_tenant,
                                  f"/reset?token={token}")
                note_id = NotificationService.queue_email(
                    session, user_id=user.id, recipient=user.email,
                    subject=f"Reset your {tenant.name} password",
                    body=(f"Someone asked to reset the password of your {tenant.name} account.\n\n"
                          f"Choose a new password here:\n{link}\n\nThe link works once and expires in "
                          f"{self.settings.reset_token_minutes} minutes. If it wasn't you, ignore this email."),
                ).id
        if note_id is not None:
            self.jobs.deliver_notification(tenant.id, note_id)

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

    # ------------------------------------------------------------------ one-time tokens

    def _issue_token(self, session: Session, user: User, purpose: TokenPurpose, ttl: timedelta) -> str:
        token, token_hash = new_token()
        session.add(OneTimeToken(user_id=user.id, purpose=purpose, token_hash=token_hash,
                                 expires_at=utcnow() + ttl))
        return token

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

    def list_users(self, tenant: TenantPublic, actor: Actor, *, search: str = "", role: str = "") -> list[UserRow]:
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
            return [
                UserRow(id=u.id, email=u.email, full_name=p.full_name if p else "", role=u.role, status=u.status,
                        email_verified=u.email_verified_at is not None,
                        created_at=u.created_at.strftime("%Y-%m-%d"),
                        last_login_at=u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
                        verified=bool(verified))
                for u, p, verified in session.exec(query).all()
            ]

    def user_counts(self, tenant: TenantPublic, actor: Actor) -> dict[str, int]:
        """Totals for the admin dashboard: users per role, and how many are suspended."""
        self._require_admin(actor, tenant)
        with self.db.tenant_session(tenant.id) as session:
            by_role = dict(session.exec(select(User.role, sa.func.count()).group_by(User.role)).all())
            suspended = session.exec(select(sa.func.count()).where(User.status == UserStatus.SUSPENDED)).one()
        return {role.value: by_role.get(role.value, 0) for role in (Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN)} | {
            "suspended": suspended}

    def set_user_status(self, tenant: TenantPublic, actor: Actor, user_id: int, status: UserStatus) -> None:
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

    # ------------------------------------------------------------------ platform operators

    def operator_login(self, email: str, password: str, *, ip: str = "") -> tuple[Actor, str]:
        email = (email or "").strip().lower()[:254]
        if not email or not password:
            raise ValidationFailed({k: "Required" for k, v in (("email", email), ("password", password)) if not v})
        self._check_throttle(OPERATOR_SCOPE, email, ip)
        with self.db.platform_session() as session:
            op = session.exec(select(OperatorAccount).where(OperatorAccount.email == email)).first()
            ok = self.passwords.verify(op.password_hash if op else None, password)
            if ok and op is not None:
                token, token_hash = new_token()
                session.add(OperatorSession(operator_id=op.id, token_hash=token_hash,
                                            expires_at=utcnow() + timedelta(days=1)))
                actor = Actor(role=Role.OPERATOR, id=op.id, tenant_id=None, email=op.email, name=op.name,
                              email_verified=True)
        if not ok:
            self._record_failure(OPERATOR_SCOPE, email, ip)
            raise AuthenticationFailed(BAD_LOGIN)
        self._clear_failures(OPERATOR_SCOPE, email)
        return actor, token

    def resolve_operator_session(self, token: str) -> Actor | None:
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
            return Actor(role=Role.OPERATOR, id=op.id, tenant_id=None, email=op.email, name=op.name,
                         email_verified=True)

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
    def _actor(user: User, name: str) -> Actor:
        return Actor(role=Role(user.role), id=user.id, tenant_id=user.tenant_id, email=user.email, name=name,
                     email_verified=user.email_verified_at is not None)

    @staticmethod
    def _require_user(actor: Actor | None, tenant: TenantPublic) -> Actor:
        if actor is None or actor.is_operator or actor.tenant_id != tenant.id:
            raise PermissionDenied("Please log in first.")
        return actor

    def _require_admin(self, actor: Actor | None, tenant: TenantPublic) -> Actor:
        actor = self._require_user(actor, tenant)
        if actor.role != Role.ADMIN:
            raise PermissionDenied("Only the marketplace admin can do that.")
        return actor
