"""Operator accounts from the command line, and demo data kept out of production (issue 8, item 3).

`python -m backend.cli create-operator` / `reset-operator-password` take the password from a file, an
environment variable or the terminal (asked twice), never from argv and never a default; the seed with its
published password refuses to run unless ENVIRONMENT=development, and writes nothing when it refuses."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from pydantic import SecretStr
from sqlmodel import select

from backend import cli, seed
from backend.accounts.models import OperatorAccount
from backend.config import PROJECT_ROOT, Settings
from backend.errors import AuthenticationFailed

GOOD = "correct-horse-battery-9"


def run(svc, *argv: str) -> int:
    return cli.main(list(argv), settings=svc.settings)


def password_file(tmp_path, text: str):
    path = tmp_path / "operator-password"
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def operators(svc) -> list[str]:
    with svc.db.platform_session() as s:
        return list(s.exec(select(OperatorAccount.email)).all())


def test_create_operator_from_a_password_file_then_log_in(svc, tmp_path, capsys):
    code = run(svc, "create-operator", "--email", "Root@Example.com", "--name", "Rita Root",
               "--password-file", password_file(tmp_path, GOOD + "\n"))
    assert code == 0, capsys.readouterr().err
    assert "Created platform operator root@example.com" in capsys.readouterr().out
    actor, token = svc.accounts.operator_login("root@example.com", GOOD)  # the trailing newline is not part of it
    assert (actor.role, actor.name) == ("operator", "Rita Root")
    assert svc.accounts.resolve_operator_session(token).email == "root@example.com"
    # a second operator is fine; the same email again is refused
    assert run(svc, "create-operator", "--email", "second@example.com", "--password-file",
               password_file(tmp_path, GOOD)) == 0
    assert run(svc, "create-operator", "--email", "root@example.com", "--password-file",
               password_file(tmp_path, GOOD)) == 1
    assert "already exists" in capsys.readouterr().err
    assert sorted(operators(svc)) == ["root@example.com", "second@example.com"]


def test_create_operator_from_an_environment_variable(svc, monkeypatch, capsys):
    monkeypatch.setenv("OPERATOR_PASSWORD", GOOD)
    assert run(svc, "create-operator", "--email", "env@example.com", "--password-env", "OPERATOR_PASSWORD") == 0
    svc.accounts.operator_login("env@example.com", GOOD)
    monkeypatch.delenv("OPERATOR_PASSWORD")
    assert run(svc, "create-operator", "--email", "other@example.com", "--password-env", "OPERATOR_PASSWORD") == 2
    assert "OPERATOR_PASSWORD is not set" in capsys.readouterr().err
    assert operators(svc) == ["env@example.com"]


@pytest.mark.parametrize(("password", "message"), [
    ("short", "at least 10 characters"), ("", "at least 10 characters"), ("x" * 201, "at most 200"),
    ("demo-password-1", "published"),
])
def test_weak_or_published_passwords_are_refused(svc, tmp_path, capsys, password, message):
    assert run(svc, "create-operator", "--email", "weak@example.com", "--password-file",
               password_file(tmp_path, password)) == 1
    assert message in capsys.readouterr().err
    assert operators(svc) == []


def test_interactive_password_is_asked_twice_and_must_match(svc, monkeypatch, capsys):
    answers = iter([GOOD, GOOD + "x"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    assert run(svc, "create-operator", "--email", "typo@example.com") == 1
    assert "do not match" in capsys.readouterr().err
    assert operators(svc) == []
    answers = iter([GOOD, GOOD])
    assert run(svc, "create-operator", "--email", "typo@example.com") == 0
    svc.accounts.operator_login("typo@example.com", GOOD)


def test_reset_sets_the_password_and_revokes_the_operators_sessions(svc, tmp_path, capsys):
    svc.platform.create_operator("op@example.com", GOOD)
    svc.platform.create_operator("bystander@example.com", GOOD)
    _, first = svc.accounts.operator_login("op@example.com", GOOD)
    _, second = svc.accounts.operator_login("op@example.com", GOOD)
    _, theirs = svc.accounts.operator_login("bystander@example.com", GOOD)
    new = "a-brand-new-passphrase"
    assert run(svc, "reset-operator-password", "--email", "op@example.com", "--password-file",
               password_file(tmp_path, new)) == 0
    assert "2 open sessions signed out" in capsys.readouterr().out
    assert svc.accounts.resolve_operator_session(first) is None
    assert svc.accounts.resolve_operator_session(second) is None
    assert svc.accounts.resolve_operator_session(theirs) is not None  # only that operator's sessions
    with pytest.raises(AuthenticationFailed):
        svc.accounts.operator_login("op@example.com", GOOD)
    svc.accounts.operator_login("op@example.com", new)
    # an unknown operator, and a weak new password, are refused and change nothing
    assert run(svc, "reset-operator-password", "--email", "nobody@example.com", "--password-file",
               password_file(tmp_path, new)) == 1
    assert "No platform operator" in capsys.readouterr().err
    assert run(svc, "reset-operator-password", "--email", "op@example.com", "--password-file",
               password_file(tmp_path, "short")) == 1
    svc.accounts.operator_login("op@example.com", new)


@pytest.mark.parametrize("argv", [
    ["create-operator"],  # no --email
    ["create-operator", "--email", "a@example.com", "--password", GOOD],  # never on the command line
    ["create-operator", "--email", "a@example.com", "--password-file", "f", "--password-env", "V"],
    ["drop-everything"],
])
def test_usage_errors_exit_2(svc, argv):
    with pytest.raises(SystemExit) as exc:
        run(svc, *argv)
    assert exc.value.code == 2
    assert operators(svc) == []


def test_unreadable_password_file_exits_2(svc, tmp_path, capsys):
    assert run(svc, "create-operator", "--email", "a@example.com", "--password-file",
               str(tmp_path / "missing")) == 2
    assert "Cannot read the password file" in capsys.readouterr().err


def test_the_command_runs_as_a_module(tmp_path):
    """`python -m backend.cli` on a fresh SQLite database: it migrates first, then creates the operator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {
        "DATA_DIR": str(tmp_path), "ENVIRONMENT": "development", "OP_PW": GOOD}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "backend.cli", "create-operator", "--email", "cli@example.com",
                           "--password-env", "OP_PW"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Created platform operator cli@example.com" in done.stdout
    assert (tmp_path / "marketplace.db").exists()


