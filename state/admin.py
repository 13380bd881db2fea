"""Tenant admin: users (suspend / reinstate) and the dev outbox."""

from __future__ import annotations

import dataclasses

import reflex as rx

from backend.identity import Role
from backend.accounts.models import UserStatus
from backend.bootstrap import services
from backend.errors import DomainError
from backend.catalog.service import ICONS, CategoryRow
from state.app_state import FAILED, AppState, Ctx, FormMixin, requires


def _users_and_counts(ctx: Ctx, search: str, role: str) -> tuple[list[dict], dict[str, int]]:
    rows = services().accounts.list_users(ctx.tenant, ctx.caller, search=search, role=role)
    return [dataclasses.asdict(r) for r in rows], services().accounts.user_counts(ctx.tenant, ctx.caller)


class AdminUsersState(AppState):
    users: list[dict] = []
    counts: dict[str, int] = {}
    search: str = ""
    role_filter: str = "all"
    loaded: bool = False

    async def _reload(self, ctx: Ctx) -> None:
        self.users, self.counts = await self._run(_users_and_counts, ctx, self.search,
                                                  "" if self.role_filter == "all" else self.role_filter)
        self.loaded = True

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        self.loaded = False
        await self._reload(ctx)

    @rx.event
    @requires(Role.ADMIN)
    async def set_search(self, ctx: Ctx, value: str):
        self.search = value[:80]
        await self._reload(ctx)

    @rx.event
    @requires(Role.ADMIN)
    async def set_role_filter(self, ctx: Ctx, value: str):
        self.role_filter = value
        await self._reload(ctx)

    async def _change(self, ctx: Ctx, done: str, fn, *args):
        """One change to a user (a refusal escapes to the guard's toast), then the list again."""
        await self._run(fn, ctx.tenant, ctx.caller, *args)
        await self._reload(ctx)
        return rx.toast.success(done)

    @rx.event
    @requires(Role.ADMIN)
    async def suspend(self, ctx: Ctx, user_id: int):
        return await self._change(ctx, "User suspended. Their sessions were ended.",
                                  services().accounts.set_user_status, user_id, UserStatus.SUSPENDED)

    @rx.event
    @requires(Role.ADMIN)
    async def reinstate(self, ctx: Ctx, user_id: int):
        return await self._change(ctx, "User reinstated.", services().accounts.set_user_status, user_id,
                                  UserStatus.ACTIVE)

    @rx.event
    @requires(Role.ADMIN)
    async def set_verified(self, ctx: Ctx, user_id: int, verified: bool):
        return await self._change(ctx, "Verified badge granted." if verified else "Verified badge removed.",
                                  services().accounts.set_pro_verified, user_id, verified)


class AdminCategoriesState(FormMixin, AppState):
    categories: list[CategoryRow] = []
    icons: list[str] = ICONS
    new_icon: str = "briefcase"

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.categories = await self._run(services().catalog.categories, ctx.tenant.id, include_inactive=True)

    @rx.event
    def set_new_icon(self, icon: str):
        self.new_icon = icon

    async def _save(self, ctx: Ctx, data: dict, category_id: int | None, done: str):
        if await self._call(services().catalog.save, ctx.caller, data, category_id) is FAILED:
            return self._refused("name")
        self.categories = await self._run(services().catalog.categories, ctx.tenant.id, include_inactive=True)
        return rx.toast.success(done)

    @rx.event
    @requires(Role.ADMIN)
    async def add(self, ctx: Ctx, form: dict):
        return await self._save(ctx, {"name": form.get("name", ""), "icon": self.new_icon}, None, "Category added.")

    @rx.event
    @requires(Role.ADMIN)
    async def toggle(self, ctx: Ctx, category: dict):
        return await self._save(ctx, {"name": category["name"], "icon": category["icon"],
                                      "active": not category["active"]}, category["id"], "Category updated.")


class OutboxState(AppState):
    messages: list[dict] = []
    loaded: bool = False
    unavailable: str = ""  # why there is no outbox here (not development)

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        self.loaded, self.unavailable, self.messages = False, "", []
        try:
            messages = await self._run(services().notifications.outbox, ctx.caller)
        except DomainError as exc:  # not development: there is no outbox here, and the page says why
            self.unavailable = exc.message
            return
        self.messages = [dataclasses.asdict(m) for m in messages]
        self.loaded = True
