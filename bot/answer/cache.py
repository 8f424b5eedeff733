"""The answer cache: per process, and optionally shared by every worker and replica.

A least-recently-used cache in which concurrent misses of one key are computed once: when a hall
asks the same question at the same moment, one thread answers and the others wait for its result.
``functools.lru_cache`` lets every concurrent miss compute (and cachetools does not coalesce
either), which under a burst multiplies the most expensive work by the number of listeners.
Behind it an optional shared tier (``SharedTier``, e.g. Redis) lets a question answered by one
worker or replica be served by all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class SharedTier(Protocol[T]):
    """A cache every process can read; ``get`` returns None on a miss or when the tier is down."""

    def get(self, key: tuple) -> T | None: ...

    def set(self, key: tuple, value: T) -> None: ...


class AnswerCache(Generic[T]):
    """``cache(*key)`` -> (value, whether it came from a cache or a computation already running)."""

    def __init__(self, compute: Callable[..., T], maxsize: int, shared: SharedTier[T] | None = None) -> None:
        self._compute, self._maxsize, self._shared = compute, maxsize, shared
        self._done: OrderedDict[tuple, T] = OrderedDict()
        self._running: dict[tuple, Future[T]] = {}
        self._lock = threading.Lock()

    def __call__(self, *key: Hashable) -> tuple[T, bool]:
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key], True
            running = self._running.get(key)
            if running is None:
                mine = self._running[key] = Future()
        if running is not None:
            return running.result(), True
        try:
            value = self._shared.get(key) if self._shared else None
            cached = value is not None
            if not cached:
                value = self._compute(*key)
                if self._shared:
                    self._shared.set(key, value)
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            mine.set_exception(exc)
            raise
        with self._lock:
            del self._running[key]
            self._done[key] = value
            if len(self._done) > self._maxsize:
                self._done.popitem(last=False)
        mine.set_result(value)
        return value, cached
