"""Tenant admin: users (suspend / reinstate) and the dev outbox."""

from __future__ import annotations

import dataclasses

import reflex as rx

from backend.identity import Role
from backend.accounts.models import UserStatus
from backend.bootstrap import services
from backend.errors import DomainError
from backend.catalog.service import ICONS, CategoryRow
from state.app_state import AppState, FormMixin


class AdminUsersState(AppState):
    users: list[dict] = []
    counts: dict[str, int] = {}
    search: str = ""
    role_filter: str = "all"
    loaded: bool = False

    def _reload(self, tenant, actor) -> None:
        rows = services().accounts.list_users(tenant, actor, search=self.search,
                                              role="" if self.role_filter == "all" else self.role_filter)
        self.users = [dataclasses.asdict(r) for r in rows]
        self.counts = services().accounts.user_counts(tenant, actor)
        self.loaded = True

    @rx.event
    def load(self):
        self.loaded = False
        tenant, actor, redirect = self._guard(Role.ADMIN)
        if redirect or self.access != "ok":
            return redirect
        self._reload(tenant, actor)

    @rx.event
    def set_search(self, value: str):
        self.search = value[:80]
        tenant, actor, _ = self._guard(Role.ADMIN)
        if self.access == "ok":
            self._reload(tenant, actor)

    @rx.event
    def set_role_filter(self, value: str):
        self.role_filter = value
        tenant, actor, _ = self._guard(Role.ADMIN)
        if self.access == "ok":
            self._reload(tenant, actor)

    def _set_status(self, user_id: int, status: UserStatus, done: str):
        tenant, actor, _ = self._guard(Role.ADMIN)
        try:
            services().accounts.set_user_status(tenant, actor, user_id, status)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._reload(tenant, actor)
        return rx.toast.success(done)

    @rx.event
    def suspend(self, user_id: int):
        return self._set_status(user_id, UserStatus.SUSPENDED, "User suspended. Their sessions were ended.")

    @rx.event
    def reinstate(self, user_id: int):
        return self._set_status(user_id, UserStatus.ACTIVE, "User reinstated.")

    @rx.event
    def set_verified(self, user_id: int, verified: bool):
        tenant, actor, _ = self._guard(Role.ADMIN)
        try:
            services().pros.set_verified(tenant, actor, user_id, verified)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._reload(tenant, actor)
        return rx.toast.success("Verified badge granted." if verified else "Verified badge removed.")


class AdminCategoriesState(FormMixin, AppState):
    categories: list[CategoryRow] = []
    icons: list[str] = ICONS
    new_icon: str = "briefcase"

    @rx.event
    def load(self):
        self._reset_form()
        tenant, _, redirect = self._guard(Role.ADMIN)
        if redirect or self.access != "ok":
            return redirect
        self.categories = services().catalog.categories(tenant.id, include_inactive=True)

    @rx.event
    def set_new_icon(self, icon: str):
        self.new_icon = icon

    def _save(self, data: dict, category_id: int | None, done: str):
        tenant, actor, _ = self._guard(Role.ADMIN)
        try:
            services().catalog.save(actor, data, category_id)
        except DomainError as exc:
            self._fail(exc)
            return rx.toast.error(self.errors.get("name", exc.message))
        self._reset_form()
        self.categories = services().catalog.categories(tenant.id, include_inactive=True)
        return rx.toast.success(done)

    @rx.event
    def add(self, form: dict):
        return self._save({"name": form.get("name", ""), "icon": self.new_icon}, None, "Category added.")

    @rx.event
    def toggle(self, category: dict):
        return self._save({"name": category["name"], "icon": category["icon"], "active": not category["active"]},
                          category["id"], "Category updated.")


class OutboxState(AppState):
    messages: list[dict] = []
    loaded: bool = False
    unavailable: str = ""  # why there is no outbox here (not development)

    @rx.event
    def load(self):
        self.loaded, self.unavailable, self.messages = False, "", []
        _, actor, redirect = self._guard(Role.ADMIN)
        if redirect or self.access != "ok":
            return redirect
        try:
            self.messages = [dataclasses.asdict(m) for m in services().notifications.outbox(actor)]
        except DomainError as exc:
            self.unavailable = exc.message
            return None
        self.loaded = True
