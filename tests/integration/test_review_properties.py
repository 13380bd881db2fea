"""Property test: random sequences of review actions keep the ratings right and the reviews blind.

Whatever happens — submissions, edits and withdrawals by either party, windows closing, the admin hiding and
restoring — on two completed orders of one professional with two clients:
- the service accepts exactly what the rules allow (a simple model of them runs alongside) and refuses the rest
  without changing anything;
- every stored aggregate equals a recomputation from the visible reviews, and counts what the model says is visible;
- nothing unpublished is ever visible to the other party (the order page, their "My reviews") or to the public
  (the profile's list), and everything published and not hidden is.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from sqlmodel import select

from backend.accounts.models import User
from backend.errors import DomainError, NotFound
from backend.identity import Caller, Role
from backend.reviews.models import Review, ReviewWindow
from backend.tenancy.models import Tenant
from tests.conftest import make_services

PW = "pw-1234567890"
ACTIONS = ["submit", "submit", "edit", "withdraw", "close", "hide", "restore"]
PARTIES = ["client", "pro"]
people = itertools.count(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    svc = make_services(None, tmp_path_factory.mktemp("review-props"))
    with svc.db.platform_session() as s:
        s.add(Tenant(slug="demo", name="Demo", payment_provider="demo"))
    tenant = svc.tenants.by_slug("demo")
    svc.catalog.seed_defaults(tenant.id)
    svc.accounts.sign_up(tenant, {"email": "admin@x.com", "password": PW, "full_name": "Admin", "role": "client"})
    with svc.db.tenant_session(tenant.id) as s:
        s.exec(select(User).where(User.email == "admin@x.com")).one().role = Role.ADMIN
    admin = svc.accounts.login(tenant, "admin@x.com", PW)[0]
    yield svc, tenant, admin
    svc.close()


def _sign_up(world, role: str) -> Caller:
    svc, tenant, _ = world
    n = next(people)
    return svc.accounts.sign_up(tenant, {"email": f"{role[0]}{n}@x.com", "password": PW, "full_name": f"{role} {n}",
                                         "role": role})[0]


def _completed(world, client: Caller, pro: Caller) -> int:
    svc, t, _ = world
    day = (date.today() + timedelta(days=1)).isoformat()
    order_id = svc.orders.book(t, client, pro.id, {"hours": 1, "day": day})
    svc.orders.apply(t, pro, order_id, "accept")
    session_id = svc.orders.start_checkout(t, client, order_id).rsplit("/", 1)[-1]
    svc.payments.gateways["demo"].pay_hosted(session_id, number="4242424242424242", exp_month=12,
                                             exp_year=date.today().year + 1, cvc="123")
    svc.orders.confirm_checkout(t, session_id, client)
    for action, who in (("start", pro), ("deliver", pro), ("complete", client)):
        svc.orders.apply(t, who, order_id, action)
    return order_id


@dataclass
class Example:
    """Two completed orders of one professional, each with its own client, and what the rules say about them."""

    pro: Caller
    clients: list[Caller]
    orders: list[int]
    closes: list = field(default_factory=list)
    reviews: dict = field(default_factory=dict)  # (order index, party) -> {"id", "stars", "published", "hidden"}
    closed: list[bool] = field(default_factory=lambda: [False, False])

    def caller(self, o: int, party: str) -> Caller:
        return self.clients[o] if party == "client" else self.pro

    def subject(self, o: int, party: str) -> Caller:
        return self.caller(o, "pro" if party == "client" else "client")


def _new_example(world) -> Example:
    svc, t, _ = world
    pro = _sign_up(world, "professional")
    svc.pros.update_own(t, pro, {"headline": "Pro", "city": "Austin", "hourly_rate": "50",
                                 "category_ids": [svc.catalog.categories(t.id)[0].id],
                                 "availability": {d: ["09:00", "17:00"] for d in
                                                  ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})
    clients = [_sign_up(world, "client"), _sign_up(world, "client")]
    ex = Example(pro=pro, clients=clients, orders=[_completed(world, c, pro) for c in clients])
    with svc.db.tenant_session(t.id) as s:
        ex.closes = [s.get(ReviewWindow, order_id).closes_at for order_id in ex.orders]
    return ex


def _refused(fn, error=DomainError) -> None:
    with pytest.raises(error):
        fn()


def step(world, ex: Example, action: str, o: int, party: str, stars: int, sub: str) -> None:
    """Do one action, and hold the service to the model: allowed means done, not allowed means refused."""
    svc, t, admin = world
    order_id, who, key = ex.orders[o], ex.caller(o, party), (o, party)
    mine = ex.reviews.get(key)
    if action in ("submit", "edit"):
        data = {"stars": str(stars), "text": f"{action} by the {party}: {stars} stars", "quality": sub, "value": sub}
        if ex.closed[o] or (mine is not None and mine["published"]):
            return _refused(lambda: svc.reviews.submit(t, who, order_id, data))
        view = svc.reviews.submit(t, who, order_id, data)
        ex.reviews[key] = {"id": view.id, "stars": stars, "published": False, "hidden": False,
                           "subs": sub if party == "client" else ""}
        other = (o, "pro" if party == "client" else "client")
        if other in ex.reviews:  # both are in: both published at once
            ex.reviews[key]["published"] = ex.reviews[other]["published"] = True
            ex.closed[o] = True
        assert view.status == ("published" if ex.closed[o] else "submitted")
    elif action == "withdraw":
        if mine is None or mine["published"]:
            return _refused(lambda: svc.reviews.withdraw(t, who, order_id))
        svc.reviews.withdraw(t, who, order_id)
        del ex.reviews[key]
    elif action == "close":  # time passes to this window's deadline: it and every earlier one close
        now = ex.closes[o]
        svc.reviews.run_timers(t, now)
        for i, closes in enumerate(ex.closes):
            if closes <= now and not ex.closed[i]:
                ex.closed[i] = True
                for (j, _), review in ex.reviews.items():
                    if j == i:
                        review["published"] = True
    else:  # the admin hides or restores this party's review of the order
        hide = action == "hide"
        moderate = svc.reviews.hide if hide else svc.reviews.restore
        review_id = mine["id"] if mine is not None else 10**9
        if mine is None or not mine["published"]:
            return _refused(lambda: moderate(t, admin, review_id, "property test"), NotFound)
        if mine["hidden"] == hide:
            return _refused(lambda: moderate(t, admin, review_id, "property test"))
        assert moderate(t, admin, review_id, "property test").hidden == hide
        mine["hidden"] = hide


def check(world, ex: Example) -> None:
    svc, t, _ = world
    with svc.db.tenant_session(t.id) as s:
        rows = s.exec(select(Review).where(Review.order_id.in_(ex.orders))).all()
    stored = {(ex.orders.index(r.order_id), "client" if r.author_role == "client" else "pro"):
              (r.id, r.stars, r.status == "published", r.hidden) for r in rows}
    assert stored == {k: (v["id"], v["stars"], v["published"], v["hidden"]) for k, v in ex.reviews.items()}
    # the other side sees a review on the order page only once it is published
    for (o, party) in itertools.product(range(2), PARTIES):
        review = ex.reviews.get((o, party))
        card = svc.reviews.for_order(t, ex.subject(o, party), ex.orders[o])
        expected = review["id"] if review and review["published"] else None
        assert (card.theirs.id if card.theirs else None) == expected, (o, party, review)
        assert card.can_review == (not ex.closed[o] and not (card.mine and card.mine.status == "published"))
    # the public list, "My reviews" and the stored aggregates, per person reviewed
    for person in (ex.pro, *ex.clients):
        about = [v for (o, p), v in ex.reviews.items() if ex.subject(o, p).id == person.id and v["published"]]
        shown = [v for v in about if not v["hidden"]]
        page = svc.reviews.reviews_of(t, person.id, per_page=50)
        assert sorted(r.id for r in page.reviews) == sorted(v["id"] for v in shown) and page.total == len(shown)
        assert sorted(r.id for r in svc.reviews.mine(t, person).received) == sorted(v["id"] for v in about)
        summary = svc.reviews.summary(t, person.id)
        assert summary == svc.reviews.recompute(t, person.id)
        assert summary.count == len(shown)
        assert summary.distribution == [sum(1 for v in shown if v["stars"] == n) for n in (5, 4, 3, 2, 1)]
        quality = [int(v["subs"]) for v in shown if v["subs"]]
        assert summary.quality == (sum(quality) / len(quality) if quality else 0.0)


STEP = st.tuples(st.sampled_from(ACTIONS), st.integers(0, 1), st.sampled_from(PARTIES), st.integers(1, 5),
                 st.sampled_from(["", "1", "3", "5"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(STEP, min_size=1, max_size=12))
# Always tried: the blind rule in every order of events (A then B, B then A, only A and the window closes, none),
# a withdrawal and a second try, and hiding and restoring a published review.
@example([("submit", 0, "client", 5, "5"), ("submit", 0, "pro", 4, "")])
@example([("submit", 0, "pro", 2, ""), ("edit", 0, "pro", 3, ""), ("submit", 0, "client", 1, "1")])
@example([("submit", 1, "client", 4, "3"), ("close", 1, "pro", 1, ""), ("submit", 1, "pro", 5, "")])
@example([("close", 0, "client", 1, ""), ("submit", 0, "client", 5, "")])
@example([("submit", 0, "client", 5, "5"), ("withdraw", 0, "client", 1, ""), ("submit", 0, "pro", 4, ""),
          ("submit", 0, "client", 3, "3")])
@example([("submit", 0, "client", 5, "5"), ("hide", 0, "client", 1, ""), ("submit", 0, "pro", 4, ""),
          ("hide", 0, "client", 1, ""), ("hide", 0, "client", 1, ""), ("restore", 0, "client", 1, ""),
          ("submit", 1, "client", 2, "1"), ("close", 1, "pro", 1, ""), ("hide", 1, "client", 1, "")])
def test_aggregates_match_the_visible_reviews_and_nothing_unpublished_leaks(world, steps):
    ex = _new_example(world)
    check(world, ex)
    for action, o, party, stars, sub in steps:
        step(world, ex, action, o, party, stars, sub)
        check(world, ex)
