"""The delivery task retries when the notification row says its next attempt is (DeliveryError.retry_in), so the
task's schedule and the row's agree; without one, on the row's own backoff."""

from __future__ import annotations

import pytest

import backend.jobs as jobs
from backend.notifications.ports import DeliveryError
from backend.notifications.service import MAX_ATTEMPTS


class Retrying(Exception):
    """What the patched Task.retry returns for the task to raise."""


@pytest.fixture
def failing(monkeypatch):
    """The task's job raises this DeliveryError; `asked` gets what the task passed to retry()."""
    failure = DeliveryError("SendGrid answered 503")
    asked: dict = {}

    class Queue:
        def deliver_notification(self, tenant_id: int, notification_id: int) -> str:
            raise failure

    def retry(**kwargs):
        asked.update(kwargs)
        return Retrying()

    monkeypatch.setattr(jobs, "_here", Queue)
    monkeypatch.setattr(jobs.deliver_notification, "retry", retry)
    return failure, asked


def test_the_retry_waits_as_long_as_the_row_does(failing):
    failure, asked = failing
    failure.retry_in = 42.5

    with pytest.raises(Retrying):
        jobs.deliver_notification(1, 2)

    assert asked == {"countdown": 42.5, "exc": failure, "max_retries": MAX_ATTEMPTS}


def test_without_the_rows_time_the_retry_backs_off_exponentially(failing):
    failure, asked = failing

    with pytest.raises(Retrying):
        jobs.deliver_notification(1, 2)

    assert asked["countdown"] == 2.0 and asked["exc"] is failure  # the first retry: 2**1 s


def test_the_task_retries_as_often_as_a_row_is_attempted():
    assert jobs.deliver_notification.max_retries == MAX_ATTEMPTS
    assert not getattr(jobs.deliver_notification, "autoretry_for", ())  # retries are the body's, on the row's time
