"""Presence, typing indicators and flood control: Redis (production) or in-process (embedded default).

Presence is best effort. If Redis is down, messages still send and persist; presence degrades: nobody
appears online (so offline notifications go out to everyone), nobody appears typing, and flood control
lets messages through. Each failure is logged, at most once per `warn_every_s`, and Redis is left alone
for `backoff_s` after a failure, so an outage does not add a connect timeout to every chat request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

ONLINE_TTL_S = 30
TYPING_TTL_S = 5
T = TypeVar("T")


class RedisPresence:
    """Keys (all under `namespace`, default "mp"; tests pass their own to stay apart):
    - `mp:presence:{tenant}:{user}`: SET ... EX 30 on every heartbeat;
    - `mp:typing:{tenant}:{conversation}`: a sorted set user -> expiry (epoch seconds), so one read
      answers "who is typing here" without scanning the keyspace; the key itself expires too;
    - `mp:flood:{tenant}:{user}`: `SET NX EX window` then INCR in one MULTI, i.e. a fixed window that
      starts with the first message of a burst (atomic, and works on any Redis version).
    """

    @classmethod
    def from_url(cls, url: str, **options) -> RedisPresence:
        """A presence service on its own client: short timeouts and no retries. redis-py's default client
        retries 3 times with 1-10 s exponential backoff, which would stall every chat request for seconds
        while Redis is down; presence is best effort, so one quick attempt is right."""
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5,
                                      retry=Retry(NoBackoff(), 0), health_check_interval=30)
        return cls(client, **options)

    def __init__(self, client: redis.Redis, *, namespace: str = "mp", online_ttl_s: int = ONLINE_TTL_S,
                 typing_ttl_s: int = TYPING_TTL_S, backoff_s: float = 2.0, warn_every_s: float = 60.0):
        self.redis = client
        self.ns = namespace
        self.online_ttl_s = online_ttl_s
        self.typing_ttl_s = typing_ttl_s
        self.backoff_s = backoff_s
        self.warn_every_s = warn_every_s
        self._down_until = 0.0
        self._last_warning = 0.0

    # ------------------------------------------------------------ degradation

    def _safely(self, what: str, default: T, fn) -> T:
        now = time.monotonic()
        if now < self._down_until:
            return default
        try:
            return fn()
        except redis.RedisError as exc:
            self._down_until = now + self.backoff_s
            if now - self._last_warning >= self.warn_every_s:
                self._last_warning = now
                log.warning("presence: Redis unavailable (%s: %s); chat continues without presence", what, exc)
            return default

    def _key(self, kind: str, tenant_id: int, *rest: int) -> str:
        return ":".join([self.ns, kind, str(tenant_id), *map(str, rest)])

    # ------------------------------------------------------------ online

    def touch(self, tenant_id: int, user_id: int) -> None:
        self._safely("touch", None, lambda: self.redis.set(self._key("presence", tenant_id, user_id), 1,
                                                           ex=self.online_ttl_s))

    def online(self, tenant_id: int, user_ids: Iterable[int]) -> set[int]:
        ids = list(dict.fromkeys(int(u) for u in user_ids))
        if not ids:
            return set()

        def read() -> set[int]:
            values = self.redis.mget([self._key("presence", tenant_id, u) for u in ids])
            return {u for u, v in zip(ids, values) if v is not None}

        return self._safely("online", set(), read)

    # ------------------------------------------------------------ typing

    def set_typing(self, tenant_id: int, conversation_id: int, user_id: int) -> None:
        key = self._key("typing", tenant_id, conversation_id)

        def write() -> None:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {str(user_id): time.time() + self.typing_ttl_s})
                pipe.expire(key, self.typing_ttl_s + 1)
                pipe.execute()

        self._safely("set_typing", None, write)

    def typing(self, tenant_id: int, conversation_id: int) -> set[int]:
        key = self._key("typing", tenant_id, conversation_id)

        def read() -> set[int]:
            now = time.time()
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zrangebyscore(key, now, "+inf")
                _, members = pipe.execute()
            return {int(m) for m in members}

        return self._safely("typing", set(), read)

    # ------------------------------------------------------------ flood control

    def allow_message(self, tenant_id: int, user_id: int, limit: int = 20, window_s: int = 10) -> bool:
        key = self._key("flood", tenant_id, user_id)

        def count() -> bool:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=window_s, nx=True)
                pipe.incr(key)
                _, n = pipe.execute()
            return int(n) <= limit

        return self._safely("allow_message", True, count)


class LocalPresence:
    """The embedded default: the same behaviour in one process's memory (monotonic clock, one lock).

    Only right for a single process; several app processes need Redis to share presence.
    """

    def __init__(self, *, online_ttl_s: float = ONLINE_TTL_S, typing_ttl_s: float = TYPING_TTL_S,
                 clock=time.monotonic):
        self.online_ttl_s = online_ttl_s
        self.typing_ttl_s = typing_ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, int], float] = {}  # (tenant, user) -> expires
        self._typing: dict[tuple[int, int], dict[int, float]] = {}  # (tenant, conversation) -> user -> expires
        self._flood: dict[tuple[int, int], tuple[float, int]] = {}  # (tenant, user) -> (window end, count)
        self._next_sweep = 0.0

    def _sweep(self, now: float) -> None:
        """Drop expired entries now and then, so memory stays bounded by recent activity."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60
        self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
        self._flood = {k: v for k, v in self._flood.items() if v[0] > now}
        self._typing = {k: live for k, users in self._typing.items()
                        if (live := {u: exp for u, exp in users.items() if exp > now})}

    def touch(self, tenant_id: int, user_id: int) -> None:
        with self._lock:
            now = self.clock()
            self._sweep(now)
            self._seen[(tenant_id, int(user_id))] = now + self.online_ttl_s

    def online(self, tenant_id: int, user_ids: Iterable[int]) -> set[int]:
        with self._lock:
            now = self.clock()
            return {int(u) for u in user_ids if self._seen.get((tenant_id, int(u)), 0.0) > now}

    def set_typing(self, tenant_id: int, conversation_id: int, user_id: int) -> None:
        with self._lock:
            now = self.clock()
            self._sweep(now)
            self._typing.setdefault((tenant_id, conversation_id), {})[int(user_id)] = now + self.typing_ttl_s

    def typing(self, tenant_id: int, conversation_id: int) -> set[int]:
        with self._lock:
            now = self.clock()
            users = self._typing.get((tenant_id, conversation_id), {})
            return {u for u, exp in users.items() if exp > now}

    def allow_message(self, tenant_id: int, user_id: int, limit: int = 20, window_s: int = 10) -> bool:
        with self._lock:
            now = self.clock()
            self._sweep(now)
            key = (tenant_id, int(user_id))
            end, n = self._flood.get(key, (0.0, 0))
            if end <= now:
                end, n = now + window_s, 0
            n += 1
            self._flood[key] = (end, n)
            return n <= limit
