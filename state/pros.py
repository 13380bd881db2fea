"""Professional profiles: the pro's editor, the public profile page with booking, and the search page (/pros)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.catalog.service import CategoryRow
from backend.matching import DEFAULT_RADIUS_KM, ProCard, SearchPage, Sort
from backend.profiles.models import WEEKDAYS
from backend.profiles.pros import MAX_PORTFOLIO, ProView
from state.app_state import FAILED, AppState, Ctx, FormMixin, requires
from state.uploads import image_limit_mb, read_uploads

DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                     strict=True))


def _editor(ctx: Ctx) -> tuple[list[CategoryRow], ProView]:
    return services().catalog.categories(ctx.tenant.id), services().pros.get_own(ctx.tenant, ctx.caller)


# ------------------------------------------------------------------------------------------------ search (/pros)

# What /pros?... carries, in this order (the matching service's search form reads the same names).
SEARCH_PARAMS = ("q", "category", "place", "radius", "price_min", "price_max", "min_rating", "verified", "date",
                 "sort", "page")
DEFAULTS = {"radius": str(DEFAULT_RADIUS_KM), "sort": Sort.BEST.value, "page": "1"}  # left out of the URL
ANY_RATING = "any"  # a radio's value cannot be empty
RATINGS = ((ANY_RATING, "Any rating"), ("3", "3 and up"), ("4", "4 and up"), ("4.5", "4.5 and up"))
RADII = ("5", "10", "25", "50", "100", "250")
SORTS = ((Sort.BEST.value, "Best match"), (Sort.DISTANCE.value, "Nearest first"),
         (Sort.RATING.value, "Highest rated"), (Sort.PRICE_LOW.value, "Lowest price"),
         (Sort.PRICE_HIGH.value, "Highest price"))


@dataclass(frozen=True)
class FacetLink:
    """A category in the sidebar: its count, whether it is the chosen one, and the search it links to (the chosen
    one links to the search without it)."""

    id: int
    name: str
    count: int
    selected: bool
    href: str


@dataclass(frozen=True)
class FilterChip:
    """An applied filter above the results, and the search without it (its remove link)."""

    label: str
    href: str


def search_href(params: Mapping[str, str], **changes: str) -> str:
    """The /pros URL of `params` with `changes`: defaults and blanks left out, the radius only with a place, and
    back to the first page unless the change is the page."""
    merged = {**params, **changes}
    if "page" not in changes:
        merged.pop("page", None)
    if not str(merged.get("place") or "").strip():
        merged.pop("radius", None)
    kept = [(k, v) for k in SEARCH_PARAMS if (v := str(merged.get(k) or "").strip()) and v != DEFAULTS.get(k)]
    return "/pros" + (f"?{urlencode(kept)}" if kept else "")


def _day(iso: str) -> str:
    try:
        return date.fromisoformat(iso).strftime("%a %-d %b")
    except ValueError:
        return iso


def filter_chips(params: Mapping[str, str], category: str, place: str) -> list[FilterChip]:
    """The applied filters in words ("Plumbing", "Within 25 km of Austin, ...", "4+ stars"), each with its remove
    link. `category` and `place` are the names the service resolved them to."""
    chips = []
    if params.get("category"):
        chips.append(FilterChip(category or "Category", search_href(params, category="")))
    if params.get("place"):
        chips.append(FilterChip(f"Within {params.get('radius') or DEFAULT_RADIUS_KM} km of {place}",
                                search_href(params, place="")))
    low, high = params.get("price_min", ""), params.get("price_max", "")
    if low or high:
        words = f"{low} to {high}" if low and high else (f"From {low}" if low else f"Up to {high}")
        chips.append(FilterChip(f"{words} per hour", search_href(params, price_min="", price_max="")))
    if params.get("min_rating"):
        chips.append(FilterChip(f"{params['min_rating']}+ stars", search_href(params, min_rating="")))
    if params.get("verified"):
        chips.append(FilterChip("Verified only", search_href(params, verified="")))
    if params.get("date"):
        chips.append(FilterChip(f"Available {_day(params['date'])}", search_href(params, date="")))
    return chips


def _search(ctx: Ctx, params: dict[str, str]) -> tuple[SearchPage, dict[str, str]]:
    """Blocking: one page of results, and the params as searched. A category may come as its slug (the landing
    page's links): it is searched, and linked to from here on, by its id."""
    params = dict(params)
    category = params.get("category", "")
    if category and not category.isdigit():
        slugs = {c.slug: c.id for c in services().catalog.categories(ctx.tenant.id)}
        params["category"] = str(slugs.get(category.lower(), category))  # an unknown one: the service says so
    return services().matching.search(ctx.tenant, params), params


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
            self.pro = await self._run(services().matching.public, ctx.tenant, self._route_id())
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


class SearchState(FormMixin, AppState):
    """The search page, /pros. The URL is the search: every change navigates to the new /pros?... (a history entry),
    and `load` (on_load, also on back/forward and for a shared link) reads it, shows it in the fields and asks the
    matching service. Links (categories, chips, pages) are plain hrefs built here from the applied search."""

    applied: dict[str, str] = {}  # the search the URL asked for, as the service took it
    # the fields (drafts until applied)
    q: str = ""
    place: str = ""
    radius: str = str(DEFAULT_RADIUS_KM)
    price_min: str = ""
    price_max: str = ""
    min_rating: str = ANY_RATING
    verified: bool = False
    date: str = ""
    sort: str = Sort.BEST.value
    suggestions: list[str] = []
    # the results
    cards: list[ProCard] = []
    total: int = 0
    page: int = 1
    pages: int = 1
    summary: str = ""
    facets: list[FacetLink] = []
    chips: list[FilterChip] = []
    all_categories_href: str = "/pros"
    clear_href: str = "/pros"
    previous_href: str = ""
    next_href: str = ""
    loaded: bool = False  # the first search has answered (a spinner until then)
    searching: bool = False  # a search is under way (the results shown are the previous ones)
    unavailable: bool = False  # the engine did not answer
    filters_open: bool = False  # the filters drawer (phones)
    min_day: str = ""

    def _show_fields(self, params: dict[str, str]) -> None:
        self.q, self.place = params.get("q", ""), params.get("place", "")
        self.radius = params.get("radius", "") or str(DEFAULT_RADIUS_KM)
        self.price_min, self.price_max = params.get("price_min", ""), params.get("price_max", "")
        self.min_rating = params.get("min_rating", "") or ANY_RATING
        self.verified = params.get("verified", "") not in ("", "0")
        self.date = params.get("date", "")
        self.sort = params.get("sort", "") or Sort.BEST.value

    def _fields(self) -> dict[str, str]:
        """The filters as the fields hold them now (the keyword and the category stay as applied)."""
        return {"place": self.place.strip(), "radius": self.radius, "price_min": self.price_min.strip(),
                "price_max": self.price_max.strip(), "min_rating": "" if self.min_rating == ANY_RATING else
                self.min_rating, "verified": "1" if self.verified else "", "date": self.date, "sort": self.sort}

    def _show_results(self, result: SearchPage | None, params: dict[str, str]) -> None:
        self.applied = params
        self.cards = result.cards if result else []
        self.total = result.total if result else 0
        self.page, self.pages = (result.page, result.pages) if result else (1, 1)
        self.summary = result.summary if result else ""
        self.facets = [FacetLink(f.id, f.name, f.count, f.selected,
                                 search_href(params, category="" if f.selected else str(f.id)))
                       for f in (result.facets if result else [])]
        category = next((f.name for f in self.facets if f.selected), "")
        self.chips = filter_chips(params, category, result.place if result else params.get("place", ""))
        self.all_categories_href = search_href(params, category="")
        self.clear_href = search_href({"q": params.get("q", ""), "sort": params.get("sort", "")})
        self.previous_href = search_href(params, page=str(self.page - 1)) if self.page > 1 else ""
        self.next_href = search_href(params, page=str(self.page + 1)) if self.page < self.pages else ""

    @rx.event
    @requires()
    async def load(self, ctx: Ctx):
        query = self.router.url.query_parameters
        params = {k: v for k in SEARCH_PARAMS if (v := str(query.get(k, "")).strip())}
        self._show_fields(params)
        self.min_day = date.today().isoformat()
        self.searching, self.unavailable, self.suggestions = True, False, []
        yield
        result = await self._call(_search, ctx, params)
        self.searching = False
        if result is FAILED:
            self.loaded = True
            self._show_results(None, params)
            if not self.errors:  # not the input: the engine (the message says to try again)
                self.unavailable = True
                yield rx.toast.error(self.form_error)
            return
        page, params = result
        if page.total and page.page > page.pages:  # an old link past the last page: the last page, in its place
            yield rx.redirect(search_href(params, page=str(page.pages)), replace=True)
            return
        turned = self.loaded and params.get("page", "1") != self.applied.get("page", "1")
        self._show_results(page, params)
        self.loaded = True
        if page.place:  # which place the words were taken for ("Austin" -> "Austin, TX, United States")
            self.place = page.place
        if turned:  # another page of the same search: start reading it from the top
            yield rx.call_script("window.scrollTo({top: 0, behavior: 'smooth'})")

    @rx.event
    @requires(reuse_seconds=30)
    async def type_query(self, ctx: Ctx, value: str):
        """The search box, as the user types (debounced by the input): up to 8 suggestions."""
        self.q = value[:100]
        self.suggestions = await self._run(services().matching.suggest, ctx.tenant, self.q)

    @rx.event
    def set_place(self, value: str):
        self.place = value[:120]

    @rx.event
    def set_price_min(self, value: str):
        self.price_min = value[:12]

    @rx.event
    def set_price_max(self, value: str):
        self.price_max = value[:12]

    @rx.event
    def set_date(self, value: str):
        self.date = value[:10]

    @rx.event
    def set_filters_open(self, value: bool):
        self.filters_open = value

    @rx.event
    def submit_search(self, form: dict):
        """The search box's form: the keyword (as typed: the field's debounce may not have reached `q` yet)."""
        self.q = str(form.get("q", self.q)).strip()[:100]
        return rx.redirect(search_href(self.applied, q=self.q))

    @rx.event
    def apply_filters(self, form: dict):
        """The filters' form (Enter in a field, or Apply): the text fields as typed, the rest as chosen."""
        for name in ("place", "price_min", "price_max", "date"):
            if name in form:
                setattr(self, name, str(form[name]).strip())
        return rx.redirect(search_href(self.applied, **self._fields()))

    @rx.event
    def choose_radius(self, value: str):
        self.radius = value
        if self.place.strip():  # without a place, the distance means nothing yet: it waits for one
            return rx.redirect(search_href(self.applied, **self._fields()))

    @rx.event
    def choose_rating(self, value: str):
        self.min_rating = value
        return rx.redirect(search_href(self.applied, **self._fields()))

    @rx.event
    def choose_verified(self, value: bool):
        self.verified = bool(value)
        return rx.redirect(search_href(self.applied, **self._fields()))

    @rx.event
    def choose_sort(self, value: str):
        self.sort = value
        return rx.redirect(search_href(self.applied, sort=value))

    @rx.var
    def active_filters(self) -> int:
        """How many filters narrow the search (the count on the phones' Filters button)."""
        a = self.applied
        return sum(bool(a.get(k)) for k in ("category", "place", "min_rating", "verified", "date")) + bool(
            a.get("price_min") or a.get("price_max"))
