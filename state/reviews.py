"""Ratings and reviews: the order page's review card, a professional's reviews on their profile, "My reviews" and
the admin's moderation queue.

Every rule (who may review and until when, the double-blind publication, what each viewer may see) is the
backend's (`services().reviews`); these handlers call it off the event loop and show the views it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass

import reflex as rx

from backend.bootstrap import services
from backend.errors import DomainError
from backend.identity import Role
from backend.reviews import MyReviews, OrderReviews, RatingBadge, RatingSummary, ReportedReview, ReviewPage
from backend.reviews.rules import REASON_MAX, REPLY_MAX, SORTS as SORT_KEYS, SUBRATINGS, TEXT_MAX
from state.app_state import FAILED, MEMBER_ROLES, AppState, Ctx, FormMixin, requires

__all__ = ["REASON_MAX", "REPLY_MAX", "SORTS", "SUB_RATINGS", "TEXT_MAX", "MyReviewsState", "OrderReviewsState",
           "ProReviewsState", "ReviewModerationState", "rating_badges"]

# The client's sub-ratings of a professional (the service's input keys) and the orders of a profile's reviews, with
# what the pages call them.
_LABELS = {"quality": "Quality", "communication": "Communication", "punctuality": "Punctuality",
           "value": "Value for money", "newest": "Newest", "highest": "Highest", "lowest": "Lowest"}
SUB_RATINGS = tuple((key, _LABELS[key]) for key in SUBRATINGS)
SORTS = tuple((key, _LABELS[key]) for key in SORT_KEYS)
PER_PAGE = 10


@dataclass(frozen=True)
class Bar:
    """One row of the profile's distribution: "5 stars", how many, and its share of all reviews (the bar's width)."""

    label: str
    count: int
    percent: int


@dataclass(frozen=True)
class SubAverage:
    label: str
    value: str  # "4.7"
    percent: int  # of 5 stars, for the bar


def _bars(summary: RatingSummary) -> list[Bar]:
    total = summary.count or 1
    return [Bar(f"{5 - i} star" + ("" if i == 4 else "s"), n, round(100 * n / total))
            for i, n in enumerate(summary.distribution)]


def _sub_averages(summary: RatingSummary) -> list[SubAverage]:
    values = [(label, getattr(summary, key)) for key, label in SUB_RATINGS]
    return [SubAverage(label, f"{v:.1f}", round(20 * v)) for label, v in values if v > 0]


def rating_badges(ctx: Ctx, user_ids: list[int]) -> dict[str, RatingBadge]:
    """Blocking: rating badges by user id, keyed as strings (a state dict's keys reach the page as strings)."""
    return {str(k): b for k, b in services().reviews.badges(ctx.tenant, sorted(set(user_ids))).items()}


def _review_data(form: dict, with_subratings: bool) -> dict:
    keys = ("stars", "text", *(k for k, _ in SUB_RATINGS if with_subratings))
    return {k: form.get(k, "") for k in keys}


# ---------------------------------------------------------------------------------------------- the order page


class OrderReviewsState(FormMixin, AppState):
    """The order page's "Leave a review" card (loaded beside OrderState, and again after an action on the order)."""

    reviews: OrderReviews | None = None
    editing: bool = False  # the author reopened their unpublished review
    form_key: int = 0  # remounts the form so that its default values follow the review

    async def _refresh(self, ctx: Ctx) -> None:
        self.reviews = await self._run(services().reviews.for_order, ctx.tenant, ctx.caller, self._route_id())
        self.editing = False
        self.form_key += 1

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self._reset_form()
        try:
            await self._refresh(ctx)
        except DomainError:  # not the caller's order: OrderState shows "Order not found" and says why
            self.reviews = None

    @rx.event
    def start_edit(self):
        self._reset_form()
        self.editing = True
        self.form_key += 1

    @rx.event
    def cancel_edit(self):
        self._reset_form()
        self.editing = False
        self.form_key += 1

    @rx.event
    @requires(Role.CLIENT, Role.PROFESSIONAL)
    async def submit(self, ctx: Ctx, form: dict):
        if self.reviews is None:
            return
        self.busy = True
        yield
        data = _review_data(form, self.reviews.with_subratings)
        view = await self._call(services().reviews.submit, ctx.tenant, ctx.caller, self.reviews.order_id, data)
        if view is FAILED:
            yield self._refused("stars", "text", *(k for k, _ in SUB_RATINGS))
            return
        await self._refresh(ctx)
        yield rx.toast.success("Both reviews are published." if view.status == "published" else
                               "Review saved. " + self.reviews.blind_note)

    @rx.event
    @requires(Role.CLIENT, Role.PROFESSIONAL)
    async def withdraw(self, ctx: Ctx):
        await self._run(services().reviews.withdraw, ctx.tenant, ctx.caller, self._route_id())
        self._reset_form()
        await self._refresh(ctx)
        return rx.toast.info("Review withdrawn." + (f" You can write a new one until {self.reviews.deadline}."
                                                    if self.reviews.can_review else ""))

    @rx.event
    @requires(Role.CLIENT, Role.PROFESSIONAL)
    async def reply(self, ctx: Ctx, form: dict):
        if self.reviews is None or self.reviews.theirs is None:
            return
        self.busy = True
        yield
        view = await self._call(services().reviews.reply, ctx.tenant, ctx.caller, self.reviews.theirs.id,
                                form.get("reply", ""))
        if view is FAILED:
            yield self._refused("reply", "text")
            return
        await self._refresh(ctx)
        yield rx.toast.success("Reply posted.")


# ------------------------------------------------------------------------------ a professional's public profile


def _profile_reviews(ctx: Ctx, pro_id: int, sort: str, page: int) -> tuple[RatingSummary, ReviewPage]:
    reviews = services().reviews
    return (reviews.summary(ctx.tenant, pro_id),
            reviews.reviews_of(ctx.tenant, pro_id, sort=sort, page=page, per_page=PER_PAGE))


class ProReviewsState(FormMixin, AppState):
    """The reviews on /pros/[pro_id]: the rating summary, one page of reviews in the chosen order, and reporting one."""

    summary: RatingSummary | None = None
    whole_stars: int = 0  # the average, rounded, for the stars drawn beside it
    bars: list[Bar] = []
    sub_averages: list[SubAverage] = []
    listing: ReviewPage | None = None
    sort: str = "newest"
    report_id: int = 0  # the review being reported (the dialog is open while it is not 0)

    async def _reload(self, ctx: Ctx, page: int) -> None:
        self.summary, self.listing = await self._run(_profile_reviews, ctx, self._route_id(), self.sort, page)
        self.whole_stars = math.floor(self.summary.average + 0.5)  # 4.5 draws 5 stars (round() would draw 4)
        self.bars, self.sub_averages = _bars(self.summary), _sub_averages(self.summary)

    @rx.event
    @requires()
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.summary, self.listing, self.sort, self.report_id = None, None, "newest", 0
        await self._reload(ctx, 1)

    @rx.event
    @requires()
    async def set_sort(self, ctx: Ctx, sort: str | list[str]):
        self.sort = sort if isinstance(sort, str) and sort in SORT_KEYS else "newest"
        await self._reload(ctx, 1)

    @rx.event
    @requires()
    async def go_to_page(self, ctx: Ctx, page: int):
        await self._reload(ctx, page)

    @rx.event
    def open_report(self, review_id: int):
        if not self.user_id:
            return rx.redirect(f"/login?next={self.router.url.path}")
        self._reset_form()
        self.report_id = review_id

    @rx.event
    def set_report_open(self, value: bool):
        if not value:
            self.report_id = 0

    @rx.event
    @requires(*MEMBER_ROLES)
    async def report(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        if await self._call(services().reviews.report, ctx.tenant, ctx.caller, self.report_id,
                            form.get("reason", "")) is FAILED:
            return
        self.report_id = 0
        yield rx.toast.success("Thank you. The marketplace's team will look at this review.")


# ---------------------------------------------------------------------------------------------- "My reviews"


class MyReviewsState(FormMixin, AppState):
    """/reviews: orders still to review (with their deadlines), reviews given, reviews received (and replying)."""

    mine: MyReviews | None = None
    replying_id: int = 0  # the received review being answered (the dialog is open while it is not 0)

    async def _reload(self, ctx: Ctx) -> None:
        self.mine = await self._run(services().reviews.mine, ctx.tenant, ctx.caller)

    @rx.event
    @requires(Role.CLIENT, Role.PROFESSIONAL)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.mine, self.replying_id = None, 0
        await self._reload(ctx)

    @rx.event
    def open_reply(self, review_id: int):
        self._reset_form()
        self.replying_id = review_id

    @rx.event
    def set_reply_open(self, value: bool):
        if not value:
            self.replying_id = 0

    @rx.event
    @requires(Role.CLIENT, Role.PROFESSIONAL)
    async def reply(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        if await self._call(services().reviews.reply, ctx.tenant, ctx.caller, self.replying_id,
                            form.get("reply", "")) is FAILED:
            return
        self.replying_id = 0
        await self._reload(ctx)
        yield rx.toast.success("Reply posted.")


# ---------------------------------------------------------------------------------------- the admin's queue


class ReviewModerationState(FormMixin, AppState):
    """/admin/reviews: reported reviews (open reports first); hiding or restoring one, with a reason."""

    reported: list[ReportedReview] = []
    loaded: bool = False
    moderating_id: int = 0  # the review being hidden or restored (the dialog is open while it is not 0)
    moderating_action: str = ""  # "hide" | "restore"

    async def _reload(self, ctx: Ctx) -> None:
        self.reported = await self._run(services().reviews.reported, ctx.tenant, ctx.caller)
        self.loaded = True

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.loaded, self.moderating_id = False, 0
        await self._reload(ctx)

    @rx.event
    def ask(self, review_id: int, action: str):
        self._reset_form()
        self.moderating_id, self.moderating_action = review_id, action

    @rx.event
    def set_moderation_open(self, value: bool):
        if not value:
            self.moderating_id = 0

    @rx.event
    @requires(Role.ADMIN)
    async def moderate(self, ctx: Ctx, form: dict):
        hide = self.moderating_action == "hide"
        self.busy = True
        yield
        fn = services().reviews.hide if hide else services().reviews.restore
        if await self._call(fn, ctx.tenant, ctx.caller, self.moderating_id, form.get("reason", "")) is FAILED:
            return
        self.moderating_id = 0
        await self._reload(ctx)
        yield rx.toast.success("Review hidden. Its author and its subject can see why." if hide else
                               "Review restored.")
