"""The search index kept fresh, on SQLite and PostgreSQL, with the embedded engine (tantivy under the test's data_dir).

Every change that affects a professional's document reaches the index through the `index_pro` job after commit
(inline here): a profile edit, the admin's verified badge, suspension and reactivation, a verified email, a review
published, hidden or restored, a completed order. Suspended and unverified pros are never found. `check` finds an
index that disagrees with the database; `reindex` (and the CLI's `reindex` / `check-index`) fixes it. One tenant's
documents never answer another's search. The search form says what is wrong, field by field. The order signals
(completed jobs, response rate, median time to quote, last quote) follow their stated definitions.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from backend import cli
from backend.accounts.models import User, UserStatus
from backend.db import utcnow
from backend.errors import DomainError, ValidationFailed
from backend.matching import MatchingService
from backend.matching.documents import build_pro_documents
from backend.matching.ports import Kind, ProQuery, SearchUnavailable, fingerprinted
from backend.notifications.models import Notification
from backend.orders.models import LeadDecline, Order, OrderState, Quote, ServiceRequest
from backend.orders.signals import OrderSignals
from backend.profiles.models import ProProfile
from backend.reviews.signals import RatingSignals
from tests.conftest import make_services
from tests.integration.test_orders import PW, act, category_id, make_admin, user

ALL_WEEK = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
TOMORROW = date.today() + timedelta(days=1)
REVIEW = {"stars": "5", "text": "Fixed the tap in twenty minutes and left the kitchen spotless.", "quality": "5",
          "communication": "5", "punctuality": "5", "value": "5"}


# ---------------------------------------------------------------------------------------------------- helpers

def verify_email(svc, tenant, email):
    """Follow the link of the newest verification email, as the user would."""
    with svc.db.tenant_session(tenant.id) as s:
        note = s.exec(select(Notification).where(Notification.recipient == email)
                      .order_by(Notification.id.desc())).first()
    token = svc.notifications.dev_mailbox.read(note.provider_id).split("/verify?token=")[1].split()[0]
    svc.accounts.verify_email(tenant, token)


def pro(svc, tenant, email, *, name, headline="Plumber for leaks and boilers", city="Austin", slugs=("plumbing",),
        skills="", verified_email=True):
    actor = user(svc, tenant, email, role="professional", name=name)
    if verified_email:
        verify_email(svc, tenant, email)
    svc.pros.update_own(tenant, actor, {
        "headline": headline, "city": city, "radius_km": 40, "hourly_rate": "80", "skills": skills,
        "category_ids": [category_id(svc, tenant, s) for s in slugs], "availability": ALL_WEEK})
    return actor


def names(svc, tenant, **params) -> list[str]:
    return [card.name for card in svc.matching.search(tenant, params).cards]


def indexed(svc, tenant, pro_id):
    """The pro's document as the index holds it (None: not indexed)."""
    hits = svc.matching.engine.search_pros(tenant.id, ProQuery(limit=100)).hits
    return next((hit.doc for hit in hits if hit.doc.pro_id == pro_id), None)


def completed_order(svc, tenant, client, pro_actor) -> int:
    order_id = svc.orders.book(tenant, client, pro_actor.id, {"day": TOMORROW.isoformat(), "hours": 2})
    act(svc, tenant, pro_actor, order_id, "accept")
    act(svc, tenant, client, order_id, "pay")
    act(svc, tenant, pro_actor, order_id, "start")
    act(svc, tenant, pro_actor, order_id, "deliver")
    act(svc, tenant, client, order_id, "complete")
    return order_id


@pytest.fixture
def world(svc, tenants):
    demo, acme = tenants
    svc.catalog.seed_defaults(demo.id)
    svc.catalog.seed_defaults(acme.id)
    return dict(svc=svc, t=demo, acme=acme, admin=make_admin(svc, demo),
                client=user(svc, demo, "client@example.com", name="Carla Client"))


# ---------------------------------------------------------------------------------------------------- triggers

def test_building_services_opens_no_index(svc):
    assert svc.matching._engine is None  # tests and CLI commands build many Services: the engine opens on use


