"""The dashboard's cache: values are the views as JSON, keyed by tenant, query, parameters and data version.

A new ledger posting or order event moves the data version, so the next dashboard asks for a new key: invalidation
without any write-side hook, the same in every process and worker. Redis when REDIS_URL is set (bootstrap picks
adapters/redis_cache.py), the in-process LRU here otherwise. A cache never fails the dashboard: a Redis error is
logged and is a miss.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Protocol


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
