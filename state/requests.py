"""Clients: post a service request, see its quotes side by side, accept one."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.geo import CITIES
from backend.catalog.service import CategoryRow
from backend.orders.forms import MAX_PHOTOS
from backend.orders.quotes import QuoteRow, RequestRow
from state.app_state import FAILED, AppState, FormMixin
from state.uploads import read_uploads


class MyRequestsState(AppState):
    requests: list[RequestRow] = []
    loaded: bool = False

    @rx.event
    def load(self):
        self.loaded = False
        tenant, actor, redirect = self._guard(Role.CLIENT)
        if redirect or self.access != "ok":
            return redirect
        self.requests = services().quotes.my_requests(tenant, actor)
        self.loaded = True


class NewRequestState(FormMixin, AppState):
    categories: list[CategoryRow] = []
    category_choice: str = ""
    cities: list[str] = sorted(CITIES)
    max_photos: int = MAX_PHOTOS

    @rx.event
    def load(self):
        self._reset_form()
        tenant, _, redirect = self._guard(Role.CLIENT)
        if redirect or self.access != "ok":
            return redirect
        self.categories = services().catalog.categories(tenant.id)
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
    async def create(self, files: list[rx.UploadFile]):
        tenant, actor, _ = self._guard(Role.CLIENT)
        if self.access != "ok":
            return
        # Only a signed-in client gets here; the photos are counted and size-checked before any is read.
        try:
            photos = [data for _, data in await read_uploads(
                files, field="photos", max_files=MAX_PHOTOS, max_bytes=services().settings.max_avatar_bytes)]
        except DomainError as exc:
            self._fail(exc)
            yield rx.clear_selected_files("request-photos")
            return
        data = self._form | {"category_id": self.category_choice or 0}
        request_id = await self._call(services().quotes.create_request, tenant, actor, data, photos)
        if request_id is FAILED:
            return
        yield rx.clear_selected_files("request-photos")
        yield rx.toast.success("Your request is live: matching pros now see it in their leads.")
        yield rx.redirect(f"/requests/{request_id}")


class RequestDetailState(AppState):
    request: RequestRow | None = None
    quotes: list[QuoteRow] = []
    chats: dict[str, int] = {}  # professional id -> conversation id
    loaded: bool = False

    def _reload(self, tenant, actor) -> None:
        self.request, self.quotes = services().quotes.request_with_quotes(tenant, actor, self._route_id())
        self.chats = {str(c.other_id): c.id for c in services().chat.conversations(tenant, actor)
                      if c.request_id == self.request.id}
        self.loaded = True

    @rx.event
    def load(self):
        self.loaded = False
        self.request = None
        tenant, actor, redirect = self._guard(Role.CLIENT)
        if redirect or self.access != "ok":
            return redirect
        try:
            self._reload(tenant, actor)
        except DomainError as exc:
            self.loaded = True
            return rx.toast.error(exc.message)

    @rx.event
    def accept(self, quote_id: int):
        tenant, actor, _ = self._guard(Role.CLIENT)
        try:
            order_id = services().quotes.accept_quote(tenant, actor, quote_id)
        except DomainError as exc:
            self._reload(tenant, actor)
            return rx.toast.error(exc.message)
        return [rx.toast.success("Quote accepted. Pay to confirm the booking."), rx.redirect(f"/orders/{order_id}")]

    @rx.event
    def close(self):
        tenant, actor, _ = self._guard(Role.CLIENT)
        try:
            services().quotes.close_request(tenant, actor, self._route_id())
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._reload(tenant, actor)
        return rx.toast.info("Request closed.")
