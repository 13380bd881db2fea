"""Ratings & Reviews: two-way, double-blind reviews of ended orders, replies, moderation, stored aggregates.

The rules are in rules.py; how an order ended comes from orders (`backend.orders.facts`). Every use case takes
`(tenant, caller, ...)`, checks who may do it, validates its input before writing anything, and runs in one
transaction. Notifications are catalogue events written by `NotificationService.notify` in that transaction (each
keyed by what caused it, so a retried use case or timer tells nobody twice) and delivered after it committed.
Whatever changes which reviews are visible recounts the reviewed person's aggregate in that same transaction
(aggregates.refresh).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.identity import Caller, Role, TenantPublic
from backend.notifications.catalogue import Event
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.orders.facts import OrderOutcome, ended_order_ids, order_outcome
from backend.profiles.ports import SearchIndexJobs
from backend.reviews import aggregates
from backend.reviews.aggregates import RatingBadge, RatingSummary, visible
from backend.reviews.models import Review, ReviewInput, ReviewModeration, ReviewReport, ReviewWindow
from backend.reviews.rules import (
    PER_PAGE_MAX, REASON_MAX, REASON_MIN, REMIND_BEFORE, REPLY_MAX, SORTS, SUBRATINGS, Party, ReviewStatus,
    closes_at, day, party_of,
)
from backend.reviews.views import (
    MyReviews, OrderReviews, PendingReview, ReportedReview, ReviewPage, ReviewView, names_of, review_view,
)
from backend.validation import clean_paragraphs, parse_input


NO_ORDER = "No such order."
NO_REVIEW = "No such review."
ADMIN_ONLY = "Only the marketplace admin can moderate reviews."
ADMIN_REVIEWS_PATH = "/admin/reviews"
EXCERPT_CHARS = 160  # of a review's text, in a notification


@dataclass
class _Outbox:
    """What one use case hands over once its transaction committed (a rolled-back one sends nothing)."""

    deliveries: list[int] = field(default_factory=list)  # email/SMS rows notify() wrote: one job each
    told: set[int] = field(default_factory=set)  # users a notification was addressed to (reminders count them)
    rated_pros: set[int] = field(default_factory=set)  # professionals whose rating changed: their search document


class ReviewJobs(JobQueue, SearchIndexJobs, Protocol):
    """Notification deliveries, and the search index (a professional's rating is in their document)."""


def _member(tenant: TenantPublic, caller: Caller | None) -> Caller:
    if caller is None or caller.tenant_id != tenant.id:
        raise PermissionDenied("Please log in first.")
    return caller


def _admin(tenant: TenantPublic, caller: Caller | None) -> Caller:
    if caller is None or not caller.is_admin_of(tenant.id):
        raise PermissionDenied(ADMIN_ONLY)
    return caller


def _text(value: str, *, field_name: str, label: str, low: int, high: int, too_short: str) -> str:
    try:
        return clean_paragraphs("" if value is None else str(value), field=label, max_len=high, min_len=low,
                                too_short=too_short)
    except ValueError as exc:
        raise ValidationFailed({field_name: str(exc)}) from None


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of at most `limit` characters, cut at a word with an ellipsis."""
    line = " ".join((text or "").split())
    if len(line) <= limit:
        return line
    return line[:limit - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def _reason(reason: str) -> str:
    return " ".join(_text(reason, field_name="reason", label="reason", low=REASON_MIN, high=REASON_MAX,
                          too_short=f"Give a reason (at least {REASON_MIN} characters)").split())


def _refusal(outcome: OrderOutcome) -> str:
    """Why this order cannot be reviewed (it is not: see OrderOutcome.reviewable)."""
    if not outcome.ended_by:
        return "You can review this order once it is completed."
    if outcome.state in ("cancelled", "expired"):
        return f"A {outcome.state} order can't be reviewed."
    return "This order was refunded in full, so it can't be reviewed."


class ReviewService:
    def __init__(self, db: Database, settings: Settings, notifications: NotificationService, jobs: ReviewJobs):
        self.db = db
        self.settings = settings
        self.notifications = notifications
        self.jobs = jobs

    # ------------------------------------------------------------------ the order page's card

    def for_order(self, tenant: TenantPublic, caller: Caller, order_id: int) -> OrderReviews:
        """The parties and the tenant admin; anyone else is told the order does not exist. The other party's review
        is shown only once published."""
        now = utcnow()
        self._settle_if_due(tenant, order_id, now)  # a window past its deadline is published before it is shown
        with self.db.tenant_session(tenant.id) as session:
            outcome, party = self._order_for(session, tenant, caller, order_id)
            window = session.get(ReviewWindow, order_id)
            rows = {r.author_id: r for r in session.exec(select(Review).where(Review.order_id == order_id)).all()}
            names = names_of(session, [outcome.client_id, outcome.pro_id])
        deadline = self._deadline(tenant, outcome, window)
        mine = theirs = None
        other_name = ""
        if party is not None:
            me, other = ((outcome.client_id, outcome.pro_id) if party == Party.CLIENT
                         else (outcome.pro_id, outcome.client_id))
            other_name = names[other]
            mine = review_view(rows[me], names) if me in rows else None
            theirs_row = rows.get(other)
            if theirs_row is not None and theirs_row.status == ReviewStatus.PUBLISHED:
                theirs = review_view(theirs_row, names)
        is_open = (outcome.reviewable and deadline is not None and now < deadline
                   and (window is None or window.closed_at is None))
        can_review = party is not None and is_open and (mine is None or mine.status == ReviewStatus.SUBMITTED)
        return OrderReviews(
            order_id=order_id, can_review=can_review, deadline=day(deadline) if outcome.reviewable else "",
            deadline_iso=deadline.isoformat() if outcome.reviewable and deadline else "",
            blind_note=self._note(outcome, party, window, deadline, is_open, mine, other_name,
                                  any(r.status == ReviewStatus.PUBLISHED for r in rows.values())),
            mine=mine, theirs=theirs, other_name=other_name, my_role=party.value if party else "",
            with_subratings=party == Party.CLIENT, reviewable=outcome.reviewable)

    @staticmethod
    def _note(outcome: OrderOutcome, party: Party | None, window: ReviewWindow | None, deadline: datetime | None,
              is_open: bool, mine: ReviewView | None, other_name: str, published: bool) -> str:
        """What happens next, in the card's words (the blind rule and the deadline)."""
        if not outcome.reviewable:
            return _refusal(outcome)
        if window is not None and window.closed_at is not None:
            if mine is not None or (party is None and published):
                return "The reviews of this order are published."
            return f"The review window closed on {day(deadline)}." + (
                f" {other_name}'s review is published." if published and other_name else "")
        if not is_open:
            return f"The review window closed on {day(deadline)}; what was submitted is being published."
        if party is None:
            return (f"The client and the professional can review each other until {day(deadline)}. Each review "
                    "stays hidden until both have reviewed, or until then.")
        note = (f"Your review stays hidden until {other_name} reviews you too, or until {day(deadline)}; "
                "then both are published at once.")
        return note + (" You can edit or withdraw it until then." if mine is not None else "")

    # ------------------------------------------------------------------ writing, editing, withdrawing

    def submit(self, tenant: TenantPublic, caller: Caller, order_id: int, data: dict) -> ReviewView:
        """Create the caller's review of the other party, or edit it while it is unpublished. When both parties have
        submitted, both are published at once, in this transaction."""
        _member(tenant, caller)
        form = parse_input(ReviewInput, data if isinstance(data, dict) else {})
        now = utcnow()
        self._settle_if_due(tenant, order_id, now)
        outbox = _Outbox()
        with self.db.tenant_session(tenant.id) as session:
            outcome, party = self._order_for(session, tenant, caller, order_id)
            if party is None:
                raise PermissionDenied("Only the client and the professional of an order review it.")
            if not outcome.reviewable:
                raise DomainError(_refusal(outcome))
            window, opened = self._open_window(session, tenant, outcome)
            mine = self._review_by(session, order_id, caller.id)
            if mine is not None and mine.status == ReviewStatus.PUBLISHED:
                raise DomainError("Your review of this order is published: it can no longer be changed.")
            if window.closed_at is not None or now >= window.closes_at:
                raise DomainError(f"The review window for this order closed on {day(window.closes_at)}.")
            subject_id = outcome.pro_id if party == Party.CLIENT else outcome.client_id
            subs = {name: getattr(form, name) if party == Party.CLIENT else None for name in SUBRATINGS}
            if mine is None:
                mine = Review(order_id=order_id, author_id=caller.id, subject_id=subject_id, author_role=party.value,
                              stars=form.stars, text=form.text, submitted_at=now, **subs)
                session.add(mine)
            else:
                mine.stars, mine.text, mine.submitted_at = form.stars, form.text, now
                for name, value in subs.items():
                    setattr(mine, name, value)
            session.flush()
            names = names_of(session, [outcome.client_id, outcome.pro_id])
            if opened:  # nobody asked the other party yet (the job at completion did not run)
                self._requested(session, tenant, outcome, subject_id, names, window, outbox)
            if self._review_by(session, order_id, subject_id) is not None:  # both are in: blind no more
                self._publish(session, tenant, outcome, window, now, outbox, names)
            view = review_view(mine, names)
        self._send(tenant, outbox)
        return view

    def withdraw(self, tenant: TenantPublic, caller: Caller, order_id: int) -> None:
        """Delete the caller's unpublished review; they may submit again while the window is open."""
        _member(tenant, caller)
        self._settle_if_due(tenant, order_id, utcnow())
        with self.db.tenant_session(tenant.id) as session:
            outcome, party = self._order_for(session, tenant, caller, order_id)
            if party is None:
                raise PermissionDenied("Only the client and the professional of an order review it.")
            # held like submit holds it, so that the other party's submission cannot publish it meanwhile
            session.exec(select(ReviewWindow).where(ReviewWindow.order_id == order_id).with_for_update()).first()
            mine = self._review_by(session, order_id, caller.id)
            if mine is None:
                raise DomainError("You have no review of this order to withdraw.")
            if mine.status == ReviewStatus.PUBLISHED:
                raise DomainError("Your review of this order is published: it can no longer be withdrawn.")
            session.delete(mine)

    def reply(self, tenant: TenantPublic, caller: Caller, review_id: int, text: str) -> ReviewView:
        """The reviewed person's one public reply to a published (and not hidden) review of them."""
        _member(tenant, caller)
        text = _text(text, field_name="reply", label="reply", low=1, high=REPLY_MAX, too_short="Write your reply")
        with self.db.tenant_session(tenant.id) as session:
            row = session.exec(select(Review).where(Review.id == review_id).with_for_update()).first()
            if row is None or (row.status != ReviewStatus.PUBLISHED and row.author_id != caller.id):
                raise NotFound(NO_REVIEW)
            if row.subject_id != caller.id:
                raise PermissionDenied("Only the person reviewed can reply to a review.")
            if row.hidden:
                raise DomainError("This review is hidden: it can't be replied to.")
            if row.reply:
                raise DomainError("You have already replied to this review.")
            row.reply, row.replied_at = text, utcnow()
            session.flush()
            return review_view(row, names_of(session, [row.author_id, row.subject_id]))

    # ------------------------------------------------------------------ public reads

    def summary(self, tenant: TenantPublic, subject_id: int) -> RatingSummary:
        """The stored aggregate: what the profile shows (zero when nobody has a visible review of them)."""
        with self.db.tenant_session(tenant.id) as session:
            return aggregates.summary_of(subject_id, session.get(aggregates.RatingAggregate, subject_id))

    def recompute(self, tenant: TenantPublic, subject_id: int) -> RatingSummary:
        """The same summary counted now from the visible reviews, stores nothing: it must equal `summary`."""
        with self.db.tenant_session(tenant.id) as session:
            return aggregates.summary_of(subject_id, aggregates.tally(session, subject_id))

    def badges(self, tenant: TenantPublic, subject_ids: list[int]) -> dict[int, RatingBadge]:
        """Stars and counts for cards and leads, one per id asked (a zero badge for nobody's reviewed)."""
        ids = {int(i) for i in subject_ids}
        if not ids:
            return {}
        with self.db.tenant_session(tenant.id) as session:
            rows = {r.subject_id: r for r in session.exec(select(aggregates.RatingAggregate).where(
                aggregates.RatingAggregate.subject_id.in_(ids))).all()}
        return {i: aggregates.badge_of(i, rows.get(i)) for i in ids}

    def reviews_of(self, tenant: TenantPublic, subject_id: int, *, sort: str = "newest", page: int = 1,
                   per_page: int = 10) -> ReviewPage:
        """A person's published, visible reviews, with replies; an unknown sort is "newest", pages are clamped."""
        sort = sort if sort in SORTS else "newest"
        per_page = min(max(int(per_page), 1), PER_PAGE_MAX)
        order = {"newest": [Review.published_at.desc()], "highest": [Review.stars.desc(), Review.published_at.desc()],
                 "lowest": [Review.stars.asc(), Review.published_at.desc()]}[sort]
        with self.db.tenant_session(tenant.id) as session:
            total = session.exec(visible(select(sa.func.count(Review.id)).where(Review.subject_id == subject_id))
                                 ).one()
            pages = max(1, -(-total // per_page))
            page = min(max(int(page), 1), pages)
            rows = session.exec(visible(select(Review).where(Review.subject_id == subject_id))
                                .order_by(*order, Review.id.desc()).offset((page - 1) * per_page).limit(per_page)
                                ).all()
            names = names_of(session, {subject_id, *(r.author_id for r in rows)})
            views = [review_view(r, names) for r in rows]
        return ReviewPage(reviews=views, page=page, pages=pages, total=total, sort=sort)

    def mine(self, tenant: TenantPublic, caller: Caller) -> MyReviews:
        """Orders the caller can still review (soonest deadline first), the reviews they wrote (any status) and the
        published ones of them (their hidden ones included, marked)."""
        _member(tenant, caller)
        now = utcnow()
        with self.db.tenant_session(tenant.id) as session:
            given = session.exec(select(Review).where(Review.author_id == caller.id)
                                 .order_by(Review.submitted_at.desc(), Review.id.desc()).limit(200)).all()
            received = session.exec(select(Review).where(Review.subject_id == caller.id,
                                                         Review.status == ReviewStatus.PUBLISHED)
                                    .order_by(Review.published_at.desc(), Review.id.desc()).limit(200)).all()
            pending = self._pending(session, tenant, caller, now)
            names = names_of(session, {caller.id, *(r.subject_id for r in given), *(r.author_id for r in received)})
            return MyReviews(pending=pending, given=[review_view(r, names) for r in given],
                             received=[review_view(r, names) for r in received])

    def _pending(self, session: Session, tenant: TenantPublic, caller: Caller, now: datetime) -> list[PendingReview]:
        if caller.role not in (Role.CLIENT, Role.PROFESSIONAL):
            return []
        since = now - timedelta(days=tenant.review_window_days)
        ids = ended_order_ids(session, since=since, party_id=caller.id)
        ids += [i for i in session.exec(select(ReviewWindow.order_id).where(
            ReviewWindow.closed_at.is_(None), ReviewWindow.closes_at > now,
            (ReviewWindow.client_id == caller.id) | (ReviewWindow.pro_id == caller.id))).all() if i not in ids]
        written = set(session.exec(select(Review.order_id).where(Review.author_id == caller.id)).all())
        found = []
        for order_id in ids:
            if order_id in written:
                continue
            outcome = order_outcome(session, order_id)
            if outcome is None or not outcome.reviewable or party_of(caller, outcome.client_id, outcome.pro_id) is None:
                continue
            window = session.get(ReviewWindow, order_id)
            deadline = self._deadline(tenant, outcome, window)
            if (window is not None and window.closed_at is not None) or now >= deadline:
                continue
            other = outcome.pro_id if caller.id == outcome.client_id else outcome.client_id
            found.append((deadline, outcome, other))
        names = names_of(session, [other for *_, other in found])
        return [PendingReview(order_id=o.order_id, title=o.title, other_name=names[other], deadline=day(deadline))
                for deadline, o, other in sorted(found, key=lambda f: (f[0], f[1].order_id))]

    # ------------------------------------------------------------------ moderation

    def report(self, tenant: TenantPublic, caller: Caller, review_id: int, reason: str) -> None:
        """Any signed-in user of the marketplace may report a visible review, once until the admin has answered."""
        _member(tenant, caller)
        reason = _reason(reason)
        outbox = _Outbox()
        with self.db.tenant_session(tenant.id) as session:
            row = session.get(Review, review_id)
            if row is None or row.status != ReviewStatus.PUBLISHED or row.hidden:
                raise NotFound(NO_REVIEW)
            if row.author_id == caller.id:
                raise DomainError("You can't report your own review.")
            open_reports = session.exec(select(ReviewReport.reporter_id).where(
                ReviewReport.review_id == review_id, ReviewReport.resolved_at.is_(None))).all()
            if caller.id in open_reports:
                raise DomainError("You have already reported this review; the marketplace team will look at it.")
            report = ReviewReport(review_id=review_id, reporter_id=caller.id, reason=reason)
            session.add(report)
            session.flush()
            if not open_reports:  # the admins and the reviewed person hear of it once, not per report
                self._reported(session, tenant, row, report, outbox)
        self._send(tenant, outbox)

    def _reported(self, session: Session, tenant: TenantPublic, row: Review, report: ReviewReport,
                  outbox: _Outbox) -> None:
        """ADMIN_REVIEW_REPORTED to the admins; the reviewed person is told too, unless they reported it."""
        names = names_of(session, [row.author_id, row.subject_id, report.reporter_id])
        outcome = order_outcome(session, row.order_id)
        title = outcome.title if outcome else ""
        outbox.deliveries += self.notifications.notify_admins(
            session, tenant, Event.ADMIN_REVIEW_REPORTED, key=f"review-report:{report.id}",
            context={"reporter_name": names[report.reporter_id], "reviewer_name": names[row.author_id],
                     "order_title": title, "reason": report.reason, "review_excerpt": _excerpt(row.text)},
            link=ADMIN_REVIEWS_PATH)
        if report.reporter_id != row.subject_id:
            self._moderated(session, tenant, outbox, row, row.subject_id, names, title, key=f"report:{report.id}",
                            change="was reported", note="The marketplace team will look at it.")

    def reported(self, tenant: TenantPublic, caller: Caller) -> list[ReportedReview]:
        """The admin's queue: reviews with reports, those with open reports first, most recently reported first."""
        _admin(tenant, caller)
        with self.db.tenant_session(tenant.id) as session:
            reports = session.exec(select(ReviewReport).order_by(ReviewReport.created_at.desc(),
                                                                 ReviewReport.id.desc()).limit(2000)).all()
            by_review: dict[int, list[ReviewReport]] = {}
            for r in reports:
                by_review.setdefault(r.review_id, []).append(r)
            rows = {r.id: r for r in session.exec(select(Review).where(Review.id.in_(set(by_review)))).all()
                    } if by_review else {}
            names = names_of(session, {i for r in rows.values() for i in (r.author_id, r.subject_id)})
            queue = [ReportedReview(review=review_view(rows[rid], names), reports=len(found),
                                    reasons=[r.reason for r in found], last_reported_at=day(found[0].created_at),
                                    open_reports=sum(1 for r in found if r.resolved_at is None))
                     for rid, found in by_review.items() if rid in rows]
        # by_review keeps the newest report first, so a stable sort on "has open reports" is enough
        return sorted(queue, key=lambda q: q.open_reports == 0)

    def open_reports(self, tenant: TenantPublic, caller: Caller,
                     limit: int = 20) -> tuple[int, list[ReportedReview]]:
        """The admin's operations queue: reviews with open reports (not yet answered by a hide or a restore), the
        one whose oldest open report has waited longest first, and how many such reviews there are in all. At most
        `limit` (<= 100) rows; 0 counts only (the navigation's badge)."""
        _admin(tenant, caller)
        limit = max(0, min(limit, 100))
        still_open = ReviewReport.resolved_at.is_(None)
        with self.db.tenant_session(tenant.id) as session:
            total = session.exec(select(sa.func.count(sa.distinct(ReviewReport.review_id))).where(still_open)).one()
            if not total or not limit:
                return total, []
            oldest = sa.func.min(ReviewReport.created_at)
            ids = session.exec(select(ReviewReport.review_id).where(still_open).group_by(ReviewReport.review_id)
                               .order_by(oldest, ReviewReport.review_id).limit(limit)).all()
            reports = session.exec(select(ReviewReport).where(ReviewReport.review_id.in_(ids))
                                   .order_by(ReviewReport.created_at.desc(), ReviewReport.id.desc())).all()
            by_review: dict[int, list[ReviewReport]] = {rid: [] for rid in ids}  # newest report first
            for r in reports:
                by_review[r.review_id].append(r)
            rows = {r.id: r for r in session.exec(select(Review).where(Review.id.in_(ids))).all()}
            names = names_of(session, {i for r in rows.values() for i in (r.author_id, r.subject_id)})
            queue = []
            for rid, found in by_review.items():
                pending = [r for r in found if r.resolved_at is None]
                if rid in rows and pending:
                    queue.append(ReportedReview(
                        review=review_view(rows[rid], names), reports=len(found), reasons=[r.reason for r in found],
                        last_reported_at=day(found[0].created_at), open_reports=len(pending),
                        open_since=pending[-1].created_at.isoformat()))
            return total, queue

    def hide(self, tenant: TenantPublic, caller: Caller, review_id: int, reason: str) -> ReviewView:
        """Take a published review off the profile and out of the aggregates; its author and subject see why."""
        return self._moderate(tenant, caller, review_id, reason, hide=True)

    def restore(self, tenant: TenantPublic, caller: Caller, review_id: int, reason: str) -> ReviewView:
        return self._moderate(tenant, caller, review_id, reason, hide=False)

    def _moderate(self, tenant: TenantPublic, caller: Caller, review_id: int, reason: str, *,
                  hide: bool) -> ReviewView:
        admin = _admin(tenant, caller)
        reason = _reason(reason)
        now = utcnow()
        outbox = _Outbox()
        with self.db.tenant_session(tenant.id) as session:
            row = session.exec(select(Review).where(Review.id == review_id).with_for_update()).first()
            if row is None or row.status != ReviewStatus.PUBLISHED:
                raise NotFound(NO_REVIEW)
            if row.hidden == hide:
                raise DomainError("This review is already hidden." if hide else "This review is not hidden.")
            row.hidden, row.hidden_reason = hide, reason if hide else ""
            moderation = ReviewModeration(review_id=row.id, action="hide" if hide else "restore", reason=reason,
                                          admin_id=admin.id, at=now)
            session.add(moderation)
            session.exec(sa.update(ReviewReport).where(ReviewReport.review_id == row.id,
                                                       ReviewReport.resolved_at.is_(None)).values(resolved_at=now))
            session.flush()
            aggregates.refresh(session, [row.subject_id])
            if row.author_role == Party.CLIENT:  # the subject is the professional
                outbox.rated_pros.add(row.subject_id)
            names = names_of(session, [row.author_id, row.subject_id])
            outcome = order_outcome(session, row.order_id)
            change, note = (("was hidden", f"The marketplace team hid it: {reason}") if hide
                            else ("is shown again", f"The marketplace team restored it: {reason}"))
            for user_id in (row.subject_id, row.author_id):
                self._moderated(session, tenant, outbox, row, user_id, names, outcome.title if outcome else "",
                                key=f"moderation:{moderation.id}", change=change, note=note)
            view = review_view(row, names)
        self._send(tenant, outbox)
        return view

    # ------------------------------------------------------------------ the window: opening, closing, reminding

    def open_for_order(self, tenant: TenantPublic, order_id: int, now: datetime | None = None) -> int:
        """The job after an order ended: open its review window and ask both parties for a review. Idempotent;
        returns 1 if it opened the window now, 0 if it was open already or the order cannot be reviewed."""
        now = now or utcnow()
        outbox = _Outbox()
        with self.db.tenant_session(tenant.id) as session:
            outcome = order_outcome(session, order_id)
            if outcome is None or not outcome.reviewable:
                return 0
            window, opened = self._open_window(session, tenant, outcome)
            if opened and now < window.closes_at:
                names = names_of(session, [outcome.client_id, outcome.pro_id])
                for user_id in (outcome.client_id, outcome.pro_id):
                    self._requested(session, tenant, outcome, user_id, names, window, outbox)
        self._send(tenant, outbox)
        return int(opened)

    def run_timers(self, tenant: TenantPublic, now: datetime | None = None) -> dict[str, int]:
        """Open the windows the job at completion did not; publish what the closed windows hold; remind once, before
        a window closes, whoever has not reviewed yet. Each window in its own transaction."""
        now = now or utcnow()
        done = {"reviews_published": 0, "review_reminders": 0}
        with self.db.tenant_session(tenant.id) as session:
            ended = ended_order_ids(session, since=now - timedelta(days=tenant.review_window_days))
            known = set(session.exec(select(ReviewWindow.order_id).where(ReviewWindow.order_id.in_(ended))).all()
                        ) if ended else set()
        for order_id in ended:
            if order_id not in known:
                self.open_for_order(tenant, order_id, now)
        with self.db.tenant_session(tenant.id) as session:
            due = session.exec(select(ReviewWindow.order_id).where(ReviewWindow.closed_at.is_(None),
                                                                   ReviewWindow.closes_at <= now)).all()
        for order_id in due:
            done["reviews_published"] += self._settle_if_due(tenant, order_id, now)
        with self.db.tenant_session(tenant.id) as session:
            soon = session.exec(select(ReviewWindow.order_id).where(
                ReviewWindow.closed_at.is_(None), ReviewWindow.reminded_at.is_(None), ReviewWindow.closes_at > now,
                ReviewWindow.closes_at <= now + REMIND_BEFORE)).all()
        for order_id in soon:
            done["review_reminders"] += self._remind(tenant, order_id, now)
        return done

    def _remind(self, tenant: TenantPublic, order_id: int, now: datetime) -> int:
        outbox = _Outbox()
        with self.db.tenant_session(tenant.id) as session:
            window = session.exec(select(ReviewWindow).where(
                ReviewWindow.order_id == order_id, ReviewWindow.closed_at.is_(None),
                ReviewWindow.reminded_at.is_(None)).with_for_update()).first()
            if window is None:
                return 0
            window.reminded_at = now
            written = set(session.exec(select(Review.author_id).where(Review.order_id == order_id)).all())
            outcome = order_outcome(session, order_id)
            names = names_of(session, [window.client_id, window.pro_id])
            for user_id, other in ((window.client_id, window.pro_id), (window.pro_id, window.client_id)):
                if user_id not in written:
                    self._notify(session, tenant, outbox, Event.REVIEW_REMINDER, user_id,
                                 key=f"review:{order_id}:reminder", link=f"/orders/{order_id}",
                                 context={"order_title": outcome.title, "other_party": names[other],
                                          "due_date": day(window.closes_at)})
        self._send(tenant, outbox)
        return len(outbox.told)

    def _settle_if_due(self, tenant: TenantPublic, order_id: int, now: datetime) -> int:
        """Publish what a window past its deadline holds and close it (the timer's work, done by whoever comes
        first). Returns how many reviews it published."""
        outbox = _Outbox()
        with self.db.tenant_session(tenant.id) as session:
            window = session.exec(select(ReviewWindow).where(
                ReviewWindow.order_id == order_id, ReviewWindow.closed_at.is_(None),
                ReviewWindow.closes_at <= now).with_for_update()).first()
            if window is None:
                return 0
            outcome = order_outcome(session, order_id)
            published = self._publish(session, tenant, outcome, window, now, outbox,
                                      names_of(session, [window.client_id, window.pro_id]))
        self._send(tenant, outbox)
        return published

    def _publish(self, session: Session, tenant: TenantPublic, outcome: OrderOutcome, window: ReviewWindow,
                 now: datetime, outbox: _Outbox, names: dict[int, str]) -> int:
        """Publish every submitted review of the order at once and close its window; recount the aggregates of the
        people reviewed, in this transaction. The caller holds the window's row."""
        rows = session.exec(select(Review).where(Review.order_id == window.order_id,
                                                 Review.status == ReviewStatus.SUBMITTED)).all()
        for row in rows:
            row.status, row.published_at = ReviewStatus.PUBLISHED, now
        window.closed_at = now
        session.flush()
        if rows:
            aggregates.refresh(session, [r.subject_id for r in rows])
            outbox.rated_pros.update(r.subject_id for r in rows if r.subject_id == outcome.pro_id)
            for row in rows:  # each reviewed person hears of the review of them
                self._notify(session, tenant, outbox, Event.REVIEW_PUBLISHED, row.subject_id,
                             key=f"review:{row.id}:published", link=f"/orders/{row.order_id}",
                             context={"reviewer_name": names[row.author_id], "rating": row.stars,
                                      "order_title": outcome.title, "review_excerpt": _excerpt(row.text)})
        return len(rows)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _order_for(session: Session, tenant: TenantPublic, caller: Caller | None,
                   order_id: int) -> tuple[OrderOutcome, Party | None]:
        """The order and the caller's part in it (None: the tenant admin); NotFound for anyone else."""
        outcome = order_outcome(session, order_id) if caller is not None and caller.tenant_id == tenant.id else None
        if outcome is None:
            raise NotFound(NO_ORDER)
        party = party_of(caller, outcome.client_id, outcome.pro_id)
        if party is None and not caller.is_admin_of(tenant.id):
            raise NotFound(NO_ORDER)
        return outcome, party

    @staticmethod
    def _review_by(session: Session, order_id: int, author_id: int) -> Review | None:
        return session.exec(select(Review).where(Review.order_id == order_id, Review.author_id == author_id)).first()

    @staticmethod
    def _deadline(tenant: TenantPublic, outcome: OrderOutcome, window: ReviewWindow | None) -> datetime | None:
        """The stored deadline, or the one the window will get when it opens (the same rule)."""
        if window is not None:
            return window.closes_at
        return closes_at(outcome.ended_at, tenant.review_window_days) if outcome.ended_at else None

    @staticmethod
    def _open_window(session: Session, tenant: TenantPublic, outcome: OrderOutcome) -> tuple[ReviewWindow, bool]:
        """The order's window, held for this transaction; created if missing (True: by this call). Concurrent
        openers insert-if-absent, so there is one per order."""
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        result = session.execute(insert(ReviewWindow).values(
            tenant_id=tenant.id, order_id=outcome.order_id, client_id=outcome.client_id, pro_id=outcome.pro_id,
            opened_at=outcome.ended_at, closes_at=closes_at(outcome.ended_at, tenant.review_window_days))
            .on_conflict_do_nothing(index_elements=["order_id"]).returning(sa.literal(1)))
        opened = result.first() is not None  # a row comes back only when this call inserted it
        window = session.exec(select(ReviewWindow).where(ReviewWindow.order_id == outcome.order_id)
                              .with_for_update()).one()
        return window, opened

    def _requested(self, session: Session, tenant: TenantPublic, outcome: OrderOutcome, user_id: int,
                   names: dict[int, str], window: ReviewWindow, outbox: _Outbox) -> None:
        other = outcome.pro_id if user_id == outcome.client_id else outcome.client_id
        self._notify(session, tenant, outbox, Event.REVIEW_REQUESTED, user_id,
                     key=f"review:{outcome.order_id}:requested", link=f"/orders/{outcome.order_id}",
                     context={"order_title": outcome.title, "other_party": names[other],
                              "due_date": day(window.closes_at)})

    def _moderated(self, session: Session, tenant: TenantPublic, outbox: _Outbox, row: Review, user_id: int,
                   names: dict[int, str], order_title: str, *, key: str, change: str, note: str) -> None:
        """REVIEW_MODERATED to the author or the subject of a review, in their words ("Your review of ..." /
        "...'s review of you")."""
        review = (f"Your review of {names[row.subject_id]}" if user_id == row.author_id
                  else f"{names[row.author_id]}'s review of you")
        self._notify(session, tenant, outbox, Event.REVIEW_MODERATED, user_id, key=f"review:{row.id}:{key}",
                     link=f"/orders/{row.order_id}",
                     context={"review": review, "change": change, "order_title": order_title, "note": note})

    def _notify(self, session: Session, tenant: TenantPublic, outbox: _Outbox, event: Event, user_id: int, *,
                key: str, context: dict, link: str) -> None:
        """One catalogue event to one user, written in this transaction; delivered after commit (_send)."""
        outbox.deliveries += self.notifications.notify(session, tenant, event, [user_id], key=key, context=context,
                                                       link=link)
        outbox.told.add(user_id)

    def _send(self, tenant: TenantPublic, outbox: _Outbox) -> None:
        for note_id in outbox.deliveries:
            self.jobs.deliver_notification(tenant.id, note_id)
        for pro_id in sorted(outbox.rated_pros):
            self.jobs.index_pro(tenant.id, pro_id)
