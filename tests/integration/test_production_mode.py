"""Production never takes test cards (issue 8, item 4): the demo gateway exists only in development, a
marketplace without a configured provider cannot take payments (no fallback to another provider), payouts
move no money through a provider that isn't there, and the operator cannot choose an unconfigured provider.

Production-shaped settings are built with `Settings.model_construct` from the test settings (so the test
does not depend on which servers production also requires) with ENVIRONMENT=production and a random secret."""

from __future__ import annotations

import json
import secrets
from datetime import date, timedelta

import pytest
from pydantic import SecretStr
from sqlmodel import select

from backend.accounts.security import Passwords
from backend.bootstrap import build_services, make_gateways
from backend.config import Settings
from backend.errors import DomainError, NotFound, ValidationFailed
from backend.orders.facts import OrderFacts
from backend.orders.models import Order
from backend.orders.service import OrderService
from backend.payments.adapters.demo import DemoGateway
from backend.payments.ledger import Ledger
from backend.payments.models import DemoCharge, LedgerEntry, Payment, Payout
from backend.payments.ports import WebhookInvalid
from backend.payments.providers import CANNOT_TAKE_PAYMENTS
from backend.payments.service import PaymentService
from backend.tenancy.models import Tenant
from backend.platform.service import PlatformService
from backend.tenancy.service import TenantDirectory
from backend.jobqueue import InlineJobQueue

PW = "pw-1234567890"
TODAY = date.today()


def production_settings(base: Settings, **over) -> Settings:
    values = {name: getattr(base, name) for name in Settings.model_fields}
    values |= {"environment": "production", "secret_key": SecretStr(secrets.token_urlsafe(32))} | over
    return Settings.model_construct(**values)


def suite_settings(tmp_path, **over) -> Settings:
    return Settings(_env_file=None, **{"environment": "test", "data_dir": tmp_path, "redis_url": None,
                                       "argon2_time_cost": 1, "argon2_memory_kib": 8 * 1024,
                                       "argon2_parallelism": 1} | over)


def production_payments(svc) -> PaymentService:
    """The payment service a production process builds on the same database."""
    settings = production_settings(svc.settings)
    return PaymentService(svc.db, settings, make_gateways(settings, svc.db), Ledger(), OrderFacts(),
                          notifications=svc.notifications, jobs=svc.jobs)


def production_orders(svc) -> OrderService:
    """The order service a production process builds on the same database (over its payment service)."""
    return OrderService(svc.db, production_payments(svc), svc.store, svc.jobs, notifications=svc.notifications)


def set_provider(svc, tenant, provider: str):
    with svc.db.platform_session() as s:
        s.get(Tenant, tenant.id).payment_provider = provider
    svc.tenants._cache.clear()
    return svc.tenants.by_id(tenant.id)


# ------------------------------------------------------------------------------------------ which gateways exist

def test_the_demo_gateway_is_registered_only_in_development(tmp_path):
    dev = suite_settings(tmp_path, environment="development")
    test = suite_settings(tmp_path)
    prod = production_settings(test)
    assert list(make_gateways(dev, None)) == ["demo"]
    assert list(make_gateways(test, None)) == []  # the test suite asks for it explicitly (demo=True)
    assert list(make_gateways(test, None, demo=True)) == ["demo"]
    assert list(make_gateways(prod, None)) == []
    assert list(make_gateways(production_settings(test, stripe_secret_key=SecretStr("sk_live_x")), None)) == ["stripe"]
    with pytest.raises(ValueError, match="never runs with ENVIRONMENT=production"):
        make_gateways(prod, None, demo=True)


