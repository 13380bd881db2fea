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
