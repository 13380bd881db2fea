"""The bell's signal through Redis (REDIS_URL): Celery workers and web processes publish, the web processes' push
tasks take.

A LIST, not pub/sub: each signal is taken by exactly one web process (BLPOP), which pushes through Reflex's state
manager; with REFLEX_REDIS_URL that reaches the tab wherever its WebSocket is. Pub/sub would make every web process
push every signal. Open bells are a sorted set member "tenant:user" -> until when (epoch seconds), shared by all web
processes.

Best effort, like chat presence: Redis down loses signals (the bell catches up on the next page load or keepalive),
never a use case. Failures are logged at most once a minute.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.notifications.bell import MAX_PENDING, WATCH_SECONDS, Ping, unique

log = logging.getLogger(__name__)

TAKE_AT_ONCE = 500  # signals taken per round after the first arrives


class RedisBell:
    """Implements bell.BellFeed. `key` names the list (tests pass their own); the watch set is `key + ":watched"`."""

    @classmethod
    def from_url(cls, url: str, **options) -> RedisBell:
        # Publishing happens right after a use case commits, on the request's thread: one quick try, no retries.
        quick = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        # The push task blocks in BLPOP for up to its timeout: no socket timeout shorter than that.
        blocking = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=None)
        return cls(quick, blocking, **options)

    def __init__(self, quick: redis.Redis, blocking: redis.Redis, *, key: str = "mp:bell:signals",
                 max_pending: int = MAX_PENDING, watch_seconds: float = WATCH_SECONDS):
        self.quick, self.blocking = quick, blocking
        self.key, self.watch_key = key, f"{key}:watched"
        self.max_pending = max_pending
        self.watch_seconds = watch_seconds
        self._last_warning = 0.0

    def _warn(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning > 60:
            self._last_warning = now
            log.warning("bell: %s failed (%s); live bells wait for the next page load", what, exc)

    def publish(self, tenant_id: int, user_ids: Sequence[int]) -> None:
        if not user_ids:
            return
        payload = json.dumps({"t": tenant_id, "u": list(dict.fromkeys(user_ids))})
        try:
            with self.quick.pipeline(transaction=False) as pipe:
                pipe.rpush(self.key, payload)
                pipe.ltrim(self.key, -self.max_pending, -1)  # nobody draining (no web app): keep the newest
                pipe.execute()
        except redis.RedisError as exc:
            self._warn("publishing a signal", exc)

    def wait(self, timeout: float) -> list[Ping]:
        try:
            first = self.blocking.blpop([self.key], timeout=max(0.01, timeout))  # 0 would block forever
            if first is None:
                return []
            rest = self.blocking.lpop(self.key, TAKE_AT_ONCE) or []
        except redis.RedisError as exc:
            self._warn("reading signals", exc)
            time.sleep(min(timeout, 2.0))  # not a busy loop while Redis is down
            return []
        pings: list[Ping] = []
        for raw in [first[1], *rest]:
            try:
                signal = json.loads(raw)
                pings.extend((int(signal["t"]), int(u)) for u in signal["u"])
            except (ValueError, KeyError, TypeError):
                log.warning("bell: ignored a malformed signal %r", raw[:200])
        return unique(pings)

    def watch(self, tenant_id: int, user_id: int) -> None:
        now = time.time()
        try:
            with self.quick.pipeline(transaction=False) as pipe:
                pipe.zadd(self.watch_key, {f"{tenant_id}:{user_id}": now + self.watch_seconds})
                pipe.zremrangebyscore(self.watch_key, "-inf", now)  # closed bells
                pipe.execute()
        except redis.RedisError as exc:
            self._warn("watching a bell", exc)

    def watched(self, pings: Sequence[Ping]) -> list[Ping]:
        pings = unique(pings)
        if not pings:
            return []
        now = time.time()
        try:
            scores = self.quick.zmscore(self.watch_key, [f"{t}:{u}" for t, u in pings])
        except redis.RedisError as exc:
            self._warn("reading open bells", exc)
            return pings  # cannot tell: push them all (a push to a closed bell is wasted, not wrong)
        return [p for p, until in zip(pings, scores) if until is not None and until > now]
