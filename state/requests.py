"""Clients: post a service request, see its quotes side by side, accept one."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.catalog.service import CategoryRow
from backend.orders.forms import MAX_PHOTOS
from backend.orders.quotes import QuoteRow, RequestRow
from state.app_state import FAILED, AppState, Ctx, FormMixin, requires
from state.uploads import image_limit_mb, read_uploads


def _post_request(ctx: Ctx, data: dict, photos: list[bytes]) -> tuple[int, str]:
    """Blocking: post the request (instant match runs in it), then what the client is told about its matches."""
    request_id = services().quotes.create_request(ctx.tenant, ctx.caller, data, photos)
    request, _ = services().quotes.request_with_quotes(ctx.tenant, ctx.caller, request_id)
    return request_id, request.match_note


def _request_page(ctx: Ctx, request_id: int) -> tuple[RequestRow, list[QuoteRow], dict[str, int]]:
    """Blocking: the client's request, its quotes, and the conversation with each quoting pro (pro id -> chat)."""
    request, quotes = services().quotes.request_with_quotes(ctx.tenant, ctx.caller, request_id)
    chats = {str(c.other_id): c.id for c in services().chat.conversations(ctx.tenant, ctx.caller)
             if c.request_id == request.id}
    return request, quotes, chats


class MyRequestsState(AppState):
    requests: list[RequestRow] = []
    loaded: bool = False

    @rx.event
    @requires(Role.CLIENT)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.requests = await self._run(services().quotes.my_requests, ctx.tenant, ctx.caller)
        self.loaded = True


class NewRequestState(FormMixin, AppState):
    categories: list[CategoryRow] = []
    category_choice: str = ""
    max_photos: int = MAX_PHOTOS
    max_image_mb: int = image_limit_mb()

    @rx.event
    @requires(Role.CLIENT)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.categories = await self._run(services().catalog.categories, ctx.tenant.id)
        wanted = self.router.url.query_parameters.get("category", "")
        self.category_choice = next((str(c.id) for c in self.categories if c.slug == wanted), "")

    @rx.event
    def set_category_choice(self, value: str):
        self.category_choice = value

    _form: dict = {}

    @rx.event
    def stash(self, form: dict):
        """First half of submit: the form fields (the photos follow as an upload)."""
        self._form = form
        self.busy = True

    @rx.event
    @requires(Role.CLIENT)
    async def create(self, ctx: Ctx, files: list[rx.UploadFile]):
        # Only a signed-in client gets here (the guard); the photos are counted and size-checked before any is read.
        photos = await self._call(read_uploads, files, field="photos", max_files=MAX_PHOTOS,
                                  max_bytes=services().settings.max_avatar_bytes)
        if photos is FAILED:
            yield rx.clear_selected_files("request-photos")
            return
        data = self._form | {"category_id": self.category_choice or 0}
        posted = await self._call(_post_request, ctx, data, [content for _, content in photos])
        if posted is FAILED:
            return
        request_id, note = posted
        yield rx.clear_selected_files("request-photos")
        yield rx.toast.success(note)  # "We sent your request to 5 matching pros", or that pros will see it
        yield rx.redirect(f"/requests/{request_id}")


class RequestDetailState(AppState):
    request: RequestRow | None = None
    quotes: list[QuoteRow] = []
    chats: dict[str, int] = {}  # professional id -> conversation id
    loaded: bool = False

    async def _reload(self, ctx: Ctx) -> None:
        self.request, self.quotes, self.chats = await self._run(_request_page, ctx, self._route_id())
        self.loaded = True

    @rx.event
    @requires(Role.CLIENT)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.request = None
        try:
            await self._reload(ctx)
        except DomainError as exc:  # not this client's request: 'Request not found', and why
            self.loaded = True
            return rx.toast.error(exc.message)

    @rx.event
    @requires(Role.CLIENT)
    async def accept(self, ctx: Ctx, quote_id: int):
        try:
            order_id = await self._run(services().quotes.accept_quote, ctx.tenant, ctx.caller, quote_id)
        except DomainError as exc:  # the quotes changed meanwhile (withdrawn, expired): show them as they are now
            await self._reload(ctx)
            return rx.toast.error(exc.message)
        return [rx.toast.success("Quote accepted. Pay to confirm the booking."), rx.redirect(f"/orders/{order_id}")]

    @rx.event
    @requires(Role.CLIENT)
    async def close(self, ctx: Ctx):
        await self._run(services().quotes.close_request, ctx.tenant, ctx.caller, self._route_id())
        await self._reload(ctx)
        return rx.toast.info("Request closed.")
