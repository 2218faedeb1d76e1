"""The shared cache: Django's Redis backend, failing open.

The cache holds throttle counters and nothing that only lives there (lock-outs are in the database, django-axes'
database handler). So when Redis is down, slow or refuses a command, an operation answers what an empty cache
would (``get`` the default, ``add`` True, ``set`` nothing) instead of raising into the request: a 500 on token
issuance because the throttle could not count would turn a cache outage into an API outage.

Each failure is counted (``fail_open_count()``) and logged as a warning on the ``canopy.cache`` logger, starting
with "Cache unavailable, failing open" for an operator to alert on. After a failure the cache is left alone for
``retry_after`` seconds (5 unless OPTIONS say otherwise): a Redis that accepts connections but never answers then
costs a worker one read timeout per window instead of one or two per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger("canopy.cache")
T = TypeVar("T")

_failed_open = 0
_lock = threading.Lock()


def fail_open_count() -> int:
    """Cache operations answered without the cache since the process started."""
    return _failed_open


def _count() -> int:
    global _failed_open
    with _lock:
        _failed_open += 1
        return _failed_open


class FailOpenRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        self.retry_after = float(options.pop("retry_after", 5.0))
        super().__init__(server, {**params, "OPTIONS": options})
        self._down_until = 0.0

    def _fail_open(self, operation: str, fallback: T, call: Callable[[], T]) -> T:
        if time.monotonic() < self._down_until:
            _count()
            return fallback
        try:
            return call()
        except RedisError as exc:
            self._down_until = time.monotonic() + self.retry_after
            logger.warning(
                "Cache unavailable, failing open: %s raised %s (%s); cache left alone for %g s; "
                "operations failed open since start-up: %d",
                operation,
                type(exc).__name__,
                exc,
                self.retry_after,
                _count(),
            )
            return fallback

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._fail_open("get", default, lambda: RedisCache.get(self, key, default, version))

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return self._fail_open("get_many", {}, lambda: RedisCache.get_many(self, keys, version))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._fail_open("has_key", False, lambda: RedisCache.has_key(self, key, version))

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._fail_open("add", True, lambda: RedisCache.add(self, key, value, timeout, version))

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._fail_open("set", None, lambda: RedisCache.set(self, key, value, timeout, version))

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list:
        # Django's contract: the keys that could not be stored.
        return self._fail_open("set_many", list(data), lambda: RedisCache.set_many(self, data, timeout, version))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._fail_open("touch", False, lambda: RedisCache.touch(self, key, timeout, version))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._fail_open("delete", False, lambda: RedisCache.delete(self, key, version))

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._fail_open("delete_many", None, lambda: RedisCache.delete_many(self, keys, version))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        # As for a missing key: callers that count with incr() fall back to add()/set(), which fail open too.
        missing = object()
        value = self._fail_open("incr", missing, lambda: RedisCache.incr(self, key, delta, version))
        if value is missing:
            raise ValueError(f"Key '{key}' not found (the cache is unavailable).")
        return value

    def clear(self) -> bool:
        return self._fail_open("clear", False, lambda: RedisCache.clear(self))
