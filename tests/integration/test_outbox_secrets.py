"""Issue 8.2: no page outside development shows other users' emails, and no usable one-time token stays readable at
rest once the email channel has taken the message, while a failed delivery can still be retried."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlmodel import select

from backend.bootstrap import make_notifications
from backend.config import Settings
from backend.errors import PermissionDenied
from backend.notifications.adapters.unconfigured import NOT_CONFIGURED
from backend.notifications.models import Notification
from backend.notifications.ports import DeliveryError
from backend.notifications.service import DEV_OUTBOX_ONLY
from tests.integration.test_accounts import make_admin, sign_up

PRODUCTION = dict(environment="production", secret_key="p" * 40,
                  database_url="postgresql+psycopg://owner@db.internal/market",
                  database_app_url="postgresql+psycopg://marketplace_app@db.internal/market")


def _rows(svc, tenant) -> list[Notification]:
    with svc.db.tenant_session(tenant.id) as s:
        return list(s.exec(select(Notification).order_by(Notification.id)).all())


def _table_text(svc) -> str:
    """Everything the notification table holds, as an attacker with a database dump would see it."""
    with svc.db.engine.connect() as conn:
        if svc.db.is_postgres:  # the app role sees one tenant at a time: read it as the owner would
            conn.close()
            conn = sa.create_engine(svc.settings.owner_database_url).connect()
            conn.execute(sa.text("ALTER TABLE notification NO FORCE ROW LEVEL SECURITY"))
        text = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM notification")).all() for v in row)
        conn.rollback()
        conn.close()
    return text


def _delivered_token(svc, note: Notification, marker: str) -> str:
    return re.search(re.escape(marker) + r"([A-Za-z0-9_-]+)", svc.notifications.dev_mailbox.read(note.provider_id))[1]


def test_reset_and_verification_tokens_are_gone_from_the_rows_once_sent(svc, tenants):
    demo, _ = tenants
    sign_up(svc, demo)
    svc.accounts.request_password_reset(demo, "ann@example.com")
    verify, reset = _rows(svc, demo)
    assert (verify.status, reset.status) == ("sent", "sent")
    verify_token = _delivered_token(svc, verify, "/verify?token=")
    reset_token = _delivered_token(svc, reset, "/reset?token=")
    dump = _table_text(svc)
    assert verify_token not in dump and reset_token not in dump
    assert verify.sealed_token == "" and reset.sealed_token == ""
    # and the links the user received work
    assert svc.accounts.verify_email(demo, verify_token) == "ann@example.com"
    svc.accounts.reset_password(demo, reset_token, "a-brand-new-password-1")


def test_a_failed_delivery_keeps_the_token_sealed_and_the_retry_sends_it(svc, tenants, monkeypatch):
    demo, _ = tenants
    sign_up(svc, demo)
    real_send = svc.notifications.email.send
    calls = []

    def flaky(email):
        calls.append(email.text)
        if len(calls) == 1:
            raise DeliveryError("provider timed out")
        return real_send(email)

    monkeypatch.setattr(svc.notifications.email, "send", flaky)
    with pytest.raises(DeliveryError):
        svc.accounts.request_password_reset(demo, "ann@example.com")  # the inline job raises, like a Celery retry
    note = _rows(svc, demo)[-1]
    assert note.status == "pending" and note.sealed_token  # waiting, sealed: not a usable token at rest
    assert note.next_attempt_at is not None and note.last_error == "provider timed out"
    token = re.search(r"token=([A-Za-z0-9_-]+)", calls[0])[1]
    assert token not in _table_text(svc)
    monkeypatch.setattr(svc.notifications, "clock", lambda: note.next_attempt_at)  # the backoff has passed
    assert svc.notifications.deliver(demo.id, note.id) == "sent"  # the retry
    assert token in calls[1]
    note = _rows(svc, demo)[-1]
    assert note.sealed_token == "" and token not in _table_text(svc)
    svc.accounts.reset_password(demo, token, "a-brand-new-password-1")


def test_the_dev_outbox_shows_delivered_mail_to_admins_in_development_only(svc, tenants):
    demo, _ = tenants
    client, _ = sign_up(svc, demo)
    admin = make_admin(svc, demo)
    bodies = [m.body for m in svc.notifications.outbox(admin)]
    assert any("/verify?token=" in b and "{one_time_token}" not in b for b in bodies)
    # a texted code shows there too, so that a phone can be verified without a phone in development
    svc.accounts.start_phone_verification(demo, client, "(415) 555-0123")
    texts = [m for m in svc.notifications.outbox(admin) if m.channel == "sms"]
    assert len(texts) == 1 and texts[0].recipient == "+14155550123" and re.search(r"\b\d{6}\b", texts[0].body)
    with pytest.raises(PermissionDenied):
        svc.notifications.outbox(client)


def test_production_has_no_dev_outbox_and_no_silent_mailbox(svc, tenants, tmp_path):
    demo, _ = tenants
    prod = Settings(**PRODUCTION, data_dir=tmp_path / "production")
    with pytest.raises(ValueError, match="never runs with ENVIRONMENT=production"):
        make_notifications(prod, svc.db, dev_outbox=True)
    notifications = make_notifications(prod, svc.db)
    assert notifications.dev_mailbox is None
    admin = make_admin(svc, demo)
    with pytest.raises(PermissionDenied) as refused:
        notifications.outbox(admin)
    assert refused.value.message == DEV_OUTBOX_ONLY
    # an email queued in production is not written anywhere on disk: delivery fails, loudly and retryably
    svc.accounts.notifications = notifications
    svc.notifications = notifications  # what the inline delivery job uses
    with pytest.raises(DeliveryError, match="No email provider is configured"):
        svc.accounts.request_password_reset(demo, "boss@example.com")
    note = _rows(svc, demo)[-1]
    assert note.status == "pending" and note.last_error == NOT_CONFIGURED[:500]  # waits for a provider
    assert not (tmp_path / "production").exists()


def test_a_changed_secret_key_fails_the_message_instead_of_sending_a_dead_link(svc, tenants, tmp_path):
    demo, _ = tenants
    sign_up(svc, demo)
    svc.accounts.jobs.deliver_notification = lambda *a: None  # queue only
    svc.accounts.request_password_reset(demo, "ann@example.com")
    note = _rows(svc, demo)[-1]
    rotated = make_notifications(Settings(environment="test", secret_key="r" * 40, data_dir=tmp_path), svc.db,
                                 dev_outbox=True)
    assert rotated.deliver(demo.id, note.id) == "failed"  # for good: no retry can make the link work
    note = _rows(svc, demo)[-1]
    assert note.status == "failed" and "SECRET_KEY" in note.last_error


def test_a_message_queued_before_tokens_were_sealed_loses_its_token_once_sent(svc, tenants):
    """Rows written by the old code (raw token in the body, nothing sealed) are redacted when they go out."""
    demo, _ = tenants
    sign_up(svc, demo)
    raw = "Q" * 43
    with svc.db.tenant_session(demo.id) as s:
        note = Notification(recipient="ann@example.com", subject="Reset your password",
                            body=f"Choose a new password: http://localhost:3000/reset?token={raw}\n")
        s.add(note)
        s.flush()
        note_id = note.id
    assert svc.notifications.deliver(demo.id, note_id) == "sent"
    sent = _rows(svc, demo)[-1]
    assert raw in svc.notifications.dev_mailbox.read(sent.provider_id)  # the user got the link
    assert raw not in _table_text(svc) and "removed once sent" in sent.body
