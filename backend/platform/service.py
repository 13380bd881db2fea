"""Platform operator console: create, brand and suspend marketplaces; operator accounts."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import select

from backend.accounts.models import OperatorAccount, OperatorSession, User
from backend.accounts.security import Passwords
from backend.db import Database, utcnow
from backend.errors import NotFound, PermissionDenied, ValidationFailed
from backend.identity import Caller, Role, TenantPublic, TenantStatus
from backend.payments.providers import NO_PROVIDER, SETUP, default_provider, setup_hint
from backend.profiles.models import Profile
from backend.tenancy.models import OperatorCredentials, Tenant, TenantBranding, TenantCreate
from backend.tenancy.platform_reads import TENANT_USER_COUNTS
from backend.tenancy.service import TenantDirectory, public_view
from backend.validation import parse_input as _parse


@dataclass(frozen=True)
class TenantRow:
    id: int
    slug: str
    name: str
    primary_color: str
    accent_color: str
    logo_url: str
    currency: str
    platform_fee_percent: float
    request_expiry_days: int
    review_window_days: int
    instant_match_count: int
    payment_provider: str
    status: str
    users: int
    created_at: str
    checkout_ready: bool = True  # False: its clients cannot pay; checkout_hint says what to configure
    checkout_hint: str = ""


class PlatformService:
    """The platform operator's console. It never sees another tenant's rows: tenants are platform rows,
    per-tenant figures come from platform_reads, and a new tenant's first admin is written in a
    transaction bound to that new tenant."""

    def __init__(self, db: Database, passwords: Passwords, directory: TenantDirectory,
                 providers: list[str] | None = None):
        self.db = db
        self.passwords = passwords
        self.directory = directory
        self.providers = list(providers or [])  # payment providers configured on this installation: no default

    def default_provider(self) -> str:
        """A new marketplace's checkout: the first configured provider, real ones first, or none."""
        return default_provider(self.providers)

    def setup_hint(self, chosen: str | None = None) -> str:
        """What to configure so that a marketplace on `chosen` (default: a new one) can take payments."""
        return setup_hint(self.default_provider() if chosen is None else chosen, self.providers)

    def _check_provider(self, provider: str) -> str:
        """Only a provider configured here may be chosen ("" = none is always allowed)."""
        if provider != NO_PROVIDER and provider not in self.providers:
            how = SETUP.get(provider, "it is not a payment provider this marketplace supports")
            raise ValidationFailed({"payment_provider": f"{provider} is not configured on this installation "
                                                        f"({how})"})
        return provider

    # ------------------------------------------------------------------ operator accounts (command line only)

    def create_operator(self, email: str, password: str, name: str = "Platform operator") -> int:
        """A platform operator account. No web page or API reaches this: only whoever runs commands on
        the server (`python -m backend.cli create-operator`) and the development seed."""
        form: OperatorCredentials = _parse(OperatorCredentials, {"email": email, "password": password,
                                                                 "name": name})
        password_hash = self.passwords.hash(form.password)
        with self.db.platform_session() as session:
            if session.exec(select(OperatorAccount.id).where(OperatorAccount.email == form.email)).first():
                raise ValidationFailed({"email": "An operator with this email already exists "
                                                 "(reset-operator-password changes its password)"})
            operator = OperatorAccount(email=form.email, password_hash=password_hash, name=form.name)
            session.add(operator)
            session.flush()
            return operator.id

    def reset_operator_password(self, email: str, password: str) -> int:
        """Set a new password and revoke every session of that operator; returns how many were revoked."""
        form: OperatorCredentials = _parse(OperatorCredentials, {"email": email, "password": password})
        password_hash = self.passwords.hash(form.password)
        with self.db.platform_session() as session:
            operator = session.exec(select(OperatorAccount).where(OperatorAccount.email == form.email)
                                    .with_for_update()).first()
            if operator is None:
                raise NotFound(f"No platform operator has the email {form.email}.")
            operator.password_hash = password_hash
            revoked = session.exec(sa.update(OperatorSession).where(OperatorSession.operator_id == operator.id,
                                                                    OperatorSession.revoked_at.is_(None))
                                   .values(revoked_at=utcnow()))
            return revoked.rowcount or 0

    @staticmethod
    def _require_operator(actor: Caller | None) -> None:
        if actor is None or actor.role != Role.OPERATOR:
            raise PermissionDenied("Only the platform operator can manage marketplaces.")

    def list_tenants(self, actor: Caller) -> list[TenantRow]:
        self._require_operator(actor)
        # user counts span tenants: a narrowly scoped definer function (platform_reads), not a session
        counts = {tenant_id: users for tenant_id, users in self.db.platform_read(TENANT_USER_COUNTS)}
        with self.db.platform_session() as session:
            tenants = session.exec(select(Tenant).order_by(Tenant.created_at, Tenant.id)).all()
            return [
                TenantRow(id=t.id, slug=t.slug, name=t.name, primary_color=t.primary_color,
                          accent_color=t.accent_color, logo_url=t.logo_url, currency=t.currency,
                          platform_fee_percent=t.platform_fee_bps / 100,
                          request_expiry_days=t.request_expiry_days, review_window_days=t.review_window_days,
                          instant_match_count=t.instant_match_count,
                          payment_provider=t.payment_provider,
                          status=t.status,
                          users=counts.get(t.id, 0), created_at=t.created_at.strftime("%Y-%m-%d"),
                          checkout_ready=bool(t.payment_provider) and t.payment_provider in self.providers,
                          checkout_hint=setup_hint(t.payment_provider, self.providers))
                for t in tenants
            ]

    def create_tenant(self, actor: Caller, data: dict) -> TenantPublic:
        """Create the marketplace and its first admin in one transaction."""
        self._require_operator(actor)
        form: TenantCreate = _parse(TenantCreate, data)
        provider = self._check_provider(self.default_provider() if form.payment_provider is None
                                        else form.payment_provider)
        password_hash = self.passwords.hash(form.admin_password)
        with self.db.platform_session() as session:
            if session.exec(select(Tenant.id).where(Tenant.slug == form.slug)).first() is not None:
                raise ValidationFailed({"slug": "That address is taken"})
            tenant = Tenant(slug=form.slug, name=form.name, primary_color=form.primary_color,
                            accent_color=form.accent_color, logo_url=form.logo_url, currency=form.currency,
                            platform_fee_bps=round(form.platform_fee_percent * 100),
                            request_expiry_days=form.request_expiry_days,
                            review_window_days=form.review_window_days,
                            instant_match_count=form.instant_match_count, payment_provider=provider)
            session.add(tenant)
            session.flush()
            self.db.bind(session, tenant.id)  # same transaction, now bound to the new tenant: its first rows
            admin = User(tenant_id=tenant.id, email=form.admin_email, password_hash=password_hash, role=Role.ADMIN)
            session.add(admin)
            session.flush()
            session.add(Profile(tenant_id=tenant.id, user_id=admin.id, full_name=form.admin_name))
            created = public_view(tenant)
        self.directory.forget(created.slug)
        return created

    def update_branding(self, actor: Caller, tenant_id: int, data: dict) -> TenantPublic:
        self._require_operator(actor)
        form: TenantBranding = _parse(TenantBranding, data)
        if form.payment_provider is not None:
            self._check_provider(form.payment_provider)
        with self.db.platform_session() as session:
            tenant = session.get(Tenant, tenant_id)
            if tenant is None:
                raise NotFound("No such marketplace.")
            tenant.name, tenant.primary_color, tenant.accent_color = form.name, form.primary_color, form.accent_color
            tenant.logo_url, tenant.currency = form.logo_url, form.currency
            tenant.platform_fee_bps = round(form.platform_fee_percent * 100)
            tenant.request_expiry_days, tenant.review_window_days = form.request_expiry_days, form.review_window_days
            tenant.instant_match_count = form.instant_match_count
            if form.payment_provider is not None:  # not sent: the current choice stays
                tenant.payment_provider = form.payment_provider
            updated = public_view(tenant)
        self.directory.forget(updated.slug)
        return updated

    def set_status(self, actor: Caller, tenant_id: int, status: TenantStatus) -> None:
        self._require_operator(actor)
        status = TenantStatus(status)
        with self.db.platform_session() as session:
            tenant = session.get(Tenant, tenant_id)
            if tenant is None:
                raise NotFound("No such marketplace.")
            tenant.status = status
            slug = tenant.slug
        self.directory.forget(slug)
