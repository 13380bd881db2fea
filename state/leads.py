"""Professionals: the leads inbox, sending quotes, declining leads, and their quotes."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.orders.forms import suggested_valid_until
from backend.orders.quotes import QuoteRow, RequestRow
from backend.reviews import RatingBadge
from state.app_state import FAILED, AppState, Ctx, FormMixin, requires
from state.reviews import rating_badges


def _quotes_and_chats(ctx: Ctx) -> tuple[list[QuoteRow], dict[str, int]]:
    """Blocking: the pro's quotes, and the conversation of each request they quoted on (request id -> chat)."""
    chats = {str(c.request_id): c.id for c in services().chat.conversations(ctx.tenant, ctx.caller) if c.request_id}
    return services().quotes.my_quotes(ctx.tenant, ctx.caller), chats


def _leads(ctx: Ctx, query: str, focus: int) -> tuple[list[RequestRow], dict[str, RatingBadge]]:
    """Blocking: the pro's leads (the one lead `focus` names, or those the keywords find, or all of them, best
    first), and the rating badge of each lead's client by user id."""
    if focus:
        leads = [services().quotes.lead(ctx.tenant, ctx.caller, focus)]
    else:
        leads = services().quotes.leads(ctx.tenant, ctx.caller, query)
    return leads, rating_badges(ctx, [r.client_id for r in leads])


class LeadsState(FormMixin, AppState):
    """The leads inbox (/pro/leads) and one lead (/pro/leads/<id>, the link of a match notification)."""

    leads: list[RequestRow] = []
    client_badges: dict[str, RatingBadge] = {}  # client's user id -> stars and count from professionals' reviews
    loaded: bool = False
    query: str = ""  # the keyword box's search, "" = every lead
    focus: int = 0  # the request id of the one-lead page; 0 = the inbox
    gone: str = ""  # the one-lead page: why that request is not a lead (any more)
    quoting: RequestRow | None = None
    quote_open: bool = False
    default_valid_until: str = ""

    async def _reload(self, ctx: Ctx) -> None:
        self.leads, self.client_badges = await self._run(_leads, ctx, self.query, self.focus)
        self.loaded = True

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self._reset_form()
        self.query, self.gone = "", ""
        self.focus = self._route_id()
        try:
            await self._reload(ctx)
        except DomainError as exc:  # the one-lead page: quoted, declined, closed, or never theirs
            self.leads, self.gone, self.loaded = [], exc.message, True

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def search(self, ctx: Ctx, form: dict):
        query = " ".join(str(form.get("q", "")).split())
        found = await self._call(_leads, ctx, query, 0)
        if found is FAILED:  # too long, or the engine is down: said on the form, the list stays as it was
            return
        self.query = query
        self.leads, self.client_badges = found

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def clear_search(self, ctx: Ctx):
        self.query = ""
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
        yield rx.toast.success("Quote sent. You'll see it under My quotes.")
        if self.focus:  # quoted: no longer a lead; the quote is on My quotes
            yield rx.redirect("/pro/quotes")
            return
        await self._reload(ctx)

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def decline(self, ctx: Ctx, request_id: int):
        await self._run(services().quotes.decline_lead, ctx.tenant, ctx.caller, request_id)
        if self.focus:
            return [rx.toast.info("Lead hidden."), rx.redirect("/pro/leads")]
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
