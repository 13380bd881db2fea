"""Professionals: the leads inbox, sending quotes, declining leads, and their quotes."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.orders.forms import suggested_valid_until
from backend.orders.quotes import QuoteRow, RequestRow
from backend.reviews import RatingBadge
from state.app_state import FAILED, AppState, Ctx, FormMixin, requires
from state.reviews import rating_badges


def _quotes_and_chats(ctx: Ctx) -> tuple[list[QuoteRow], dict[str, int]]:
    """Blocking: the pro's quotes, and the conversation of each request they quoted on (request id -> chat)."""
    chats = {str(c.request_id): c.id for c in services().chat.conversations(ctx.tenant, ctx.caller) if c.request_id}
    return services().quotes.my_quotes(ctx.tenant, ctx.caller), chats


def _leads(ctx: Ctx) -> tuple[list[RequestRow], dict[str, RatingBadge]]:
    """Blocking: the pro's leads, and the rating badge of each lead's client by user id."""
    leads = services().quotes.leads(ctx.tenant, ctx.caller)
    return leads, rating_badges(ctx, [r.client_id for r in leads])


class LeadsState(FormMixin, AppState):
    leads: list[RequestRow] = []
    client_badges: dict[str, RatingBadge] = {}  # client's user id -> stars and count from professionals' reviews
    loaded: bool = False
    quoting: RequestRow | None = None
    quote_open: bool = False
    default_valid_until: str = ""

    async def _reload(self, ctx: Ctx) -> None:
        self.leads, self.client_badges = await self._run(_leads, ctx)
        self.loaded = True

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self._reset_form()
        await self._reload(ctx)

    @rx.event
    def open_quote(self, lead: dict):
        self._reset_form()
        self.quoting = RequestRow(**lead)
        self.default_valid_until = suggested_valid_until().isoformat()
        self.quote_open = True

    @rx.event
    def set_quote_open(self, value: bool):
        self.quote_open = value

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def send_quote(self, ctx: Ctx, form: dict):
        if self.quoting is None:
            return
        self.busy = True
        yield
        if await self._call(services().quotes.send_quote, ctx.tenant, ctx.caller, self.quoting.id, form) is FAILED:
            return
        self.quote_open = False
        await self._reload(ctx)
        yield rx.toast.success("Quote sent. You'll see it under My quotes.")

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def decline(self, ctx: Ctx, request_id: int):
        await self._run(services().quotes.decline_lead, ctx.tenant, ctx.caller, request_id)
        await self._reload(ctx)
        return rx.toast.info("Lead hidden.")


class MyQuotesState(AppState):
    quotes: list[QuoteRow] = []
    chats: dict[str, int] = {}  # request id -> conversation id
    loaded: bool = False

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.quotes, self.chats = await self._run(_quotes_and_chats, ctx)
        self.loaded = True

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def withdraw(self, ctx: Ctx, quote_id: int):
        await self._run(services().quotes.withdraw_quote, ctx.tenant, ctx.caller, quote_id)
        self.quotes = await self._run(services().quotes.my_quotes, ctx.tenant, ctx.caller)
        return rx.toast.info("Quote withdrawn.")
