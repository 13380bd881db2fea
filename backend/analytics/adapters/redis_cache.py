"""The dashboard's cache in Redis (backend/analytics/cache.py says what is cached and why no write invalidates it)."""

from __future__ import annotations

import logging
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


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
