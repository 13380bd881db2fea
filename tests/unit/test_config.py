import pytest
from pydantic import ValidationError

from backend.config import Settings


def test_defaults_are_embedded(monkeypatch):
    for var in ("DATABASE_URL", "REDIS_URL", "DATABASE_APP_URL"):
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)
    assert s.owner_database_url.startswith("sqlite:///")
    assert not s.is_postgres
    assert s.redis_url is None


def test_production_refuses_placeholder_secret():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production", database_url="postgresql+psycopg://x@y/z")


def test_production_requires_postgres():
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(_env_file=None, environment="production", secret_key="s" * 40)


@pytest.mark.parametrize("environment", ["development", "test"])
@pytest.mark.parametrize("deployment", [
    {"public_url": "https://market.example"},
    {"public_url": "http://203.0.113.7:3000"},
    {"base_domain": "market.example"},
    {"stripe_secret_key": "sk_live_0123456789"},
    {"paypal_environment": "production"},
])
def test_a_forgotten_environment_on_a_real_deployment_fails_closed(environment, deployment):
    """Development tools (demo data, test cards, dev outbox) must never face real users: a public address or live
    payment keys without ENVIRONMENT=production refuse to start instead of running as development."""
    with pytest.raises(ValidationError, match="Set ENVIRONMENT=production"):
        Settings(_env_file=None, environment=environment, **deployment)


@pytest.mark.parametrize("local", ["http://localhost:3000", "http://acme.localhost:3000", "http://127.0.0.1:8000",
                                   "http://[::1]:3000"])
def test_development_on_this_machine_needs_no_settings(local):
    assert Settings(_env_file=None, public_url=local, stripe_secret_key="sk_test_123").environment == "development"
