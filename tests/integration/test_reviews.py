"""Ratings & Reviews on SQLite and PostgreSQL: who may review when, the double-blind rule in every order of events,
edits and withdrawals before publication only, replies, moderation, aggregates, timers, and who may see what."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from backend.db import utcnow
from backend.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.notifications.models import Channel, Notification
from backend.reviews import PRIOR_MEAN, PRIOR_REVIEWS
from backend.reviews.models import RatingAggregate, Review, ReviewModeration, ReviewReport, ReviewWindow
from backend.tenancy.models import Tenant
from tests.integration.test_orders import TODAY, act, make_admin, market, user  # noqa: F401 (market: a fixture)

GOOD = {"stars": "5", "text": "Fixed the tap in twenty minutes and left the kitchen spotless.", "quality": "5",
        "communication": "4", "punctuality": "5", "value": "4"}
FROM_PRO = {"stars": 4, "text": "Clear instructions and paid on time."}


@pytest.fixture
def rm(market):
    """The order market plus the tenant admin."""
    market["admin"] = make_admin(market["svc"], market["t"])
    return market


def booked(m, client="client", pro="pro") -> int:
    """A booking at the professional's rate (2 h at $80), accepted by the professional."""
    svc, t = m["svc"], m["t"]
    order_id = svc.orders.book(t, m[client], m[pro].id, {"day": (TODAY + timedelta(days=1)).isoformat(), "hours": 2})
    act(svc, t, m[pro], order_id, "accept")
    return order_id


def ended(m, how="complete", client="client", pro="pro") -> int:
    """An order taken to its end: completed, resolved by the admin, cancelled, expired, or refunded in full."""
    svc, t = m["svc"], m["t"]
    order_id = booked(m, client, pro)
    if how == "expire":
        svc.orders.run_timers(t, utcnow() + timedelta(hours=49))
        return order_id
    act(svc, t, m[client], order_id, "pay")
    if how == "cancel":
        act(svc, t, m[pro], order_id, "cancel")
        return order_id
    act(svc, t, m[pro], order_id, "start")
    act(svc, t, m[pro], order_id, "deliver")
    if how == "refunded_then_complete":
        svc.orders.refund(t, m["admin"], order_id, "160", "Refunded in full after a complaint")
        how = "complete"
    if how == "complete":
        act(svc, t, m[client], order_id, "complete")
    elif how.startswith("resolve_"):
        svc.orders.apply(t, m[client], order_id, "dispute", note="The tap still drips")
        svc.orders.apply(t, m["admin"], order_id, how, note="Settled after photos", refund="60")
    return order_id


def deadline(m, order_id, who="client") -> datetime:
    return datetime.fromisoformat(m["svc"].reviews.for_order(m["t"], m[who], order_id).deadline_iso)


def review_rows(m) -> list[Review]:
    with m["svc"].db.tenant_session(m["t"].id) as s:
        return list(s.exec(select(Review).order_by(Review.id)).all())


def notes(m, who, event: str, channel: Channel = Channel.IN_APP) -> list[Notification]:
    """The delivery rows of one catalogue event to one user on one channel, oldest first."""
    with m["svc"].db.tenant_session(m["t"].id) as s:
        return list(s.exec(select(Notification).where(Notification.user_id == m[who].id,
                                                      Notification.channel == channel, Notification.event == event)
                           .order_by(Notification.id)).all())


def assert_aggregates_agree(m, *who):
    for key in who:
        svc, t, subject = m["svc"], m["t"], m[key].id
        assert svc.reviews.summary(t, subject) == svc.reviews.recompute(t, subject), key


# ---------------------------------------------------------------- who may review, and when

