"""Service categories per tenant, edited by the tenant's admin."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import select

from backend.identity import Caller, Role
from backend.db import Database
from backend.errors import NotFound, PermissionDenied, ValidationFailed
from backend.catalog.models import Category
from backend.catalog.ports import CatalogJobs

DEFAULT_CATEGORIES = [
    ("cleaning", "Cleaning", "sparkles"), ("plumbing", "Plumbing", "wrench"), ("electrical", "Electrical", "zap"),
    ("handyman", "Handyman", "hammer"), ("moving", "Moving", "truck"), ("tutoring", "Tutoring", "graduation-cap"),
    ("photography", "Photography", "camera"), ("design", "Design", "palette"), ("gardening", "Gardening", "leaf"),
    ("painting", "Painting", "paint-roller"),
]
ICONS = sorted({icon for _, _, icon in DEFAULT_CATEGORIES} | {"briefcase", "car", "dog", "laptop", "music"})


@dataclass(frozen=True)
class CategoryRow:
    id: int
    slug: str
    name: str
    icon: str
    active: bool


def _row(c: Category) -> CategoryRow:
    return CategoryRow(id=c.id, slug=c.slug, name=c.name, icon=c.icon, active=c.active)


class CatalogService:
    def __init__(self, db: Database, jobs: CatalogJobs | None = None):
        self.db = db
        self.jobs = jobs  # None: nothing is indexed (tools that only read categories)

    def categories(self, tenant_id: int, *, include_inactive: bool = False) -> list[CategoryRow]:
        with self.db.tenant_session(tenant_id) as session:
            query = select(Category).order_by(Category.sort, Category.name)
            if not include_inactive:
                query = query.where(Category.active == sa.true())
            return [_row(c) for c in session.exec(query).all()]

    def seed_defaults(self, tenant_id: int) -> None:
        with self.db.tenant_session(tenant_id) as session:
            existing = set(session.exec(select(Category.slug)).all())
            for sort, (slug, name, icon) in enumerate(DEFAULT_CATEGORIES):
                if slug not in existing:
                    session.add(Category(slug=slug, name=name, icon=icon, sort=sort))

    def save(self, actor: Caller, data: dict, category_id: int | None = None) -> CategoryRow:
        """Create (no id) or rename/re-icon/(de)activate a category. Admins only."""
        if actor is None or actor.role != Role.ADMIN:
            raise PermissionDenied("Only the marketplace admin can edit categories.")
        name = " ".join(str(data.get("name", "")).split())
        icon = str(data.get("icon", "briefcase"))
        errors = {}
        if not 2 <= len(name) <= 60:
            errors["name"] = "Name must be 2 to 60 characters"
        if icon not in ICONS:
            errors["icon"] = "Choose one of the icons"
        if errors:
            raise ValidationFailed(errors)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "category"
        renamed = False
        with self.db.tenant_session(actor.tenant_id) as session:
            if category_id is None:
                if session.exec(select(Category.id).where(Category.slug == slug)).first() is not None:
                    raise ValidationFailed({"name": "A category with this name exists"})
                top = session.exec(select(sa.func.max(Category.sort))).one() or 0
                category = Category(slug=slug, name=name, icon=icon, sort=top + 1)
                session.add(category)
            else:
                category = session.get(Category, category_id)
                if category is None:
                    raise NotFound("No such category.")
                renamed = category.name != name or ("active" in data and category.active != bool(data["active"]))
                category.name, category.icon = name, icon
                if "active" in data:
                    category.active = bool(data["active"])
            session.flush()
            row = _row(category)
        if renamed and self.jobs is not None:  # its name is in its professionals' search documents
            self.jobs.reindex_tenant(actor.tenant_id)
        return row