# ------------------------------------------------------------------------------------------ the demo seed

def _settings(tmp_path, environment: str) -> Settings:
    base = Settings(_env_file=None, environment="test", data_dir=tmp_path / "data", redis_url=None,
                    argon2_time_cost=1, argon2_memory_kib=8 * 1024, argon2_parallelism=1)
    values = {name: getattr(base, name) for name in Settings.model_fields}
    values |= {"environment": environment, "secret_key": SecretStr(secrets.token_urlsafe(32))}
    return Settings.model_construct(**values)  # production-shaped without the servers production requires


@pytest.mark.parametrize("environment", ["production", "test"])
def test_the_seed_refuses_outside_development_and_writes_nothing(tmp_path, capsys, environment):
    settings = _settings(tmp_path, environment)
    with pytest.raises(SystemExit) as exc:
        seed.main(settings)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert f"ENVIRONMENT={environment}" in err and "nothing was written" in err and "backend.cli" in err
    assert not settings.data_dir.exists()  # not even a migrated, empty database


def test_the_seed_refuses_services_that_are_not_development(svc):
    with pytest.raises(seed.SeedRefused):
        seed.seed(svc)
    assert operators(svc) == []


def test_the_seed_module_refuses_production(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {
        "ENVIRONMENT": "production", "SECRET_KEY": secrets.token_urlsafe(32), "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}"}
    done = subprocess.run([sys.executable, "-m", "backend.seed"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert not (tmp_path / "prod.db").exists() and not (tmp_path / "data").exists()


def test_the_seed_still_works_in_development(tmp_path, capsys):
    settings = _settings(tmp_path, "development")
    settings.data_dir.mkdir()  # (Alembic's env creates the data dir of the process's own settings only)
    seed.main(settings)
    assert "operator@platform.example" in capsys.readouterr().out
    seed.main(settings)  # idempotent
    from backend.db import Database
    from backend.tenancy.models import Tenant

    db = Database(settings)
    try:
        with db.platform_session() as s:  # demo data pays with test cards: the demo gateway exists here
            assert {t.slug: t.payment_provider for t in s.exec(select(Tenant)).all()} == {"demo": "demo",
                                                                                          "acme": "demo"}
    finally:
        db.dispose()