@pytest.mark.parametrize("how", ["complete", "resolve_release", "resolve_split"])
def test_both_parties_may_review_a_completed_order_or_one_resolved_with_payment(rm, how):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m, how)
    for who, other, subs in (("client", "pro", True), ("pro", "client", False)):
        card = svc.reviews.for_order(t, m[who], order_id)
        assert (card.reviewable, card.can_review, card.with_subratings, card.my_role) == (
            True, True, subs, "client" if who == "client" else "professional")
        assert card.mine is None and card.theirs is None
        assert card.other_name == m[other].email.split("@")[0]
        assert card.deadline and card.deadline in card.blind_note and "stays hidden until" in card.blind_note
    admin_card = svc.reviews.for_order(t, m["admin"], order_id)
    assert (admin_card.can_review, admin_card.my_role, admin_card.mine, admin_card.theirs) == (False, "", None, None)
    with pytest.raises(PermissionDenied):
        svc.reviews.submit(t, m["admin"], order_id, GOOD)
    for outsider in ("other_client", "pro2"):
        with pytest.raises(NotFound):
            svc.reviews.for_order(t, m[outsider], order_id)
        with pytest.raises(NotFound):
            svc.reviews.submit(t, m[outsider], order_id, GOOD)
    assert review_rows(m) == []


@pytest.mark.parametrize(("how", "message"), [("cancel", "cancelled order can't be reviewed"),
                                              ("expire", "expired order can't be reviewed"),
                                              ("resolve_refund", "refunded in full"),
                                              ("refunded_then_complete", "refunded in full")])
def test_orders_that_ended_otherwise_cannot_be_reviewed(rm, how, message):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m, how)
    card = svc.reviews.for_order(t, m["client"], order_id)
    assert (card.reviewable, card.can_review, card.deadline) == (False, False, "")
    assert message in card.blind_note
    for who in ("client", "pro"):
        with pytest.raises(DomainError, match=message):
            svc.reviews.submit(t, m[who], order_id, GOOD)
    assert svc.reviews.open_for_order(t, order_id) == 0
    assert review_rows(m) == [] and svc.reviews.mine(t, m["client"]).pending == []


