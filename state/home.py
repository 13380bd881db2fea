"""Client and professional home pages."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.orders.quotes import RequestRow
from state.app_state import AppState, Ctx, requires


def _profile_and_orders(ctx: Ctx):
    return services().profiles.get_own(ctx.caller), services().orders.list_orders(ctx.tenant, ctx.caller)


class HomeState(AppState):
    city: str = ""
    avatar_url: str = ""
    recent_requests: list[RequestRow] = []
    lead_count: int = 0
    active_orders: int = 0

    async def _load(self, ctx: Ctx) -> None:
        """What both homes show: the caller's profile card and how many of their orders are still going."""
        profile, orders = await self._run(_profile_and_orders, ctx)
        self.city, self.avatar_url = profile.city, profile.avatar_url
        self.active_orders = sum(o.active for o in orders)

    @rx.event
    @requires(Role.CLIENT)
    async def load_client(self, ctx: Ctx):
        await self._load(ctx)
        self.recent_requests = (await self._run(services().quotes.my_requests, ctx.tenant, ctx.caller))[:3]

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def load_pro(self, ctx: Ctx):
        await self._load(ctx)
        self.lead_count = len(await self._run(services().quotes.leads, ctx.tenant, ctx.caller))