@pytest.mark.parametrize("environment", ["development", "production"])
def test_services_built_for_production_have_no_demo_gateway(tmp_path, environment):
    base = suite_settings(tmp_path)
    settings = base.model_copy(update={"environment": "development"}) if environment == "development" \
        else production_settings(base)
    jobs = InlineJobQueue(raise_errors=True)
    svc = build_services(settings, jobs=jobs)
    try:
        if environment == "development":  # `make run` keeps its test cards
            assert svc.payments.providers() == ["demo"] and svc.platform.default_provider() == "demo"
            assert svc.payments.demo_gateway() is svc.payments.gateways["demo"]
            return
        assert svc.payments.providers() == [] and svc.platform.providers == []
        assert svc.platform.default_provider() == ""
        assert "STRIPE_SECRET_KEY" in svc.platform.setup_hint()
        with pytest.raises(NotFound, match="not available"):  # what /pay/demo/<session> and its Pay button get
            svc.payments.demo_gateway()
        with pytest.raises(NotFound, match="not available"):
            svc.payments.demo_checkout("demo_cs_t1_x")
        with pytest.raises(NotFound, match="not available"):  # refused before the card form is even read
            svc.payments.pay_demo_checkout("demo_cs_t1_x", {"card_number": "4242 4242 4242 4242", "expiry": "bad"})
        # /api/webhooks/demo: even a correctly signed demo event is refused (nothing to confirm a "payment" with)
        payload = json.dumps({"id": "evt_1", "kind": "checkout_completed", "session_id": "demo_cs_t1_x",
                              "tenant_id": 1, "order_id": 1}).encode()
        signature = DemoGateway(svc.db, settings.secret_key.get_secret_value()).sign(payload)
        with pytest.raises(WebhookInvalid, match="Unknown payment provider"):
            svc.payments.record_webhook("demo", payload, {"Demo-Signature": signature})
    finally:
        svc.close()


# ------------------------------------------------------------------------------------------ checkout fails closed

def _user(svc, tenant, email, role="client"):
    return svc.accounts.sign_up(tenant, {"email": email, "password": PW, "full_name": email.split("@")[0],
                                         "role": role})[0]


@pytest.fixture
def accepted_order(svc, tenants):
    """A client, a professional and an order accepted and waiting for payment, on the demo marketplace."""
    t, _ = tenants
    svc.catalog.seed_defaults(t.id)
    client = _user(svc, t, "client@example.com")
    pro = _user(svc, t, "pro@example.com", role="professional")
    plumbing = next(c.id for c in svc.catalog.categories(t.id) if c.slug == "plumbing")
    svc.pros.update_own(t, pro, {"headline": "Plumber who fixes leaks", "city": "Austin", "radius_km": 30,
                                 "hourly_rate": "80", "category_ids": [plumbing]})
    request_id = svc.quotes.create_request(t, client, {
        "title": "Fix a leaking kitchen tap", "description": "The kitchen tap drips all night, needs a washer.",
        "city": "Austin", "budget_min": "50", "budget_max": "150", "category_id": plumbing})
    quote_id = svc.quotes.send_quote(t, pro, request_id, {
        "price": "120", "message": "I can fix it tomorrow morning.", "duration_hours": 2,
        "valid_until": (TODAY + timedelta(days=7)).isoformat()})
    order_id = svc.quotes.accept_quote(t, client, quote_id)
    return svc, t, client, pro, order_id


def _nothing_written(svc, tenant, order_id):
    with svc.db.tenant_session(tenant.id) as s:
        assert s.exec(select(Payment)).all() == []
        assert s.exec(select(DemoCharge)).all() == []
        assert s.get(Order, order_id).state == "accepted"


@pytest.mark.parametrize("provider", ["", "stripe", "paypal", "venmo"])
def test_checkout_without_a_configured_provider_is_refused_not_sent_to_the_demo_gateway(accepted_order, provider):
    svc, t, client, _, order_id = accepted_order
    assert "demo" in svc.payments.gateways  # it is there, and still must not be used in the provider's place
    t = set_provider(svc, t, provider)
    with pytest.raises(DomainError) as exc:
        svc.orders.start_checkout(t, client, order_id)
    assert exc.value.message == CANNOT_TAKE_PAYMENTS
    _nothing_written(svc, t, order_id)
    assert not svc.payments.can_take_payments(t)  # the order page shows that message instead of a Pay button


def test_production_refuses_checkout_on_a_demo_marketplace(accepted_order):
    svc, t, client, _, order_id = accepted_order
    assert t.payment_provider == "demo"
    production = production_orders(svc)
    with pytest.raises(DomainError, match="can't take payments"):
        production.start_checkout(t, client, order_id)
    _nothing_written(svc, t, order_id)
    assert svc.payments.can_take_payments(t) and not production.payments.can_take_payments(t)