def test_a_running_order_is_not_reviewable_yet(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = booked(m)
    act(svc, t, m["client"], order_id, "pay")
    card = svc.reviews.for_order(t, m["client"], order_id)
    assert (card.reviewable, card.can_review) == (False, False)
    with pytest.raises(DomainError, match="once it is completed"):
        svc.reviews.submit(t, m["client"], order_id, GOOD)
    assert review_rows(m) == []


def test_the_window_is_the_tenants_setting_counted_from_completion_and_the_deadline_shown_is_enforced(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    with svc.db.platform_session() as s:
        s.get(Tenant, t.id).review_window_days = 3
    t = m["t"] = svc.tenants.by_id(t.id)
    before = utcnow()
    order_id = ended(m)
    closes = deadline(m, order_id)
    assert before + timedelta(days=3) <= closes <= utcnow() + timedelta(days=3)
    card = svc.reviews.for_order(t, m["pro"], order_id)
    assert card.deadline == closes.strftime("%b %d, %Y") and card.deadline_iso == closes.isoformat()
    assert svc.reviews.mine(t, m["pro"]).pending[0].deadline == card.deadline
    svc.reviews.submit(t, m["client"], order_id, GOOD)
    assert svc.reviews.run_timers(t, closes - timedelta(seconds=1))["reviews_published"] == 0
    assert svc.reviews.for_order(t, m["pro"], order_id).theirs is None
    assert svc.reviews.run_timers(t, closes)["reviews_published"] == 1  # at the instant shown, not later
    assert svc.reviews.for_order(t, m["pro"], order_id).theirs.stars == 5


# ---------------------------------------------------------------- the blind rule, in every order of events

@pytest.mark.parametrize("first", ["client", "pro"])
def test_blind_until_both_have_submitted_then_both_published_at_once(rm, first):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    second = "pro" if first == "client" else "client"
    data = {"client": GOOD, "pro": FROM_PRO}
    mine = svc.reviews.submit(t, m[first], order_id, data[first])
    assert (mine.status, mine.published_at) == ("submitted", "")
    # the author may change it while it waits
    mine = svc.reviews.submit(t, m[first], order_id, data[first] | {"stars": "3", "text": "Changed my mind."})
    assert (mine.stars, mine.text, mine.status) == (3, "Changed my mind.", "submitted")
    assert len(review_rows(m)) == 1
    card = svc.reviews.for_order(t, m[first], order_id)
    assert card.can_review and card.mine.status == "submitted" and card.theirs is None
    assert "edit or withdraw" in card.blind_note
    # ...and nobody else sees it: not the other party, not the profile, not the aggregates
    other_card = svc.reviews.for_order(t, m[second], order_id)
    assert other_card.theirs is None and other_card.mine is None and other_card.can_review
    subject = m[second].id
    assert svc.reviews.reviews_of(t, subject).total == 0
    assert svc.reviews.summary(t, subject).count == 0
    assert svc.reviews.mine(t, m[second]).received == []
    with pytest.raises(NotFound):  # nor can it be replied to or reported
        svc.reviews.reply(t, m[second], mine.id, "Thanks!")
    with pytest.raises(NotFound):
        svc.reviews.report(t, m["other_client"], mine.id, "Rude words")
    # the second submission publishes both, in one transaction
    theirs = svc.reviews.submit(t, m[second], order_id, data[second])
    assert theirs.status == "published" and theirs.published_at
    for who, other in ((first, second), (second, first)):
        card = svc.reviews.for_order(t, m[who], order_id)
        assert card.mine.status == card.theirs.status == "published" and not card.can_review
        assert card.theirs.author_id == m[other].id and card.blind_note == "The reviews of this order are published."
        assert svc.reviews.reviews_of(t, m[who].id).total == 1
    rows = review_rows(m)
    assert len(rows) == 2 and rows[0].published_at == rows[1].published_at
    assert svc.reviews.summary(t, m["pro"].id).average_text == ("3.0" if first == "client" else "5.0")
    assert_aggregates_agree(m, "client", "pro")
    # published: no more edits, no withdrawal, no second review
    for who in (first, second):
        with pytest.raises(DomainError, match="published"):
            svc.reviews.submit(t, m[who], order_id, data[who] | {"stars": "1"})
        with pytest.raises(DomainError, match="published"):
            svc.reviews.withdraw(t, m[who], order_id)
    assert [r.stars for r in review_rows(m)] == [r.stars for r in rows]
    assert svc.reviews.run_timers(t, deadline(m, order_id))["reviews_published"] == 0


def test_only_one_party_reviews_then_the_window_closes_and_theirs_is_published(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    closes = deadline(m, order_id)
    svc.reviews.submit(t, m["client"], order_id, GOOD)
    # two days before the close: one reminder, to whoever has not reviewed
    assert svc.reviews.run_timers(t, closes - timedelta(days=3)) == {"reviews_published": 0, "review_reminders": 0}
    assert svc.reviews.run_timers(t, closes - timedelta(days=1)) == {"reviews_published": 0, "review_reminders": 1}
    assert svc.reviews.run_timers(t, closes - timedelta(hours=1))["review_reminders"] == 0  # once
    [reminder] = notes(m, "pro", "review_reminder")
    assert reminder.subject == "Review client by " + closes.strftime("%b %d, %Y")
    assert [n.subject for n in notes(m, "pro", "review_reminder", Channel.EMAIL)] == ["Last chance to review client"]
    assert notes(m, "client", "review_reminder") == []
    assert svc.reviews.for_order(t, m["pro"], order_id).theirs is None
    assert svc.reviews.run_timers(t, closes) == {"reviews_published": 1, "review_reminders": 0}
    card = svc.reviews.for_order(t, m["pro"], order_id)
    assert card.theirs.stars == 5 and card.mine is None and not card.can_review
    assert "closed" in card.blind_note
    with pytest.raises(DomainError, match="closed"):
        svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    assert svc.reviews.summary(t, m["pro"].id).count == 1 and svc.reviews.summary(t, m["client"].id).count == 0
    # the reviewed person hears of the review of them; the author, whose review it is, does not
    [published] = notes(m, "pro", "review_published", Channel.EMAIL)
    assert published.subject == "client left you a 5-star review" and published.link == f"/orders/{order_id}"
    assert notes(m, "client", "review_published") == []
    assert svc.reviews.mine(t, m["pro"]).pending == []
    assert_aggregates_agree(m, "client", "pro")


def test_nobody_reviews_and_the_window_closes(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    closes = deadline(m, order_id)
    assert svc.reviews.run_timers(t, closes - timedelta(days=1))["review_reminders"] == 2
    assert svc.reviews.run_timers(t, closes)["reviews_published"] == 0
    for who in ("client", "pro"):
        card = svc.reviews.for_order(t, m[who], order_id)
        assert (card.can_review, card.mine, card.theirs) == (False, None, None)
        assert card.blind_note.startswith("The review window closed on")
        with pytest.raises(DomainError, match="closed"):
            svc.reviews.submit(t, m[who], order_id, GOOD)
    assert review_rows(m) == []


def test_withdrawing_takes_it_back_and_the_author_may_submit_again(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    with pytest.raises(DomainError, match="no review"):
        svc.reviews.withdraw(t, m["client"], order_id)
    svc.reviews.submit(t, m["client"], order_id, GOOD)
    svc.reviews.withdraw(t, m["client"], order_id)
    assert review_rows(m) == []
    assert svc.reviews.submit(t, m["pro"], order_id, FROM_PRO).status == "submitted"  # nothing to meet it now
    assert svc.reviews.submit(t, m["client"], order_id, GOOD).status == "published"
    assert {r.status for r in review_rows(m)} == {"published"}


# ---------------------------------------------------------------- notifications and the job at completion

def test_completion_asks_both_parties_once_and_the_reviews_work_without_that_job(rm, monkeypatch):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    title = svc.orders.get(t, m["client"], order_id).title
    for who in ("client", "pro"):
        assert [n.subject for n in notes(m, who, "review_requested")] == [f"How did \"{title}\" go?"]
        assert [n.subject for n in notes(m, who, "review_requested", Channel.EMAIL)] == [f"How did {title} go?"]
    assert svc.reviews.open_for_order(t, order_id) == 0  # idempotent: asked once
    assert len(notes(m, "client", "review_requested")) == 1

    monkeypatch.setattr(svc.jobs, "open_reviews", lambda tenant_id, order_id: None)  # the job is lost
    lost = ended(m)
    with svc.db.tenant_session(t.id) as s:
        assert s.get(ReviewWindow, lost) is None
    card = svc.reviews.for_order(t, m["client"], lost)  # eligibility and deadline come from the order itself
    assert card.can_review and card.deadline
    assert [p.order_id for p in svc.reviews.mine(t, m["pro"]).pending] == [order_id, lost]
    assert svc.reviews.run_timers(t)["reviews_published"] == 0  # the timer opens the missing window...
    with svc.db.tenant_session(t.id) as s:
        assert s.get(ReviewWindow, lost).closes_at.isoformat() == card.deadline_iso  # ...with the deadline shown
    assert len(notes(m, "client", "review_requested")) == 2


def test_the_periodic_work_includes_the_review_timers(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    totals = svc.run_timers()
    assert (totals["reviews_published"], totals["review_reminders"]) == (0, 0)
    with svc.db.tenant_session(t.id) as s:
        s.get(ReviewWindow, order_id).closes_at = utcnow() - timedelta(seconds=1)
    assert svc.run_timers()["reviews_published"] == 1
    assert svc.reviews.for_order(t, m["client"], order_id).theirs.author_id == m["pro"].id


def test_a_window_past_its_deadline_is_published_when_the_order_page_is_opened_before_the_timer_runs(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    svc.reviews.submit(t, m["client"], order_id, GOOD)
    with svc.db.tenant_session(t.id) as s:
        s.get(ReviewWindow, order_id).closes_at = utcnow() - timedelta(seconds=1)
    card = svc.reviews.for_order(t, m["pro"], order_id)
    assert card.theirs is not None and card.theirs.status == "published" and not card.can_review
    assert svc.reviews.summary(t, m["pro"].id).count == 1
    assert_aggregates_agree(m, "pro")


# ---------------------------------------------------------------- bad input writes nothing

@pytest.mark.parametrize(("data", "field", "message"), [
    (GOOD | {"stars": "0"}, "stars", "between 1 and 5"), (GOOD | {"stars": 6}, "stars", "between 1 and 5"),
    (GOOD | {"stars": "lots"}, "stars", "between 1 and 5"), ({"text": "Fine."}, "stars", "between 1 and 5"),
    (GOOD | {"text": ""}, "text", "Write a few words"), (GOOD | {"text": "   \n "}, "text", "Write a few words"),
    (GOOD | {"text": "x" * 2001}, "text", "at most 2000"), (GOOD | {"quality": "0"}, "quality", "1 to 5"),
    (GOOD | {"value": "9"}, "value", "1 to 5"),
])
def test_bad_input_gets_a_clear_message_and_writes_nothing(rm, data, field, message):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    with pytest.raises(ValidationFailed) as exc:
        svc.reviews.submit(t, m["client"], order_id, data)
    assert message in exc.value.errors[field], exc.value.errors
    assert review_rows(m) == []


def test_someone_elses_order_a_second_review_and_bad_replies_change_nothing(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    with pytest.raises(NotFound, match="No such order"):
        svc.reviews.submit(t, m["other_client"], order_id, GOOD)
    with pytest.raises(NotFound):
        svc.reviews.submit(t, m["client"], 999_999, GOOD)
    client_review = svc.reviews.submit(t, m["client"], order_id, GOOD)
    svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    before = [(r.id, r.stars, r.text, r.reply) for r in review_rows(m)]
    with pytest.raises(DomainError, match="published"):
        svc.reviews.submit(t, m["client"], order_id, GOOD | {"stars": "1"})
    with pytest.raises(ValidationFailed) as exc:
        svc.reviews.reply(t, m["pro"], client_review.id, "  ")
    assert "reply" in exc.value.errors
    with pytest.raises(ValidationFailed):
        svc.reviews.reply(t, m["pro"], client_review.id, "x" * 1001)
    assert [(r.id, r.stars, r.text, r.reply) for r in review_rows(m)] == before
    # a professional's review of a client carries no sub-ratings, whatever is sent
    assert {r.author_role: r.quality for r in review_rows(m)} == {"client": 5, "professional": None}


# ---------------------------------------------------------------- replies

def test_the_reviewed_person_replies_once_after_publication(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    review = svc.reviews.submit(t, m["client"], order_id, GOOD)
    svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    with pytest.raises(PermissionDenied):  # the author does not reply to their own review
        svc.reviews.reply(t, m["client"], review.id, "And another thing")
    with pytest.raises(PermissionDenied):
        svc.reviews.reply(t, m["other_client"], review.id, "Me too")
    replied = svc.reviews.reply(t, m["pro"], review.id, "  Thank you, Alice!\nSee you next time.  ")
    assert (replied.reply, bool(replied.replied_at)) == ("Thank you, Alice!\nSee you next time.", True)
    with pytest.raises(DomainError, match="already replied"):
        svc.reviews.reply(t, m["pro"], review.id, "Again")
    page = svc.reviews.reviews_of(t, m["pro"].id)
    assert page.reviews[0].reply == "Thank you, Alice!\nSee you next time."


# ---------------------------------------------------------------- moderation

def test_report_hide_and_restore(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    review = svc.reviews.submit(t, m["client"], order_id, GOOD | {"stars": "1", "text": "Terrible and rude."})
    svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    pro_id = m["pro"].id
    assert svc.reviews.summary(t, pro_id).count == 1
    with pytest.raises(ValidationFailed):
        svc.reviews.report(t, m["pro"], review.id, "no")
    with pytest.raises(DomainError, match="your own"):
        svc.reviews.report(t, m["client"], review.id, "I regret it")
    with pytest.raises(PermissionDenied):
        svc.reviews.report(t, None, review.id, "Anonymous")
    svc.reviews.report(t, m["pro"], review.id, "It is about another job")
    svc.reviews.report(t, m["other_client"], review.id, "Looks fake")
    with pytest.raises(DomainError, match="already reported"):
        svc.reviews.report(t, m["pro"], review.id, "Still about another job")
    # the admins hear of it once (not per report); the reviewed person reported it, so is not told about it
    [alert] = notes(m, "admin", "admin_review_reported")
    assert alert.link == "/admin/reviews" and alert.subject == "Review reported by pro"
    assert alert.body.endswith("by client: It is about another job")
    assert len(notes(m, "admin", "admin_review_reported", Channel.EMAIL)) == 1
    assert notes(m, "pro", "review_moderated") == []
    for who in ("client", "pro"):
        with pytest.raises(PermissionDenied):
            svc.reviews.reported(t, m[who])
        with pytest.raises(PermissionDenied):
            svc.reviews.hide(t, m[who], review.id, "Not allowed")
    queue = svc.reviews.reported(t, m["admin"])
    assert [(q.review.id, q.reports, q.open_reports) for q in queue] == [(review.id, 2, 2)]
    assert queue[0].reasons == ["Looks fake", "It is about another job"] and queue[0].last_reported_at
    with pytest.raises(ValidationFailed):
        svc.reviews.hide(t, m["admin"], review.id, "")

    hidden = svc.reviews.hide(t, m["admin"], review.id, "Describes another job")
    assert (hidden.hidden, hidden.hidden_reason) == (True, "Describes another job")
    with pytest.raises(DomainError, match="already hidden"):
        svc.reviews.hide(t, m["admin"], review.id, "Again")
    assert svc.reviews.summary(t, pro_id).count == 0 and svc.reviews.reviews_of(t, pro_id).total == 0
    assert svc.reviews.badges(t, [pro_id])[pro_id].count == 0
    assert_aggregates_agree(m, "pro", "client")
    # the author and the subject still see it, marked, with the reason
    assert svc.reviews.for_order(t, m["client"], order_id).mine.hidden_reason == "Describes another job"
    assert svc.reviews.for_order(t, m["pro"], order_id).theirs.hidden
    assert [r.hidden for r in svc.reviews.mine(t, m["pro"]).received] == [True]
    [to_subject] = notes(m, "pro", "review_moderated")
    [to_author] = notes(m, "client", "review_moderated")
    assert to_subject.subject == "client's review of you was hidden"
    assert to_author.subject == "Your review of pro was hidden"
    assert all("The marketplace team hid it: Describes another job" in n.body for n in (to_subject, to_author))
    assert len(notes(m, "client", "review_moderated", Channel.EMAIL)) == 1
    with pytest.raises(NotFound):  # hidden: no new reports
        svc.reviews.report(t, m["other_client"], review.id, "Looks fake")
    with pytest.raises(DomainError, match="hidden"):
        svc.reviews.reply(t, m["pro"], review.id, "Thanks for hiding it")
    assert svc.reviews.reported(t, m["admin"])[0].open_reports == 0

    restored = svc.reviews.restore(t, m["admin"], review.id, "The client showed the invoice")
    assert (restored.hidden, restored.hidden_reason) == (False, "")
    assert [n.subject for n in notes(m, "pro", "review_moderated")] == [
        "client's review of you was hidden", "client's review of you is shown again"]
    with pytest.raises(DomainError, match="not hidden"):
        svc.reviews.restore(t, m["admin"], review.id, "Again")
    assert svc.reviews.summary(t, pro_id).count == 1 and svc.reviews.reviews_of(t, pro_id).total == 1
    assert_aggregates_agree(m, "pro")
    with svc.db.tenant_session(t.id) as s:
        audit = s.exec(select(ReviewModeration).order_by(ReviewModeration.id)).all()
        assert [(a.action, a.reason, a.admin_id) for a in audit] == [
            ("hide", "Describes another job", m["admin"].id), ("restore", "The client showed the invoice",
                                                               m["admin"].id)]
        assert all(r.resolved_at is not None for r in s.exec(select(ReviewReport)).all())


def test_unpublished_reviews_cannot_be_moderated(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    review = svc.reviews.submit(t, m["client"], order_id, GOOD)
    with pytest.raises(NotFound):
        svc.reviews.hide(t, m["admin"], review.id, "Peeking")
    assert svc.reviews.reported(t, m["admin"]) == []


# ---------------------------------------------------------------- aggregates, lists, badges

def test_aggregates_distribution_subratings_score_sorting_and_paging(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    stars = [5, 4, 4, 2]
    for i, n in enumerate(stars):
        client = "client" if i % 2 == 0 else "other_client"
        order_id = ended(m, client=client)
        svc.reviews.submit(t, m[client], order_id, GOOD | {"stars": n, "text": f"Review {i}",
                                                           "quality": n, "value": ""})
        svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    summary = svc.reviews.summary(t, m["pro"].id)
    assert (summary.count, summary.average, summary.average_text, summary.distribution) == (
        4, 3.75, "3.8", [1, 2, 0, 1, 0])
    assert (summary.quality, summary.communication, summary.punctuality, summary.value) == (3.75, 4.0, 5.0, 0.0)
    assert summary.score == (PRIOR_REVIEWS * PRIOR_MEAN + 15) / (PRIOR_REVIEWS + 4)
    assert summary == svc.reviews.recompute(t, m["pro"].id)
    client_summary = svc.reviews.summary(t, m["client"].id)
    assert (client_summary.count, client_summary.average_text, client_summary.quality) == (2, "4.0", 0.0)
    nobody = svc.reviews.summary(t, m["pro2"].id)
    assert (nobody.count, nobody.average_text, nobody.distribution, nobody.score) == (0, "", [0] * 5, PRIOR_MEAN)
    badges = svc.reviews.badges(t, [m["pro"].id, m["pro2"].id])
    assert (badges[m["pro"].id].count, badges[m["pro"].id].average_text) == (4, "3.8")
    assert (badges[m["pro2"].id].count, badges[m["pro2"].id].average_text) == (0, "")
    assert svc.reviews.badges(t, []) == {}

    newest = svc.reviews.reviews_of(t, m["pro"].id)
    assert [r.text for r in newest.reviews] == ["Review 3", "Review 2", "Review 1", "Review 0"]
    assert [r.stars for r in svc.reviews.reviews_of(t, m["pro"].id, sort="highest").reviews] == [5, 4, 4, 2]
    assert [r.stars for r in svc.reviews.reviews_of(t, m["pro"].id, sort="lowest").reviews] == [2, 4, 4, 5]
    page = svc.reviews.reviews_of(t, m["pro"].id, page=2, per_page=3)
    assert (page.page, page.pages, page.total, [r.text for r in page.reviews]) == (2, 2, 4, ["Review 0"])
    clamped = svc.reviews.reviews_of(t, m["pro"].id, sort="random", page=99, per_page=3)
    assert (clamped.sort, clamped.page) == ("newest", 2)
    # a stronger record outranks a single perfect review
    one = ended(m, pro="pro2")
    svc.reviews.submit(t, m["client"], one, GOOD)
    svc.reviews.submit(t, m["pro2"], one, FROM_PRO)
    assert svc.reviews.summary(t, m["pro2"].id).score == (PRIOR_REVIEWS * PRIOR_MEAN + 5) / (PRIOR_REVIEWS + 1)


def test_my_reviews_lists_pending_given_and_received(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    first, second = ended(m), ended(m, client="other_client")
    svc.reviews.submit(t, m["client"], first, GOOD)
    pro_view = svc.reviews.mine(t, m["pro"])
    assert [(p.order_id, p.other_name) for p in pro_view.pending] == [(first, "client"), (second, "other")]
    assert pro_view.given == [] and pro_view.received == []  # the client's is not published yet
    client_view = svc.reviews.mine(t, m["client"])
    assert client_view.pending == [] and [r.status for r in client_view.given] == ["submitted"]
    svc.reviews.submit(t, m["pro"], first, FROM_PRO)
    pro_view = svc.reviews.mine(t, m["pro"])
    assert [p.order_id for p in pro_view.pending] == [second]
    assert [(r.order_id, r.status) for r in pro_view.given] == [(first, "published")]
    assert [(r.order_id, r.author_id) for r in pro_view.received] == [(first, m["client"].id)]
    assert svc.reviews.mine(t, m["admin"]).pending == []
    with pytest.raises(PermissionDenied):
        svc.reviews.mine(t, None)


# ---------------------------------------------------------------- tenants and ownership

def test_another_marketplace_sees_and_touches_nothing(rm):
    m = rm
    svc, t, acme = m["svc"], m["t"], m["acme"]
    order_id = ended(m)
    review = svc.reviews.submit(t, m["client"], order_id, GOOD)
    svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    stranger = user(svc, acme, "stranger@example.com")
    acme_admin = make_admin(svc, acme, "boss@acme.com")
    with pytest.raises(NotFound):  # a login of one marketplace is nobody on another
        svc.reviews.for_order(t, stranger, order_id)
    with pytest.raises(PermissionDenied):
        svc.reviews.report(t, stranger, review.id, "Looks fake")
    with pytest.raises(NotFound):  # the same order id, asked on the stranger's own marketplace
        svc.reviews.for_order(acme, stranger, order_id)
    with pytest.raises(NotFound):
        svc.reviews.submit(acme, stranger, order_id, GOOD)
    with pytest.raises(NotFound):
        svc.reviews.report(acme, stranger, review.id, "Looks fake")
    with pytest.raises(NotFound):
        svc.reviews.hide(acme, acme_admin, review.id, "Not ours")
    with pytest.raises(PermissionDenied):
        svc.reviews.hide(t, acme_admin, review.id, "Not ours")
    assert svc.reviews.reported(acme, acme_admin) == []
    assert svc.reviews.reviews_of(acme, m["pro"].id).total == 0
    assert svc.reviews.summary(acme, m["pro"].id).count == 0
    assert svc.reviews.badges(acme, [m["pro"].id])[m["pro"].id].count == 0
    assert svc.reviews.run_timers(acme, utcnow() + timedelta(days=30)) == {"reviews_published": 0,
                                                                          "review_reminders": 0}
    assert svc.reviews.summary(t, m["pro"].id).count == 1


def test_the_aggregate_is_one_row_per_person_reviewed(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    for client in ("client", "other_client"):
        order_id = ended(m, client=client)
        svc.reviews.submit(t, m[client], order_id, GOOD)
        svc.reviews.submit(t, m["pro"], order_id, FROM_PRO)
    with svc.db.tenant_session(t.id) as s:
        rows = {r.subject_id: r.review_count for r in s.exec(select(RatingAggregate)).all()}
    assert rows == {m["pro"].id: 2, m["client"].id: 1, m["other_client"].id: 1}


def test_both_parties_submitting_at_once_publish_both_exactly_once(rm):
    m = rm
    svc, t = m["svc"], m["t"]
    order_id = ended(m)
    errors = []

    def submit(who, data):
        try:
            svc.reviews.submit(t, m[who], order_id, data)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=args) for args in (("client", GOOD), ("pro", FROM_PRO))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert errors == []
    assert [r.status for r in review_rows(m)] == ["published", "published"]
    assert svc.reviews.summary(t, m["pro"].id).count == svc.reviews.summary(t, m["client"].id).count == 1
    assert_aggregates_agree(m, "client", "pro")
