"""The dashboard's cache: values are the views as JSON, keyed by tenant, query, parameters and data version.

A new ledger posting or order event moves the data version, so the next dashboard asks for a new key: invalidation
without any write-side hook, the same in every process and worker. Redis when REDIS_URL is set (bootstrap picks
it), an in-process LRU otherwise. A cache never fails the dashboard: a Redis error is logged and is a miss.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...


class LocalCache:
    """A thread-safe in-process LRU with expiry."""

    def __init__(self, max_entries: int = 512, clock=time.monotonic):
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if hit[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class RedisCache:
    """Values in Redis under `prefix` + key, with a TTL. Every Redis error is logged and is a miss, and Redis is then
    left alone for `backoff_s` (a dashboard must not wait on a dead server twice per view)."""

    def __init__(self, redis_client: redis.Redis, prefix: str = "analytics:", *, backoff_s: float = 30.0,
                 clock=time.monotonic):
        self.redis = redis_client
        self.prefix = prefix
        self.backoff_s = backoff_s
        self._clock = clock
        self._down_until = 0.0

    @classmethod
    def from_url(cls, url: str, prefix: str = "analytics:") -> RedisCache:
        """On its own client: short timeouts and no retries (redis-py's default retries for seconds)."""
        return cls(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5,
                                        retry=Retry(NoBackoff(), 0), health_check_interval=30), prefix)

    def _safely(self, what: str, call):
        if self._clock() < self._down_until:
            return None
        try:
            return call()
        except (redis.RedisError, OSError) as exc:
            self._down_until = self._clock() + self.backoff_s
            log.warning("analytics cache: Redis %s failed (%s); the dashboard goes without the cache for %g s",
                        what, exc, self.backoff_s)
            return None

    def get(self, key: str) -> bytes | None:
        return self._safely("get", lambda: self.redis.get(self.prefix + key))

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._safely("set", lambda: self.redis.set(self.prefix + key, value, ex=ttl_seconds))
