"""Embedded SMS delivery (development only): texts are appended to ./data/sms/messages.jsonl, read by the dev SMS
outbox page, where a developer finds the phone code. Bootstrap picks this channel only with ENVIRONMENT=development:
elsewhere phone codes must never rest on the server's disk.

Each text is one JSON line written with a single write() on a file opened O_APPEND, under an exclusive flock: the web
process and several Celery workers append at once without interleaving. A torn last line (a crash mid-write) is
skipped when reading.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from backend.notifications.ports import DevSms, OutgoingSms

FILE_NAME = "messages.jsonl"
PROVIDER_PREFIX = "dev-"


class DevSmsOutbox:
    """Implements SmsSender (send) and DevSmsBox (messages)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / FILE_NAME

    def send(self, sms: OutgoingSms) -> str:
        provider_id = PROVIDER_PREFIX + uuid.uuid4().hex
        record = {"provider_id": provider_id, "to": sms.to, "body": sms.body, "reference": sms.reference,
                  "created_at": datetime.now(UTC).isoformat()}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)  # closing releases the lock
        return provider_id

    def messages(self, to: str | None = None, limit: int = 50) -> list[DevSms]:
        """Newest first; `to` keeps the texts to that number only."""
        if limit <= 0:
            return []
        try:
            lines = self._path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        found: list[DevSms] = []
        for line in reversed(lines):
            sms = _parse(line)
            if sms is not None and (to is None or sms.to == to):
                found.append(sms)
                if len(found) == limit:
                    break
        return found


def _parse(line: bytes) -> DevSms | None:
    try:
        record = json.loads(line)
        return DevSms(provider_id=str(record["provider_id"]), to=str(record["to"]), body=str(record["body"]),
                      created_at=str(record["created_at"]))
    except (ValueError, KeyError, TypeError):
        return None
