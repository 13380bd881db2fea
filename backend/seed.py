"""Demo data: a platform operator and a demo tenant with an admin, 3 clients and 10 professionals.

Idempotent: running it again changes nothing. `python -m backend.seed` prints the logins.
Development only: every account it creates has the published password below, so it refuses to run
unless ENVIRONMENT=development (production creates its operator with `python -m backend.cli`).
"""

from __future__ import annotations

import sys

from pydantic import ValidationError
from sqlmodel import select

from backend.identity import Role
from backend.accounts.models import OperatorAccount, User
from backend.bootstrap import Services, build_services
from backend.config import Settings, get_settings
from backend.db import utcnow
from backend.geo import locate
from backend.catalog.models import Category
from backend.profiles.models import ProCategory, Profile, ProProfile
from backend.tenancy.models import Tenant

DEMO_PASSWORD = "demo-password-1"
OPERATOR_EMAIL = "operator@platform.example"
CITIES = ["Austin", "Denver", "Portland", "Chicago", "Boston"]

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
        session.add(Profile(user_id=user.id, full_name=name, city=city))


def _ensure_pro_profile(svc: Services, tenant_id: int, email: str, handle: str, city: str) -> None:
    slugs, headline, rate, skills = PRO_DETAILS[handle]
    with svc.db.tenant_session(tenant_id) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        if session.get(ProProfile, user.id) is not None:
            return
        lat_lng = locate(city)
        session.add(ProProfile(user_id=user.id, headline=headline, bio=f"{headline}. Fully insured, references on "
                               "request, and happy to give a free estimate.", skills=skills, city=city,
                               latitude=lat_lng[0] if lat_lng else None, longitude=lat_lng[1] if lat_lng else None,
                               radius_km=40, hourly_rate_minor=rate, availability=WEEKDAY_HOURS,
                               verified=handle in ("diego", "emma", "farah")))
        for category in session.exec(select(Category).where(Category.slug.in_(slugs))).all():
            session.add(ProCategory(user_id=user.id, category_id=category.id))


def seed(svc: Services) -> list[tuple[str, str, str, str]]:
    """Returns (where, role, email, password) rows for printing."""
    refuse_unless_development(svc.settings)
    pw_hash = svc.accounts.passwords.hash(DEMO_PASSWORD)
    logins = []
    with svc.db.platform_session() as session:
        has_operator = session.exec(select(OperatorAccount.id).where(OperatorAccount.email == OPERATOR_EMAIL)).first()
    if not has_operator:
        svc.accounts.create_operator(OPERATOR_EMAIL, DEMO_PASSWORD)
    logins.append(("/operator/login", "platform operator", OPERATOR_EMAIL, DEMO_PASSWORD))

    demo = svc.settings.default_tenant
    demo_id = _ensure_tenant(svc, demo, "HandyHub", "#4F46E5", "#F59E0B")
    _ensure_user(svc, demo_id, f"admin@{demo}.example", "Dana Admin", Role.ADMIN, "Austin", pw_hash)
    logins.append((demo, "admin", f"admin@{demo}.example", DEMO_PASSWORD))
    for i, (name, handle) in enumerate(CLIENTS):
        _ensure_user(svc, demo_id, f"{handle}@{demo}.example", name, Role.CLIENT, CITIES[i % len(CITIES)], pw_hash)
        logins.append((demo, "client", f"{handle}@{demo}.example", DEMO_PASSWORD))
    svc.catalog.seed_defaults(demo_id)
    for i, (name, handle) in enumerate(PROS):
        city = CITIES[i % len(CITIES)]
        _ensure_user(svc, demo_id, f"{handle}@{demo}.example", name, Role.PROFESSIONAL, city, pw_hash)
        _ensure_pro_profile(svc, demo_id, f"{handle}@{demo}.example", handle, city)
        logins.append((demo, "professional", f"{handle}@{demo}.example", DEMO_PASSWORD))

    # A second marketplace, to see tenant isolation at http://acme.localhost:3000
    acme_id = _ensure_tenant(svc, "acme", "Acme Home Services", "#0F766E", "#E11D48")
    _ensure_user(svc, acme_id, "admin@acme.example", "Ada Acme", Role.ADMIN, "Denver", pw_hash)
    svc.catalog.seed_defaults(acme_id)
    logins.append(("acme", "admin", "admin@acme.example", DEMO_PASSWORD))
    for name, handle, role in SECOND_TENANT_USERS:
        _ensure_user(svc, acme_id, f"{handle}@acme.example", name, role, "Denver", pw_hash)
        logins.append(("acme", role.value, f"{handle}@acme.example", DEMO_PASSWORD))
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
