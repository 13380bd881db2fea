"""Throttling of logins, password-reset requests and verification re-sends, on SQLite and PostgreSQL:
attempts are admitted atomically (concurrent guesses cannot exceed the limit), reset requests look the
same whether or not the email has an account, and the client address follows the trusted-hops rule."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlmodel import select

import backend.accounts.service as account_service
import backend.bootstrap as bootstrap
from backend.accounts.models import AttemptKind, LoginAttempt
from backend.errors import AuthenticationFailed, Throttled
from backend.notifications.models import Notification

PW = "a-good-password"


def sign_up(svc, tenant, email="ann@example.com"):
    return svc.accounts.sign_up(tenant, {"email": email, "password": PW, "full_name": "Ann Lee", "role": "client"})


def attempts(svc, **where) -> int:
    with svc.db.platform_session() as s:
        query = select(sa.func.count()).select_from(LoginAttempt)
        for column, value in where.items():
            query = query.where(getattr(LoginAttempt, column) == value)
        return s.exec(query).one()


def emails_to(svc, tenant, recipient: str) -> int:
    with svc.db.tenant_session(tenant.id) as s:
        return s.exec(select(sa.func.count()).select_from(Notification)
                      .where(Notification.recipient == recipient)).one()


class CountingVerify:
    """Wraps Passwords.verify: how many argon2 verifications really ran."""

    def __init__(self, verify):
        self.verify, self.calls, self._lock = verify, 0, threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.calls += 1
        return self.verify(*args, **kwargs)


# ---------------------------------------------------------------- login


def test_concurrent_wrong_logins_evaluate_at_most_the_limit(svc, tenants, monkeypatch):
    demo, _ = tenants
    sign_up(svc, demo)
    limit = svc.settings.login_max_failures_per_account
    counter = CountingVerify(svc.accounts.passwords.verify)
    monkeypatch.setattr(svc.accounts.passwords, "verify", counter)
    start = threading.Barrier(50)

    def guess(i: int) -> str:
        start.wait()  # all 50 at once
        try:
            svc.accounts.login(demo, "ann@example.com", f"wrong-password-{i}", ip=f"10.1.0.{i + 1}")
        except AuthenticationFailed:
            return "failed"
        except Throttled:
            return "throttled"
        return "logged in"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(guess, range(50)))

    assert counter.calls == limit, "only admitted attempts reach argon2"
    assert outcomes.count("failed") == limit and outcomes.count("throttled") == 50 - limit
    assert attempts(svc, email="ann@example.com") == limit  # refused attempts leave no row
    with pytest.raises(Throttled, match="this account"):
        svc.accounts.login(demo, "ann@example.com", PW, ip="10.2.0.1")
    assert counter.calls == limit


def test_attempt_is_recorded_before_the_password_is_checked(svc, tenants, monkeypatch):
    demo, _ = tenants
    sign_up(svc, demo)
    seen = []

    def verify(password_hash, password):
        seen.append(attempts(svc, email="ann@example.com", kind=AttemptKind.LOGIN))
        return False

    monkeypatch.setattr(svc.accounts.passwords, "verify", verify)
    with pytest.raises(AuthenticationFailed):
        svc.accounts.login(demo, "ann@example.com", "wrong-password", ip="10.0.0.1")
    assert seen == [1]


def test_a_successful_login_is_not_counted_as_a_failure(svc, tenants):
    demo, _ = tenants
    sign_up(svc, demo)
    limit = svc.settings.login_max_failures_per_account
    for _ in range(limit - 1):
        with pytest.raises(AuthenticationFailed):
            svc.accounts.login(demo, "ann@example.com", "wrong-password", ip="10.0.0.1")
    svc.accounts.login(demo, "ann@example.com", PW, ip="10.0.0.1")
    assert attempts(svc, email="ann@example.com") == 0
    for _ in range(limit):  # a fresh allowance
        with pytest.raises(AuthenticationFailed):
            svc.accounts.login(demo, "ann@example.com", "wrong-password", ip="10.0.0.1")


def test_operator_login_is_admitted_the_same_way(svc, monkeypatch):
    svc.accounts.create_operator("op@platform.example", "operator-password-1")
    limit = svc.settings.login_max_failures_per_account
    counter = CountingVerify(svc.accounts.passwords.verify)
    monkeypatch.setattr(svc.accounts.passwords, "verify", counter)

    def guess(i):
        try:
            svc.accounts.operator_login("op@platform.example", "nope-nope-nope", ip=f"10.3.0.{i + 1}")
        except (AuthenticationFailed, Throttled) as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(guess, range(20)))
    assert counter.calls == limit and outcomes.count("Throttled") == 20 - limit


# ---------------------------------------------------------------- password reset requests


def test_reset_requests_are_throttled_per_email_alike_for_known_and_unknown(svc, tenants):
    demo, _ = tenants
    sign_up(svc, demo)
    svc.settings.reset_request_min_ms = 0
    per_account = svc.settings.email_requests_per_account
    refusals = {}
    for email in ("ann@example.com", "ghost@example.com"):
        for i in range(per_account):
            svc.accounts.request_password_reset(demo, email, ip=f"10.4.0.{i + 1}")
        with pytest.raises(Throttled) as exc:
            svc.accounts.request_password_reset(demo, email, ip="10.4.1.1")
        refusals[email] = exc.value.message
    assert "Too many password reset requests for this email address" in refusals["ann@example.com"]
    assert refusals["ann@example.com"] == refusals["ghost@example.com"]  # nothing tells them apart
    assert emails_to(svc, demo, "ann@example.com") == 1 + per_account  # the welcome email + the resets


def test_reset_requests_are_throttled_per_address(svc, tenants):
    demo, _ = tenants
    svc.settings.reset_request_min_ms = 0
    for i in range(svc.settings.email_requests_per_address):
        svc.accounts.request_password_reset(demo, f"user{i}@example.com", ip="10.5.5.5")
    with pytest.raises(Throttled, match="your network address"):
        svc.accounts.request_password_reset(demo, "someone-else@example.com", ip="10.5.5.5")
    svc.accounts.request_password_reset(demo, "someone-else@example.com", ip="10.5.5.6")


def test_reset_for_known_and_unknown_email_does_the_same_work(svc, tenants, monkeypatch):
    """Structural, not timed: both paths record an attempt, make a token and are padded to the same floor."""
    demo, _ = tenants
    sign_up(svc, demo)
    svc.settings.reset_request_min_ms = 300
    sleeps, tokens = [], []
    monkeypatch.setattr(svc.accounts, "_clock", lambda: 1000.0)  # a frozen clock: the whole floor is slept
    monkeypatch.setattr(svc.accounts, "_sleep", sleeps.append)
    real_new_token = account_service.new_token
    monkeypatch.setattr(account_service, "new_token", lambda: tokens.append(1) or real_new_token())

    work = {}
    for email in ("ann@example.com", "ghost@example.com"):
        sleeps.clear(), tokens.clear()
        svc.accounts.request_password_reset(demo, email, ip="10.6.0.1")
        work[email] = (list(sleeps), len(tokens), attempts(svc, email=email, kind=AttemptKind.RESET))
    assert work["ann@example.com"] == work["ghost@example.com"] == ([0.3], 1, 1)


def test_throttled_reset_requests_are_refused_at_once(svc, tenants, monkeypatch):
    demo, _ = tenants
    svc.settings.email_requests_per_account = 1
    sleeps = []
    monkeypatch.setattr(svc.accounts, "_sleep", sleeps.append)
    # a frozen clock: the request never outlasts the pace, however busy the machine (it once did on PostgreSQL)
    monkeypatch.setattr(svc.accounts, "_clock", lambda: 0.0)
    svc.accounts.request_password_reset(demo, "ghost@example.com", ip="10.7.0.1")
    assert len(sleeps) == 1
    with pytest.raises(Throttled):
        svc.accounts.request_password_reset(demo, "ghost@example.com", ip="10.7.0.1")
    assert len(sleeps) == 1  # a refused request holds no thread asleep


# ---------------------------------------------------------------- verification re-sends


def test_verification_resend_is_throttled_per_account_and_address(svc, tenants):
    demo, _ = tenants
    ann, _ = sign_up(svc, demo)
    for i in range(svc.settings.email_requests_per_account):
        svc.accounts.resend_verification(demo, ann, ip=f"10.8.0.{i + 1}")
    with pytest.raises(Throttled, match="sent several confirmation emails"):
        svc.accounts.resend_verification(demo, ann, ip="10.8.1.1")
    assert emails_to(svc, demo, "ann@example.com") == 1 + svc.settings.email_requests_per_account

    svc.settings.email_requests_per_address = 2
    bob, _ = sign_up(svc, demo, email="bob@example.com")
    cid, _ = sign_up(svc, demo, email="cid@example.com")
    svc.accounts.resend_verification(demo, bob, ip="10.8.2.2")
    svc.accounts.resend_verification(demo, cid, ip="10.8.2.2")
    with pytest.raises(Throttled):
        svc.accounts.resend_verification(demo, bob, ip="10.8.2.2")


# ---------------------------------------------------------------- the Reflex side uses the same address rule


def test_reflex_handlers_take_the_address_by_the_trusted_hops_rule(svc, monkeypatch):
    from state.auth import _client_ip

    monkeypatch.setattr(bootstrap, "_services", svc)

    def state(forwarded_for: str):
        headers = {"asgi-scope-client": "10.0.0.5", "x-forwarded-for": forwarded_for}
        return SimpleNamespace(router=SimpleNamespace(headers=SimpleNamespace(raw_headers=headers),
                                                      session=SimpleNamespace(client_ip="10.0.0.5")))

    svc.settings.trusted_proxy_hops = 0
    assert _client_ip(state("6.6.6.6")) == "10.0.0.5"
    svc.settings.trusted_proxy_hops = 1
    assert _client_ip(state("6.6.6.6, 198.51.100.7")) == "198.51.100.7"

