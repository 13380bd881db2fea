"""The public directory: a professional's public page and the list clients browse.

Only active professionals exist publicly; that is a fact about the account (accounts), the page itself is the
professional's profile (profiles), both below this service."""

from __future__ import annotations

from sqlmodel import select

from backend.accounts.models import User, UserStatus
from backend.db import Database
from backend.errors import NotFound
from backend.identity import Role, TenantPublic
from backend.profiles import ProView, ensure_pro_profile, pro_view
from backend.profiles.models import ProCategory, ProProfile  # the tables its queries join, read only
from backend.storage.ports import ObjectStore


class ProDirectory:
    def __init__(self, db: Database, store: ObjectStore):
        self.db = db
        self.store = store

    def public(self, tenant: TenantPublic, pro_id: int) -> ProView:
        """The public profile page."""
        with self.db.tenant_session(tenant.id) as session:
            user = session.get(User, pro_id)
            if user is None or user.role != Role.PROFESSIONAL or user.status != UserStatus.ACTIVE:
                raise NotFound("This professional is not on the marketplace.")
            return pro_view(session, self.store, ensure_pro_profile(session, pro_id, tenant.currency))

    def browse(self, tenant: TenantPublic, *, category_id: int | None = None, limit: int = 60) -> list[ProView]:
        """Professionals with a headline, verified first (issue 11 ranks these)."""
        with self.db.tenant_session(tenant.id) as session:
            query = (select(ProProfile).join(User, User.id == ProProfile.user_id)
                     .where(User.role == Role.PROFESSIONAL, User.status == UserStatus.ACTIVE,
                            ProProfile.headline != "")
                     .order_by(ProProfile.verified.desc(), User.id).limit(limit))
            if category_id:
                query = query.join(ProCategory, ProCategory.user_id == ProProfile.user_id).where(
                    ProCategory.category_id == category_id)
            return [pro_view(session, self.store, pro) for pro in session.exec(query).all()]
