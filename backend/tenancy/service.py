"""Multi-Tenancy Manager: resolve the tenant serving a request (host or slug), cached briefly."""

from __future__ import annotations

import threading
import time

from sqlmodel import select

from backend.identity import TenantPublic
from backend.config import Settings
from backend.db import Database
from backend.errors import NotFound
from backend.tenancy.hosts import tenant_slug_for_host
from backend.tenancy.models import Tenant


def public_view(t: Tenant) -> TenantPublic:
    return TenantPublic.model_validate(t, from_attributes=True)


class TenantDirectory:
    """Host -> tenant, with a short in-process cache (tenants change rarely; 5 s staleness
    is acceptable, and suspensions also revoke nothing that a reload wouldn't re-check)."""

    TTL_SECONDS = 5.0

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self._cache: dict[str, tuple[float, TenantPublic | None]] = {}
        self._lock = threading.Lock()

    def for_host(self, host: str) -> TenantPublic | None:
        slug = tenant_slug_for_host(host, base_domain=self.settings.base_domain,
                                    default_tenant=self.settings.default_tenant)
        return self.by_slug(slug) if slug else None

    def by_slug(self, slug: str) -> TenantPublic | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(slug)
        if hit and now - hit[0] < self.TTL_SECONDS:
            return hit[1]
        with self.db.platform_session() as session:
            row = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
            tenant = public_view(row) if row else None
        with self._lock:
            self._cache[slug] = (now, tenant)
        return tenant

    def by_id(self, tenant_id: int) -> TenantPublic:
        with self.db.platform_session() as session:
            row = session.get(Tenant, tenant_id)
            if row is None:
                raise NotFound("No such marketplace.")
            return public_view(row)

    def forget(self, slug: str) -> None:
        with self._lock:
            self._cache.pop(slug, None)
