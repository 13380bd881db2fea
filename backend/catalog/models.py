"""Catalog tables: the service categories of a marketplace."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field

from backend.db import TenantOwned


class Category(TenantOwned, table=True):
    __table_args__ = (sa.UniqueConstraint("tenant_id", "slug", name="uq_category_tenant_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=40)
    name: str = Field(max_length=60)
    icon: str = Field(default="briefcase", max_length=40)
    active: bool = True
    sort: int = 0
