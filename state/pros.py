"""Professional profiles: the pro's editor, the public profile page with booking, the directory."""

from __future__ import annotations

from datetime import date

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.geo import CITIES
from backend.catalog.service import CategoryRow
from backend.profiles.models import WEEKDAYS
from backend.profiles.pros import MAX_PORTFOLIO, ProView
from state.app_state import FAILED, AppState, FormMixin
from state.uploads import read_uploads

DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                     strict=True))


class ProEditorState(FormMixin, AppState):
    pro: ProView | None = None
    categories: list[CategoryRow] = []
    chosen: list[int] = []
    days_on: list[str] = []
    blocked: list[str] = []
    blocked_input: str = ""
    form_key: int = 0
    cities: list[str] = sorted(CITIES)
    max_portfolio: int = MAX_PORTFOLIO

    def _apply(self, view: ProView) -> None:
        self.pro = view
        self.chosen = list(view.category_ids)
        self.days_on = list(view.availability)
        self.blocked = list(view.blocked_dates)
        self.form_key += 1

    @rx.event
    def load(self):
        self._reset_form()
        tenant, actor, redirect = self._guard(Role.PROFESSIONAL)
        if redirect or self.access != "ok":
            return redirect
        self.categories = services().catalog.categories(tenant.id)
        self._apply(services().pros.get_own(tenant, actor))

    @rx.event
    def toggle_category(self, category_id: int):
        self.chosen = [c for c in self.chosen if c != category_id] if category_id in self.chosen else [
            *self.chosen, category_id]

    @rx.event
    def toggle_day(self, day: str):
        self.days_on = [d for d in self.days_on if d != day] if day in self.days_on else [*self.days_on, day]

    @rx.event
    def set_blocked_input(self, value: str):
        self.blocked_input = value

    @rx.event
    def add_blocked(self):
        if self.blocked_input and self.blocked_input not in self.blocked:
            self.blocked = sorted([*self.blocked, self.blocked_input])
        self.blocked_input = ""

    @rx.event
    def remove_blocked(self, day: str):
        self.blocked = [d for d in self.blocked if d != day]

    @rx.event
    def save(self, form: dict):
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        availability = {d: [form.get(f"{d}_start", "09:00"), form.get(f"{d}_end", "17:00")]
                        for d in WEEKDAYS if d in self.days_on}
        data = {k: form.get(k, "") for k in ("headline", "bio", "skills", "city", "radius_km", "hourly_rate")}
        data |= {"category_ids": self.chosen, "availability": availability, "blocked_dates": self.blocked}
        try:
            view = services().pros.update_own(tenant, actor, data)
        except DomainError as exc:
            self._fail(exc)
            return rx.toast.error("Please check the highlighted fields.")
        self._reset_form()
        self._apply(view)
        return rx.toast.success("Profile saved.")

    @rx.event
    async def upload(self, files: list[rx.UploadFile]):
        # Who is asking and how many files first; each file is read only then, one at a time, never beyond
        # its limit (the service checks role, count, size and content again).
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        if self.access != "ok" or actor is None:
            return [rx.clear_selected_files("portfolio"), rx.toast.error("Only professionals have a portfolio.")]
        if not files:
            return rx.toast.error("Choose images first.")
        room = MAX_PORTFOLIO - (len(self.pro.portfolio) if self.pro is not None else 0)
        if len(files) > room:
            return [rx.clear_selected_files("portfolio"),
                    rx.toast.error(f"A portfolio holds at most {MAX_PORTFOLIO} images: "
                                   f"there is room for {max(room, 0)} more.")]
        for upload in files:
            try:
                [(_, data)] = await read_uploads([upload], field="portfolio", max_files=1,
                                                 max_bytes=services().settings.max_avatar_bytes)
            except DomainError as exc:
                self._fail(exc)
                return [rx.clear_selected_files("portfolio"),
                        rx.toast.error(self.errors.get("portfolio", exc.message))]
            result = await self._call(services().pros.add_portfolio_image, tenant, actor, data,
                                      upload.filename or "")
            if result is FAILED:
                return [rx.clear_selected_files("portfolio"),
                        rx.toast.error(self.errors.get("portfolio", self.form_error))]
            self.pro = result
        return [rx.clear_selected_files("portfolio"), rx.toast.success("Portfolio updated.")]

    @rx.event
    def remove_image(self, image_id: int):
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        try:
            self.pro = services().pros.remove_portfolio_image(tenant, actor, image_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return rx.toast.info("Image removed.")


class PublicProState(FormMixin, AppState):
    pro: ProView | None = None
    missing: bool = False
    book_open: bool = False
    min_day: str = ""

    @rx.event
    def load(self):
        self._reset_form()
        self.pro, self.missing = None, False
        tenant, _, redirect = self._guard()
        if redirect or self.access != "ok":
            return redirect
        try:
            self.pro = services().pros.public(tenant, self._route_id())
        except DomainError:
            self.missing = True
        self.min_day = date.today().isoformat()

    @rx.event
    def set_book_open(self, value: bool):
        self._reset_form()
        if value and self.user_role != "client":
            return rx.redirect(f"/login?next={self.router.url.path}") if not self.user_id else rx.toast.error(
                "Log in as a client to book.")
        self.book_open = value

    @rx.event
    async def book(self, form: dict):
        tenant, actor, _ = self._guard()
        self.busy = True
        yield
        order_id = await self._call(services().orders.book, tenant, actor, self.pro.user_id, form)
        if order_id is FAILED:
            return
        self.book_open = False
        yield rx.toast.success("Booking requested. The professional will confirm.")
        yield rx.redirect(f"/orders/{order_id}")


class DirectoryState(AppState):
    pros: list[ProView] = []
    categories: list[CategoryRow] = []
    category_choice: str = "all"
    loaded: bool = False

    def _reload(self, tenant) -> None:
        chosen = next((c.id for c in self.categories if c.slug == self.category_choice), None)
        self.pros = services().pros.browse(tenant, category_id=chosen)
        self.loaded = True

    @rx.event
    def load(self):
        self.loaded = False
        tenant, _, redirect = self._guard()
        if redirect or self.access != "ok":
            return redirect
        self.categories = services().catalog.categories(tenant.id)
        self.category_choice = self.router.url.query_parameters.get("category", "all") or "all"
        self._reload(tenant)

    @rx.event
    def choose(self, slug: str):
        tenant, _, _ = self._guard()
        self.category_choice = slug
        self._reload(tenant)
