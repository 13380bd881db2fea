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
from backend.reviews import RatingBadge
from state.app_state import FAILED, AppState, Ctx, FormMixin, requires
from state.reviews import rating_badges
from state.uploads import image_limit_mb, read_uploads

DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                     strict=True))


def _editor(ctx: Ctx) -> tuple[list[CategoryRow], ProView]:
    return services().catalog.categories(ctx.tenant.id), services().pros.get_own(ctx.tenant, ctx.caller)


def _directory(ctx: Ctx, category_id: int | None) -> tuple[list[ProView], dict[str, RatingBadge]]:
    """Blocking: the professionals in a category (None: all), and their rating badges by user id."""
    pros = services().directory.browse(ctx.tenant, category_id=category_id)
    return pros, rating_badges(ctx, [p.user_id for p in pros])


def _refused_upload():
    return [rx.clear_selected_files("portfolio"), rx.toast.error("Only professionals have a portfolio.")]


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
    max_image_mb: int = image_limit_mb()

    def _apply(self, view: ProView) -> None:
        self.pro = view
        self.chosen = list(view.category_ids)
        self.days_on = list(view.availability)
        self.blocked = list(view.blocked_dates)
        self.form_key += 1

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.categories, view = await self._run(_editor, ctx)
        self._apply(view)

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
    @requires(Role.PROFESSIONAL)
    async def save(self, ctx: Ctx, form: dict):
        availability = {d: [form.get(f"{d}_start", "09:00"), form.get(f"{d}_end", "17:00")]
                        for d in WEEKDAYS if d in self.days_on}
        data = {k: form.get(k, "") for k in ("headline", "bio", "skills", "city", "radius_km", "hourly_rate")}
        data |= {"category_ids": self.chosen, "availability": availability, "blocked_dates": self.blocked}
        view = await self._call(services().pros.update_own, ctx.tenant, ctx.caller, data)
        if view is FAILED:
            return rx.toast.error("Please check the highlighted fields.")
        self._apply(view)
        return rx.toast.success("Profile saved.")

    @rx.event
    @requires(Role.PROFESSIONAL, refusal=_refused_upload)
    async def upload(self, ctx: Ctx, files: list[rx.UploadFile]):
        # Who is asking (the guard) and how many files first; each file is read only then, one at a time, never
        # beyond its limit (the service checks role, count, size and content again).
        if not files:
            return rx.toast.error("Choose images first.")
        room = MAX_PORTFOLIO - (len(self.pro.portfolio) if self.pro is not None else 0)
        if len(files) > room:
            return [rx.clear_selected_files("portfolio"),
                    rx.toast.error(f"A portfolio holds at most {MAX_PORTFOLIO} images: "
                                   f"there is room for {max(room, 0)} more.")]
        for upload in files:
            uploads = await self._call(read_uploads, [upload], field="portfolio", max_files=1,
                                       max_bytes=services().settings.max_avatar_bytes)
            view = uploads if uploads is FAILED else await self._call(
                services().pros.add_portfolio_image, ctx.tenant, ctx.caller, uploads[0][1], upload.filename or "")
            if view is FAILED:
                return [rx.clear_selected_files("portfolio"), self._refused("portfolio")]
            self.pro = view
        return [rx.clear_selected_files("portfolio"), rx.toast.success("Portfolio updated.")]

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def remove_image(self, ctx: Ctx, image_id: int):
        self.pro = await self._run(services().pros.remove_portfolio_image, ctx.tenant, ctx.caller, image_id)
        return rx.toast.info("Image removed.")


class PublicProState(FormMixin, AppState):
    pro: ProView | None = None
    missing: bool = False
    book_open: bool = False
    min_day: str = ""

    @rx.event
    @requires()
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.pro, self.missing = None, False
        try:
            self.pro = await self._run(services().directory.public, ctx.tenant, self._route_id())
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
    @requires()
    async def book(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        order_id = await self._call(services().orders.book, ctx.tenant, ctx.caller, self.pro.user_id, form)
        if order_id is FAILED:
            return
        self.book_open = False
        yield rx.toast.success("Booking requested. The professional will confirm.")
        yield rx.redirect(f"/orders/{order_id}")


class DirectoryState(AppState):
    pros: list[ProView] = []
    badges: dict[str, RatingBadge] = {}  # user id -> stars and count, for the cards
    categories: list[CategoryRow] = []
    category_choice: str = "all"
    loaded: bool = False

    async def _reload(self, ctx: Ctx) -> None:
        chosen = next((c.id for c in self.categories if c.slug == self.category_choice), None)
        self.pros, self.badges = await self._run(_directory, ctx, chosen)
        self.loaded = True

    @rx.event
    @requires()
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.categories = await self._run(services().catalog.categories, ctx.tenant.id)
        self.category_choice = self.router.url.query_parameters.get("category", "all") or "all"
        await self._reload(ctx)

    @rx.event
    @requires()
    async def choose(self, ctx: Ctx, slug: str):
        self.category_choice = slug
        await self._reload(ctx)