def test_no_payout_through_a_provider_that_is_not_there(accepted_order):
    """Money held through the demo gateway (development) is never 'paid out' by a production process."""
    svc, t, client, pro, order_id = accepted_order
    url = svc.orders.start_checkout(t, client, order_id)
    session_id = url.rsplit("/", 1)[-1]
    svc.payments.gateways["demo"].pay_hosted(session_id, number="4242424242424242", exp_month=12,
                                             exp_year=TODAY.year + 2, cvc="123")
    svc.orders.confirm_checkout(t, session_id, client)
    for who, action in ((pro, "start"), (pro, "deliver"), (client, "complete")):
        svc.orders.apply(t, who, order_id, action)
    svc.payments.payout_onboarding(t, pro)  # after completion: the share waits for a payout
    production = production_payments(svc)

    def ledger_rows():
        with svc.db.tenant_session(t.id) as s:
            return len(s.exec(select(LedgerEntry)).all())

    before = ledger_rows()
    with pytest.raises(DomainError, match="not configured"):
        production.pay_out(t, pro)
    with pytest.raises(DomainError, match="not configured"):
        production.pay_out_order(t, order_id)  # the job after completion
    with pytest.raises(DomainError, match="can't take payments"):
        production.payout_onboarding(t, pro)
    assert not production.earnings(t, pro).payout_ready  # the earnings page still shows, without a payout button
    with svc.db.tenant_session(t.id) as s:
        assert s.exec(select(Payout)).all() == []
        assert s.exec(select(DemoCharge)).one().released_minor == 0
    assert ledger_rows() == before


# ------------------------------------------------------------------------------------------ the operator's choice

def test_the_operator_cannot_choose_an_unconfigured_provider(svc, tenants):
    svc.accounts.create_operator("op@example.com", PW)
    op, _ = svc.accounts.operator_login("op@example.com", PW)
    new = {"name": "Globex", "admin_email": "admin@globex.com", "admin_password": PW}

    assert svc.platform.providers == ["demo"]  # this suite's installation: the test-card gateway only
    with pytest.raises(ValidationFailed) as exc:
        svc.platform.create_tenant(op, new | {"slug": "globex", "payment_provider": "stripe"})
    assert "STRIPE_SECRET_KEY" in exc.value.errors["payment_provider"]
    assert svc.tenants.by_slug("globex") is None
    assert svc.platform.create_tenant(op, new | {"slug": "globex"}).payment_provider == "demo"
    assert svc.platform.create_tenant(op, new | {"slug": "initech", "admin_email": "a@initech.com",
                                                 "payment_provider": "none"}).payment_provider == ""

    # a production installation with no provider keys: new marketplaces have none, and the console says why
    production = PlatformService(svc.db, Passwords(svc.settings), TenantDirectory(svc.db, svc.settings),
                                 list(make_gateways(production_settings(svc.settings), svc.db)))
    created = production.create_tenant(op, new | {"slug": "hooli", "admin_email": "a@hooli.com"})
    assert created.payment_provider == ""
    rows = {r.slug: r for r in production.list_tenants(op)}
    assert not rows["hooli"].checkout_ready and "STRIPE_SECRET_KEY" in rows["hooli"].checkout_hint
    assert not rows["demo"].checkout_ready and "PAYPAL_CLIENT_ID" in rows["demo"].checkout_hint
    branding = {"name": "Hooli", "currency": "USD", "platform_fee_percent": 10}
    for unconfigured in ("demo", "stripe", "paypal", "venmo"):
        with pytest.raises(ValidationFailed) as exc:
            production.update_branding(op, created.id, branding | {"payment_provider": unconfigured})
        assert "not configured" in exc.value.errors["payment_provider"]
    assert svc.tenants.by_id(created.id).payment_provider == ""
    production.update_branding(op, rows["demo"].id, branding | {"payment_provider": "none"})
    assert svc.tenants.by_id(rows["demo"].id).payment_provider == ""

    # with Stripe configured, it is the default and the only choice
    stripe_only = PlatformService(svc.db, Passwords(svc.settings), TenantDirectory(svc.db, svc.settings), ["stripe"])
    assert stripe_only.default_provider() == "stripe" and stripe_only.setup_hint() == ""
    assert stripe_only.create_tenant(op, new | {"slug": "umbrella", "admin_email": "a@umbrella.com"}
                                     ).payment_provider == "stripe"
