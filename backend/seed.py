"""Demo data: a platform operator and a demo tenant with an admin, 3 clients and 10 professionals, and a few
completed orders with published reviews both ways (so profiles show ratings); then four months of synthetic
history in the demo marketplace (backend/history.py: generated clients and professionals only, all of it before
the named demo users signed up), so that the admin's analytics have something to show.

Idempotent: running it again changes nothing. `python -m backend.seed` prints the logins.
Development only: every account it creates has the published password below, so it refuses to run
unless ENVIRONMENT=development (production creates its operator with `python -m backend.cli`).
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta

from pydantic import ValidationError
from sqlmodel import select

from backend import history
from backend.identity import Caller, Role
from backend.accounts.models import OperatorAccount, User
from backend.bootstrap import Services, build_services
from backend.config import Settings, get_settings
from backend.db import utcnow
from backend.catalog.models import Category
from backend.places import Place
from backend.profiles.models import ProCategory, Profile, ProProfile
from backend.tenancy.models import Tenant

DEMO_PASSWORD = "demo-password-1"
OPERATOR_EMAIL = "operator@platform.example"
# Resolved through the gazetteer (Services.places): profiles store its label and coordinates, as the editors do.
DEMO_CITIES = ["Austin, TX", "Denver, CO", "Portland, OR", "Chicago, IL", "Boston, MA"]

CLIENTS = [("Alice Carter", "alice"), ("Ben Ortiz", "ben"), ("Chloe Nguyen", "chloe")]
PROS = [("Diego Ramos", "diego"), ("Emma Schultz", "emma"), ("Farah Haddad", "farah"), ("George Li", "george"),
        ("Hana Kobayashi", "hana"), ("Ivan Petrov", "ivan"), ("Julia Rossi", "julia"), ("Kofi Mensah", "kofi"),
        ("Lena Fischer", "lena"), ("Mateo Silva", "mateo")]
# handle -> (category slugs, headline, hourly rate in cents, skills)
PRO_DETAILS = {
    "diego": (["plumbing", "handyman"], "Licensed plumber, 12 years of leak-free work", 8500,
              ["leak repair", "water heaters", "fixtures"]),
    "emma": (["cleaning"], "Deep cleaning that makes moving day easy", 4500, ["deep clean", "move-out", "eco"]),
    "farah": (["electrical"], "Certified electrician for homes and small offices", 9500,
              ["wiring", "lighting", "EV chargers"]),
    "george": (["tutoring"], "Maths and physics tutor, high school to university", 6000, ["calculus", "physics"]),
    "hana": (["photography", "design"], "Portraits, events and product photos", 12000, ["portraits", "events"]),
    "ivan": (["moving", "handyman"], "Two movers and a van, careful with pianos", 7000, ["packing", "pianos"]),
    "julia": (["design", "painting"], "Interior design and colour consulting", 11000, ["interiors", "colour"]),
    "kofi": (["gardening"], "Garden design, pruning and lawn care", 5000, ["pruning", "lawns"]),
    "lena": (["cleaning", "painting"], "Painting and tidy-up after renovations", 5500, ["walls", "trim"]),
    "mateo": (["handyman", "electrical"], "Odd jobs done right the first time", 6500, ["assembly", "mounting"]),
}
WEEKDAY_HOURS = {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
SECOND_TENANT_USERS = [("Nora Blake", "nora", Role.CLIENT), ("Oscar Diaz", "oscar", Role.PROFESSIONAL)]
# Completed bookings with both reviews published: (client, professional, hours, the client's stars, text and
# sub-ratings (quality, communication, punctuality, value), the professional's stars and text, their reply or "").
# Emma has none: the payments e2e test books her and checks her earnings to the cent.
DEMO_REVIEWS = [
    ("alice", "diego", 2, 5, "Found the leak behind the dishwasher in minutes and fixed it properly. Left the "
     "kitchen cleaner than he found it.", (5, 5, 5, 4), 5, "Clear directions and easy access to the pipes. "
     "A pleasure to work for.", "Thank you, Alice! Call me when the water heater is due for its service."),
    ("ben", "diego", 3, 4, "Good, tidy work on both bathroom taps. He arrived half an hour late but let me know.",
     (4, 4, 3, 4), 5, "Friendly, had everything ready, paid at once.", ""),
    ("chloe", "lena", 4, 5, "The flat was spotless for the handover and I got my whole deposit back.", (5, 5, 5, 5),
     5, "Chloe had packed everything away, which made the job quick.", "Glad the handover went well, Chloe!"),
    ("alice", "farah", 2, 5, "Installed the EV charger neatly and explained the app. Certified and careful.",
     (5, 5, 4, 4), 4, "Good client; the garage was a bit cluttered.", ""),
    ("ben", "hana", 3, 4, "Lovely family portraits. Editing took a few days longer than promised.", (5, 4, 3, 4),
     5, "Great family to photograph, everyone was on time.", ""),
    ("chloe", "kofi", 2, 3, "The lawn looks good, but the hedge at the back was left half done.", (3, 4, 3, 3), 4,
     "Clear about what she wanted.", ""),
]
TEST_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/40", "cvc": "123"}
# Synthetic history of the demo marketplace: orders over months, by generated people only (the named demo users
# keep exactly the data above: e2e tests count on it, e.g. Emma's earnings and the professionals' reviews).
HISTORY_ORDERS, HISTORY_MONTHS, HISTORY_CLIENTS, HISTORY_PROS, HISTORY_SEED = 400, 4, 40, 16, 20240


class SeedRefused(RuntimeError):
    pass


def refuse_unless_development(settings: Settings) -> None:
    if settings.environment != "development":
        raise SeedRefused(
            f"Refusing to seed demo data with ENVIRONMENT={settings.environment}: the demo accounts all share a "
            "published password and the demo marketplace takes test cards. Demo data is for ENVIRONMENT=development "
            "only; nothing was written. To create a platform operator, run "
            "`python -m backend.cli create-operator --email you@example.com`.")


def _ensure_tenant(svc: Services, slug: str, name: str, primary: str, accent: str) -> int:
    with svc.db.platform_session() as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
        if tenant is None:
            # demo data pays with the demo gateway's test cards (development only)
            tenant = Tenant(slug=slug, name=name, primary_color=primary, accent_color=accent,
                            payment_provider="demo")
            session.add(tenant)
            session.flush()
        return tenant.id


def _ensure_user(svc: Services, tenant_id: int, email: str, name: str, role: Role, city: str, pw_hash: str) -> None:
    with svc.db.tenant_session(tenant_id) as session:
        if session.exec(select(User.id).where(User.email == email)).first() is not None:
            return
        user = User(email=email, password_hash=pw_hash, role=role, email_verified_at=utcnow())
        session.add(user)
        session.flush()
        session.add(Profile(user_id=user.id, full_name=name, city=_place(svc, city).label))


def _place(svc: Services, city: str) -> Place:
    place = svc.places.resolve(city)
    if place is None:
        raise LookupError(f"the gazetteer does not know the demo city {city!r}")
    return place


def _ensure_pro_profile(svc: Services, tenant_id: int, email: str, handle: str, city: str) -> None:
    slugs, headline, rate, skills = PRO_DETAILS[handle]
    with svc.db.tenant_session(tenant_id) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        if session.get(ProProfile, user.id) is not None:
            return
        place = _place(svc, city)
        session.add(ProProfile(user_id=user.id, headline=headline, bio=f"{headline}. Fully insured, references on "
                               "request, and happy to give a free estimate.", skills=skills, city=place.label,
                               latitude=place.latitude, longitude=place.longitude,
                               radius_km=40, hourly_rate_minor=rate, availability=WEEKDAY_HOURS,
                               verified=handle in ("diego", "emma", "farah")))
        for category in session.exec(select(Category).where(Category.slug.in_(slugs))).all():
            session.add(ProCategory(user_id=user.id, category_id=category.id))


def _caller(svc: Services, tenant_id: int, email: str) -> Caller:
    with svc.db.tenant_session(tenant_id) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        profile = session.get(Profile, user.id)
        return Caller(role=Role(user.role), id=user.id, tenant_id=tenant_id, email=user.email,
                      name=profile.full_name if profile else "", email_verified=True)


def _next_weekday() -> date:
    day = date.today() + timedelta(days=1)
    while day.weekday() >= 5:  # the demo professionals work Monday to Friday
        day += timedelta(days=1)
    return day


def _completed_order(svc: Services, tenant, client: Caller, pro: Caller, hours: int) -> int | None:
    """A booking taken to completion through the order service (paid with the demo gateway's test card); the one
    already there when the seed runs again. None: a demo user moved it elsewhere (cancelled it, say)."""
    title = f"{hours} h with {pro.name}"
    order = next((o for o in svc.orders.list_orders(tenant, client) if o.pro_id == pro.id and o.title == title), None)
    order_id = order.id if order else svc.orders.book(tenant, client, pro.id, {
        "hours": hours, "day": _next_weekday().isoformat(), "note": "Demo booking"})
    steps = {"requested": (pro, "accept"), "paid": (pro, "start"), "in_progress": (pro, "deliver"),
             "delivered": (client, "complete")}
    state = svc.orders.get(tenant, client, order_id).state
    while state != "completed":
        if state == "accepted":
            session_id = svc.orders.start_checkout(tenant, client, order_id).rsplit("/", 1)[-1]
            svc.payments.pay_demo_checkout(session_id, TEST_CARD)
            svc.orders.confirm_checkout(tenant, session_id, client)
        elif state in steps:
            who, action = steps[state]
            svc.orders.apply(tenant, who, order_id, action)
        else:
            return None
        state = svc.orders.get(tenant, client, order_id).state
    return order_id


def _seed_reviews(svc: Services, tenant_id: int, demo: str) -> None:
    tenant = svc.tenants.by_id(tenant_id)
    for client_handle, pro_handle, hours, stars, text, subs, pro_stars, pro_text, reply in DEMO_REVIEWS:
        client = _caller(svc, tenant_id, f"{client_handle}@{demo}.example")
        pro = _caller(svc, tenant_id, f"{pro_handle}@{demo}.example")
        order_id = _completed_order(svc, tenant, client, pro, hours)
        if order_id is None:
            continue
        quality, communication, punctuality, value = subs
        for who, data in ((client, {"stars": stars, "text": text, "quality": quality, "communication": communication,
                                    "punctuality": punctuality, "value": value}),
                          (pro, {"stars": pro_stars, "text": pro_text})):
            if svc.reviews.for_order(tenant, who, order_id).mine is None:
                svc.reviews.submit(tenant, who, order_id, data)
        theirs = svc.reviews.for_order(tenant, pro, order_id).theirs  # the client's review, published
        if reply and theirs is not None and not theirs.reply:
            svc.reviews.reply(tenant, pro, theirs.id, reply)


def _seed_history(svc: Services, tenant_id: int, before: datetime, pw_hash: str) -> None:
    """Months of activity for the analytics, generated once (a marketplace with generated people has its history),
    ending `before` (when this seed started, so before the named demo users signed up: their leads, response rates
    and search documents stay as the e2e tests expect). Generated people log in with the demo password too."""
    if not history.has_history(svc.db, tenant_id):
        history.generate(svc.db, tenant_id, orders=HISTORY_ORDERS, months=HISTORY_MONTHS, seed=HISTORY_SEED,
                         now=before, clients=HISTORY_CLIENTS, pros=HISTORY_PROS,
                         places=[_place(svc, city) for city in DEMO_CITIES], password_hash=pw_hash)
    analytics = getattr(svc, "analytics", None)
    if analytics is not None:
        analytics.rebuild(tenant_id)


def seed(svc: Services) -> list[tuple[str, str, str, str]]:
    """Returns (where, role, email, password) rows for printing."""
    refuse_unless_development(svc.settings)
    started = utcnow()
    pw_hash = svc.accounts.passwords.hash(DEMO_PASSWORD)
    logins = []
    with svc.db.platform_session() as session:
        has_operator = session.exec(select(OperatorAccount.id).where(OperatorAccount.email == OPERATOR_EMAIL)).first()
    if not has_operator:
        svc.accounts.create_operator(OPERATOR_EMAIL, DEMO_PASSWORD)
    logins.append(("/operator/login", "platform operator", OPERATOR_EMAIL, DEMO_PASSWORD))

    demo = svc.settings.default_tenant
    demo_id = _ensure_tenant(svc, demo, "HandyHub", "#4F46E5", "#F59E0B")
    _ensure_user(svc, demo_id, f"admin@{demo}.example", "Dana Admin", Role.ADMIN, DEMO_CITIES[0], pw_hash)
    logins.append((demo, "admin", f"admin@{demo}.example", DEMO_PASSWORD))
    for i, (name, handle) in enumerate(CLIENTS):
        _ensure_user(svc, demo_id, f"{handle}@{demo}.example", name, Role.CLIENT, DEMO_CITIES[i % len(DEMO_CITIES)],
                     pw_hash)
        logins.append((demo, "client", f"{handle}@{demo}.example", DEMO_PASSWORD))
    svc.catalog.seed_defaults(demo_id)
    for i, (name, handle) in enumerate(PROS):
        city = DEMO_CITIES[i % len(DEMO_CITIES)]
        _ensure_user(svc, demo_id, f"{handle}@{demo}.example", name, Role.PROFESSIONAL, city, pw_hash)
        _ensure_pro_profile(svc, demo_id, f"{handle}@{demo}.example", handle, city)
        logins.append((demo, "professional", f"{handle}@{demo}.example", DEMO_PASSWORD))
    _seed_reviews(svc, demo_id, demo)

    # A second marketplace, to see tenant isolation at http://acme.localhost:3000
    acme_id = _ensure_tenant(svc, "acme", "Acme Home Services", "#0F766E", "#E11D48")
    _ensure_user(svc, acme_id, "admin@acme.example", "Ada Acme", Role.ADMIN, DEMO_CITIES[1], pw_hash)
    svc.catalog.seed_defaults(acme_id)
    logins.append(("acme", "admin", "admin@acme.example", DEMO_PASSWORD))
    for name, handle, role in SECOND_TENANT_USERS:
        _ensure_user(svc, acme_id, f"{handle}@acme.example", name, role, DEMO_CITIES[1], pw_hash)
        logins.append(("acme", role.value, f"{handle}@acme.example", DEMO_PASSWORD))
    _seed_history(svc, demo_id, started, pw_hash)
    # the rows above were written directly (not through the services' jobs): bring the search index in line, only
    # for the marketplaces whose index disagrees with the database (fast: a second seed finds nothing to do)
    svc.sync_search_index()
    return logins


def main(settings: Settings | None = None) -> None:
    try:
        settings = settings or get_settings()
    except ValidationError as exc:
        sys.exit(f"The configuration is invalid; nothing was written.\n{exc}")
    try:
        refuse_unless_development(settings)  # before migrating or connecting: nothing is written
    except SeedRefused as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    svc = build_services(settings)
    try:
        rows = seed(svc)
    finally:
        svc.close()
    print("\nDemo logins (password for all: %s)" % DEMO_PASSWORD)
    for where, role, email, _ in rows:
        host = "http://localhost:3000" + where if where.startswith("/") else (
            "http://localhost:3000" if where == svc.settings.default_tenant else f"http://{where}.localhost:3000")
        print(f"  {role:<18} {email:<32} {host}")
    print()


if __name__ == "__main__":
    main()
