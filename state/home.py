"""Client and professional home pages."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.orders.quotes import RequestRow
from state.app_state import AppState, Ctx, requires


@dataclass(frozen=True)
class CategoryTile:
    """A category on the client's home, linking into the search for it."""

    name: str
    icon: str
    href: str


def _profile_and_orders(ctx: Ctx):
    return services().profiles.get_own(ctx.caller), services().orders.list_orders(ctx.tenant, ctx.caller)


def pros_href(**params: str) -> str:
    """/pros with these search params (blank ones left out): the search page reads them from the URL."""
    kept = {k: v for k, v in params.items() if v}
    return "/pros" + (f"?{urlencode(kept)}" if kept else "")


class HomeState(AppState):
    city: str = ""
    avatar_url: str = ""
    recent_requests: list[RequestRow] = []
    categories: list[CategoryTile] = []
    near_href: str = "/pros"  # the search around the client's city (all pros without one)
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
        # The city on the profile is a place label (the gazetteer's) when set: the search resolves it.
        self.near_href = pros_href(place=self.city)
        self.categories = [CategoryTile(c.name, c.icon, pros_href(category=str(c.id)))
                           for c in await self._run(services().catalog.categories, ctx.tenant.id)]

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def load_pro(self, ctx: Ctx):
        await self._load(ctx)
        self.lead_count = len(await self._run(services().quotes.leads, ctx.tenant, ctx.caller))