def test_a_profile_edit_and_a_name_change_update_the_document(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer", headline="Boiler repairs and leaks")
    assert names(svc, t, q="boiler") == ["Ann Archer"]
    svc.pros.update_own(t, ann, {"headline": "Bathroom tiling", "city": "Austin", "radius_km": 40,
                                 "hourly_rate": "95", "category_ids": [category_id(svc, t, "plumbing")],
                                 "availability": ALL_WEEK})
    assert names(svc, t, q="boiler") == []
    page = svc.matching.search(t, {"q": "tiling"})
    assert [c.name for c in page.cards] == ["Ann Archer"] and page.cards[0].rate == "$95.00/h"
    svc.profiles.update_own(ann, {"full_name": "Ann Bell", "city": ""})
    assert names(svc, t, q="tiling") == ["Ann Bell"]
    assert svc.matching.check(t.id).ok


def test_an_unverified_email_never_appears_until_verified(world):
    svc, t = world["svc"], world["t"]
    bob = pro(svc, t, "bob@example.com", name="Bob Builder", verified_email=False)
    assert svc.matching.search(t, {}).total == 0
    assert names(svc, t, q="plumber") == []
    assert svc.matching.check(t.id).ok  # not missing either: he should not be there
    verify_email(svc, t, "bob@example.com")
    assert names(svc, t, q="plumber") == ["Bob Builder"]
    assert indexed(svc, t, bob.id) is not None


def test_the_verified_badge_and_the_verified_only_filter(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    pro(svc, t, "bob@example.com", name="Bob Builder")
    assert names(svc, t, verified="1") == []
    svc.accounts.set_pro_verified(t, world["admin"], ann.id, True)
    page = svc.matching.search(t, {"verified": "1"})
    assert [c.name for c in page.cards] == ["Ann Archer"] and page.cards[0].verified
    svc.accounts.set_pro_verified(t, world["admin"], ann.id, False)
    assert names(svc, t, verified="1") == []


def test_suspension_hides_a_pro_and_reactivation_brings_them_back(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    pro(svc, t, "bob@example.com", name="Bob Builder")
    svc.accounts.set_user_status(t, world["admin"], ann.id, UserStatus.SUSPENDED)
    assert names(svc, t) == ["Bob Builder"]
    assert svc.matching.suggest(t, "ann") == []  # not even as a suggestion
    assert svc.matching.check(t.id).ok
    svc.accounts.set_user_status(t, world["admin"], ann.id, UserStatus.ACTIVE)
    assert sorted(names(svc, t)) == ["Ann Archer", "Bob Builder"]


def test_a_published_review_changes_the_rating_and_the_order_hiding_and_restoring_it_too(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    bob = pro(svc, t, "bob@example.com", name="Bob Builder")
    assert names(svc, t) == ["Ann Archer", "Bob Builder"]  # alike in every signal: the lower id first
    order_id = completed_order(svc, t, world["client"], bob)
    assert indexed(svc, t, bob.id).completed_jobs == 1  # the completed order is counted at once
    svc.reviews.submit(t, world["client"], order_id, REVIEW)
    assert indexed(svc, t, bob.id).rating_count == 0  # blind: not published until both wrote or the window closed
    svc.reviews.submit(t, bob, order_id, {"stars": "4", "text": "Clear instructions and paid on time."})
    doc = indexed(svc, t, bob.id)
    assert (doc.rating_count, doc.rating_average) == (1, 5.0) and doc.rating_score > indexed(svc, t, ann.id).rating_score
    page = svc.matching.search(t, {})
    assert [c.name for c in page.cards] == ["Bob Builder", "Ann Archer"]
    assert (page.cards[0].rating_text, page.cards[0].rating_count) == ("5.0", 1)
    assert page.cards[0].why.startswith("5.0★ from 1 review")
    assert names(svc, t, min_rating="4") == ["Bob Builder"]
    review_id = svc.reviews.for_order(t, bob, order_id).theirs.id
    svc.reviews.hide(t, world["admin"], review_id, "Posted by mistake, says the client")
    assert indexed(svc, t, bob.id).rating_count == 0
    assert names(svc, t) == ["Ann Archer", "Bob Builder"] and names(svc, t, min_rating="4") == []
    svc.reviews.restore(t, world["admin"], review_id, "The client confirmed it after all")
    assert names(svc, t) == ["Bob Builder", "Ann Archer"]
    assert svc.matching.check(t.id).ok


def test_a_completed_order_counts_in_the_why_line(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    assert svc.matching.search(t, {}).cards[0].why == "New on the marketplace"
    completed_order(svc, t, world["client"], ann)
    card = svc.matching.search(t, {}).cards[0]
    assert "1 job done" in card.why and "New on the marketplace" not in card.why


def test_a_pro_without_a_headline_or_category_is_not_indexed_and_a_first_login_of_the_day_refreshes(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    with svc.db.tenant_session(t.id) as s:  # as if she joined, last logged in and edited years ago
        s.get(ProProfile, ann.id).updated_at = datetime(2020, 1, 1, 15, 30, tzinfo=UTC)
        s.get(User, ann.id).last_login_at = datetime(2020, 1, 2, 9, 0, tzinfo=UTC)
        s.get(User, ann.id).created_at = datetime(2019, 12, 1, tzinfo=UTC)
    svc.matching.index_pro(t.id, ann.id)
    assert indexed(svc, t, ann.id).last_active == datetime(2020, 1, 2)  # to the day
    svc.accounts.login(t, "ann@example.com", PW)  # her first login today: the job runs
    assert indexed(svc, t, ann.id).last_active == datetime.combine(utcnow().date(), datetime.min.time())
    with svc.db.tenant_session(t.id) as s:
        s.get(ProProfile, ann.id).headline = ""
    assert svc.matching.index_pro(t.id, ann.id) == "removed"
    assert svc.matching.index_pro(t.id, ann.id) == "removed"  # idempotent
    assert svc.matching.search(t, {}).total == 0


# ---------------------------------------------------------------------------------------------------- check, reindex

def test_check_reports_a_stale_missing_and_extra_index_and_reindex_fixes_it(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    bob = pro(svc, t, "bob@example.com", name="Bob Builder")
    assert svc.matching.check(t.id).ok
    with svc.db.tenant_session(t.id) as s:  # written behind the services' back: no job ran
        s.get(ProProfile, ann.id).headline = "Chimneys only"
    svc.matching.engine.delete_pros(t.id, [bob.id])
    svc.matching.engine.upsert_pros([fingerprinted(replace(indexed(svc, t, ann.id), pro_id=999_999))])
    report = svc.matching.check(t.id)
    assert not report.ok
    assert report.stale[Kind.PRO] == [ann.id]
    assert report.missing[Kind.PRO] == [bob.id]
    assert report.extra[Kind.PRO] == [999_999]
    assert names(svc, t, q="chimneys") == []
    assert svc.matching.reindex(t.id)["pros"] == 2
    assert svc.matching.check(t.id).ok
    assert names(svc, t, q="chimneys") == ["Ann Archer"]
    assert sorted(names(svc, t)) == ["Ann Archer", "Bob Builder"]


def test_the_cli_checks_and_reindexes_one_tenant_or_all(world, capsys):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    pro(svc, world["acme"], "zed@example.com", name="Zed Acme")
    run = lambda *argv: cli.main(list(argv), settings=svc.settings)  # noqa: E731
    assert run("check-index") == 0
    out = capsys.readouterr().out
    assert "demo: the index agrees with the database" in out and "acme: the index agrees" in out
    svc.matching.engine.delete_pros(t.id, [ann.id])
    assert run("check-index", "--tenant", "acme") == 0
    assert run("check-index") == 1
    captured = capsys.readouterr()
    assert f"demo: missing pro documents (1): {ann.id}" in captured.out and "reindex" in captured.err
    assert run("reindex", "--tenant", "demo") == 0
    assert "demo: indexed 1 professionals and 0 open requests" in capsys.readouterr().out
    assert run("check-index") == 0
    assert run("reindex") == 0
    out = capsys.readouterr().out
    assert "acme: indexed 1 professionals" in out and "demo: indexed 1 professionals" in out
    assert run("check-index", "--tenant", "nowhere") == 1
    assert "no marketplace 'nowhere'" in capsys.readouterr().err


def test_services_at_start_rebuild_an_index_that_disagrees_and_leave_a_good_one(world):
    svc, t = world["svc"], world["t"]
    pro(svc, t, "ann@example.com", name="Ann Archer")
    pro(svc, world["acme"], "zed@example.com", name="Zed Acme")
    assert svc.sync_search_index() == {}
    svc.matching.engine.clear_tenant(world["acme"].id)
    assert svc.sync_search_index() == {"acme": {"pros": 1, "requests": 0}}
    assert names(svc, world["acme"]) == ["Zed Acme"] and names(svc, t) == ["Ann Archer"]


# ---------------------------------------------------------------------------------------------------- isolation

def test_a_tenant_never_finds_another_tenants_pros(world):
    svc, t, acme = world["svc"], world["t"], world["acme"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer", skills="Copper piping")
    zed = pro(svc, acme, "zed@example.com", name="Zed Acme", skills="Copper piping")
    assert names(svc, t, q="copper") == ["Ann Archer"]
    assert names(svc, acme, q="copper") == ["Zed Acme"]
    assert svc.matching.suggest(t, "zed") == [] and svc.matching.suggest(acme, "zed")
    # a job naming the wrong tenant finds no such pro there: it removes nothing of the other tenant's
    assert svc.matching.index_pro(t.id, zed.id) == "removed"
    assert names(svc, acme, q="copper") == ["Zed Acme"]
    acme_plumbing = category_id(svc, acme, "plumbing")
    with pytest.raises(ValidationFailed) as exc:  # another marketplace's category is not one of ours
        svc.matching.search(t, {"category": str(acme_plumbing)})
    assert exc.value.errors == {"category": "Choose a category from the list"}
    assert [h.doc.pro_id for h in svc.matching.top_pros(
        acme, category_id=acme_plumbing, origin=None, city=indexed(svc, acme, zed.id).city, limit=5)] == [zed.id]
    assert svc.matching.check(t.id).ok and svc.matching.check(acme.id).ok
    assert ann.id not in svc.matching.engine.fingerprints(acme.id, Kind.PRO)


# ---------------------------------------------------------------------------------------------------- the form

@pytest.mark.parametrize(("params", "field", "message"), [
    ({"radius": "900"}, "radius", "The distance must be between 1 and 500 km"),
    ({"radius": "far"}, "radius", "Enter the distance in whole kilometres"),
    ({"page": "0"}, "page", "Pages go from 1 to 100"),
    ({"page": "two"}, "page", "Enter a page number"),
    ({"min_rating": "6"}, "min_rating", "Choose a rating from 1 to 5"),
    ({"verified": "maybe"}, "verified", "Verified only is on (1) or off (0)"),
    ({"date": "next week"}, "date", "Enter the date as YYYY-MM-DD"),
    ({"date": "2001-01-01"}, "date", "Choose today or a later date"),
    ({"sort": "cheapest"}, "sort", "Sort by best match, distance, rating or price"),
    ({"category": "plumbing"}, "category", "Choose a category from the list"),
    ({"category": "999999"}, "category", "Choose a category from the list"),
    ({"price_min": "lots"}, "price_min", "Enter the minimum price as a number, like 120 or 120.50"),
    ({"price_min": "100", "price_max": "50"}, "price_max", "The maximum price is below the minimum"),
    ({"place": "Xqzzyville"}, "place", "We don't know this place. Choose a city from the list."),
    ({"q": "x" * 101}, "q", "Search must be at most 100 characters"),
])
def test_the_search_form_says_what_is_wrong(world, params, field, message):
    with pytest.raises(ValidationFailed) as exc:
        world["svc"].matching.search(world["t"], params)
    assert exc.value.errors == {field: message}


def test_place_radius_price_and_paging(world):
    svc, t = world["svc"], world["t"]
    pro(svc, t, "ann@example.com", name="Ann Archer", city="Austin")
    pro(svc, t, "bob@example.com", name="Bob Builder", city="Boston")
    page = svc.matching.search(t, {"place": "austin", "radius": "50", "price_max": "100", "sort": "distance",
                                   "page": "1", "verified": "", "date": TOMORROW.isoformat()})
    assert [c.name for c in page.cards] == ["Ann Archer"] and page.place.startswith("Austin")
    assert page.cards[0].distance_text == "less than 1 km away"
    assert page.summary == f"1 professional within 50 km of {page.place}"
    assert (page.page, page.pages) == (1, 1)
    assert names(svc, t, price_min="90") == []
    assert svc.matching.search(t, {"page": "3"}).cards == []
    assert [f.name for f in svc.matching.search(t, {}).facets] == ["Plumbing"]
    assert svc.matching.places("aust")[0].startswith("Austin")


def test_an_engine_that_is_down_gives_a_clear_message_and_instant_match_goes_on_without_it(world):
    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise SearchUnavailable("connection refused")
            return fail

    svc, t = world["svc"], world["t"]
    matching = MatchingService(svc.db, svc.store, Down, svc.places)
    with pytest.raises(DomainError) as exc:
        matching.search(t, {"q": "tap"})
    assert exc.value.message == "Search is unavailable right now; try again in a minute."
    assert matching.top_pros(t, category_id=category_id(svc, t, "plumbing"), origin=(30.27, -97.74), city="",
                             limit=5) == []
    assert matching.suggest(t, "plu") == []


# ---------------------------------------------------------------------------------------------------- signals

def test_order_and_rating_signals_follow_their_definitions(world):
    """A hand-built history for one pro who joined on day 10 (Austin, 40 km, plumbing), against the definitions in
    backend/orders/signals.py and backend/reviews/signals.py."""
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer")
    client = world["client"]
    plumbing, electrical = category_id(svc, t, "plumbing"), category_id(svc, t, "electrical")
    day = lambda n: datetime(2030, 1, n, tzinfo=UTC)  # noqa: E731
    with svc.db.tenant_session(t.id) as s:
        s.get(User, ann.id).created_at = day(10)
        home = s.get(ProProfile, ann.id)
        austin, boston = (home.latitude, home.longitude), (42.36, -71.06)

        def request(n, *, category=plumbing, at=austin, city="", by=client.id):
            row = ServiceRequest(client_id=by, category_id=category, title=f"Request {n}", description="A job to do",
                                 city=city, latitude=at[0] if at else None, longitude=at[1] if at else None,
                                 currency="USD", created_at=day(n), expires_at=day(n) + timedelta(days=30))
            s.add(row)
            s.flush()
            return row.id

        leads = [request(11), request(12), request(13), request(14, at=None, city=home.city)]  # 4 leads
        request(9)  # before she joined
        request(15, category=electrical)  # not her category
        request(16, at=boston)  # outside her radius
        request(17, by=ann.id)  # her own
        for lead, minutes in ((leads[0], 30), (leads[1], 90), (leads[2], 600)):
            s.add(Quote(request_id=lead, pro_id=ann.id, price_minor=10_000, currency="USD", message="Can do",
                        duration_hours=2, valid_until=date(2030, 2, 1),
                        created_at=day(11 + leads.index(lead)) + timedelta(minutes=minutes)))
        s.add(LeadDecline(request_id=leads[3], pro_id=ann.id))
        for state in (OrderState.COMPLETED, OrderState.COMPLETED, OrderState.CANCELLED):
            s.add(Order(client_id=client.id, pro_id=ann.id, title="Job", price_minor=10_000, currency="USD",
                        platform_fee_minor=1_000, state=state))
    with svc.db.tenant_session(t.id) as s:
        signals = OrderSignals().pro_signals(s, [ann.id])[ann.id]
        ratings = RatingSignals().pro_signals(s, [ann.id])[ann.id]
        doc = build_pro_documents(s, t.id, [ann.id], store=svc.store, signals=[OrderSignals(), RatingSignals()])
    assert signals == {"completed_jobs": 2, "response_rate": 1.0, "median_quote_minutes": 90,
                       "last_quote_at": day(13) + timedelta(minutes=600)}
    assert ratings == {"rating_count": 0, "rating_average": 0.0, "rating_score": 3.5}  # the prior
    assert doc[ann.id].response_rate == 1.0 and doc[ann.id].median_quote_minutes == 90
    # a fifth lead she has not answered: 4 of 5
    with svc.db.tenant_session(t.id) as s:
        s.add(ServiceRequest(client_id=client.id, category_id=plumbing, title="Request 18", description="Another",
                             city="", latitude=austin[0], longitude=austin[1], currency="USD", created_at=day(18),
                             expires_at=day(18) + timedelta(days=30)))
    with svc.db.tenant_session(t.id) as s:
        assert OrderSignals().pro_signals(s, [ann.id])[ann.id]["response_rate"] == 0.8
    # a pro without leads or quotes has no rate and no median (neither rewarded nor punished)
    bob = pro(svc, t, "bob@example.com", name="Bob Builder", slugs=("electrical",), city="Boston")
    with svc.db.tenant_session(t.id) as s:
        s.get(User, bob.id).created_at = day(20)
    with svc.db.tenant_session(t.id) as s:
        assert OrderSignals().pro_signals(s, [bob.id])[bob.id] == {
            "completed_jobs": 0, "response_rate": None, "median_quote_minutes": None, "last_quote_at": None}


def test_a_fresh_process_on_the_same_data_dir_reads_the_index(world):
    svc, t = world["svc"], world["t"]
    pro(svc, t, "ann@example.com", name="Ann Archer")
    other = make_services(svc.settings.database_url, Path(svc.settings.data_dir))
    try:
        assert names(other, t) == ["Ann Archer"] and other.matching.check(t.id).ok
    finally:
        other.close()


def test_a_posted_request_and_a_quote_refresh_the_response_rate_of_the_pros_it_reaches(world):
    svc, t = world["svc"], world["t"]
    ann = pro(svc, t, "ann@example.com", name="Ann Archer", city="Austin")
    bob = pro(svc, t, "bob@example.com", name="Bob Builder", city="Boston")
    assert indexed(svc, t, ann.id).response_rate is None  # no lead yet
    request = {"title": "Fix a leaking kitchen tap", "description": "The kitchen tap drips all night, needs a washer.",
               "city": "Austin", "budget_min": "50", "budget_max": "150",
               "category_id": category_id(svc, t, "plumbing")}
    first = svc.quotes.create_request(t, world["client"], request)
    assert indexed(svc, t, ann.id).response_rate == 0.0  # one lead, unanswered
    assert indexed(svc, t, bob.id).response_rate is None  # Boston: not reached
    svc.quotes.send_quote(t, ann, first, {"price": "120", "message": "I can fix it tomorrow morning.",
                                          "duration_hours": 2, "valid_until": (TOMORROW + timedelta(days=7)).isoformat()})
    doc = indexed(svc, t, ann.id)
    assert doc.response_rate == 1.0 and doc.median_quote_minutes is not None
    svc.quotes.create_request(t, world["client"], request | {"title": "Replace the bathroom tap"})
    assert indexed(svc, t, ann.id).response_rate == 0.5
    assert svc.matching.check(t.id).ok


def test_index_jobs_go_to_the_search_queue_and_retry_while_the_engine_is_unavailable():
    from backend.config import Settings
    from backend.jobqueue import MATCHING_INDEX_PRO, MATCHING_INDEX_REQUEST, SEARCH_QUEUE, make_celery
    from backend.jobs import index_pro, index_request

    app = make_celery(Settings(environment="test", redis_url=None))
    for name in (MATCHING_INDEX_PRO, MATCHING_INDEX_REQUEST):
        assert app.amqp.router.route({}, name)["queue"].name == SEARCH_QUEUE
    for task in (index_pro, index_request):
        assert SearchUnavailable in task.autoretry_for and task.max_retries >= 5


def test_a_renamed_category_is_searchable_by_its_new_name_at_once(world):
    """The category's name is in its professionals' documents: renaming it rebuilds the marketplace's index
    (without clearing it first: the pros stay findable meanwhile)."""
    svc, t = world["svc"], world["t"]
    pro(svc, t, "ann@example.com", name="Ann Archer")
    admin = make_admin(svc, t, "catalog-admin@example.com")
    plumbing = category_id(svc, t, "plumbing")
    assert names(svc, t, q="pipework") == []
    svc.catalog.save(admin, {"name": "Pipework", "icon": "wrench"}, plumbing)
    assert names(svc, t, q="pipework") == ["Ann Archer"]
    assert svc.matching.check(t.id).ok
