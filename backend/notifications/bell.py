"""The in-app bell's signal: "these users' in-app notifications changed", sent after the change commits.

The web process turns each signal into a live push (marketplace_app/bell_push.py): it reads the user's unread count
and latest items from the database and sets them on the user's shared bell state, which Reflex sends to every open
tab of theirs. A signal carries ids only, never content, so a repeated or late signal is harmless (the push reads the
database as it is then), and a lost one costs only liveness: the next page load or the bell's keepalive reads the
count again.

Two implementations: `LocalBell` here (the embedded default: the web process runs the use cases, so an in-process
queue is enough) and `adapters/redis_bell.py` (with REDIS_URL: Celery workers and several web processes share a Redis
list). Bootstrap picks one.

Only bells that are open somewhere are pushed: each open bell says so (`watch`) when it links and on its keepalive,
and a fan-out to thousands of users pushes to the few who are looking, instead of building a shared state for each.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

# An open bell renews its watch every few minutes (the page's keepalive); one not renewed for this long is closed.
WATCH_SECONDS = 15 * 60
# Signals nobody drains (a CLI or a worker process without a web app) are kept up to this many, oldest dropped.
MAX_PENDING = 10_000

Ping = tuple[int, int]  # (tenant_id, user_id)


class BellSignal(Protocol):
    """What the notification service needs: ring these users' bells (called after commit)."""

    def publish(self, tenant_id: int, user_ids: Sequence[int]) -> None: ...


class BellFeed(BellSignal, Protocol):
    """The web process's side of the same channel."""

    def wait(self, timeout: float) -> list[Ping]:
        """Blocking: the pings published since the last call (each once, in order), waiting up to `timeout` seconds
        for the first; [] when none came."""
        ...

    def watch(self, tenant_id: int, user_id: int) -> None:
        """This user's bell is open (in some tab, on some web process) for the next WATCH_SECONDS."""
        ...

    def watched(self, pings: Sequence[Ping]) -> list[Ping]:
        """Those of `pings` whose bell is open."""
        ...


def unique(pings: Iterable[Ping]) -> list[Ping]:
    return list(dict.fromkeys(pings))


class LocalBell:
    """In-process BellFeed: a bounded queue that any thread fills and the web process's push task drains."""

    def __init__(self, max_pending: int = MAX_PENDING, watch_seconds: float = WATCH_SECONDS,
                 clock=time.monotonic):
        self._pending: deque[Ping] = deque(maxlen=max_pending)
        self._ready = threading.Condition()
        self._watching: dict[Ping, float] = {}
        self._watch_seconds = watch_seconds
        self._clock = clock

    def publish(self, tenant_id: int, user_ids: Sequence[int]) -> None:
        if not user_ids:
            return
        with self._ready:
            self._pending.extend((tenant_id, user_id) for user_id in user_ids)
            self._ready.notify_all()

    def wait(self, timeout: float) -> list[Ping]:
        with self._ready:
            if not self._pending:
                self._ready.wait(timeout)
            taken = list(self._pending)
            self._pending.clear()
        return unique(taken)

    def watch(self, tenant_id: int, user_id: int) -> None:
        now = self._clock()
        with self._ready:
            self._watching[(tenant_id, user_id)] = now + self._watch_seconds
            if len(self._watching) > 1000 and len(self._watching) % 100 == 0:  # forget closed bells now and then
                self._watching = {k: until for k, until in self._watching.items() if until > now}

    def watched(self, pings: Sequence[Ping]) -> list[Ping]:
        now = self._clock()
        with self._ready:
            return [p for p in unique(pings) if self._watching.get(p, 0.0) > now]
