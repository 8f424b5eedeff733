"""The answer cache: per process, and optionally shared by every worker and replica.

A least-recently-used cache in which concurrent misses of one key are computed once: when a hall
asks the same question at the same moment, one caller answers and the others wait for its result.
``functools.lru_cache`` lets every concurrent miss compute (and cachetools does not coalesce
either), which under a burst multiplies the most expensive work by the number of listeners.
Behind it an optional shared tier (``SharedTier``, e.g. Redis) lets a question answered by one
worker or replica be served by all.

``cache(*key)`` does it all in the caller's thread. The API takes the same steps apart (``claim``,
``recall``, ``compute``, ``release``) so that what is already known is served on its event loop and
only real work waits for a computing thread (``bot.api.answering``).
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
        value, running = self.claim(key)
        if value is not None:
            return value, True
        if running is not None:
            return running.result(), True
        try:
            value = self.recall(key)
        except BaseException as exc:
            self.release(key, exc)
            raise
        if value is not None:
            return value, True
        return self.compute(key), False

    def claim(self, key: tuple) -> tuple[T | None, Future[T] | None]:
        """Never waits: (value, None) when this process has the value; (None, future) when another
        caller is already working it out; (None, None) when the key is now the caller's to settle,
        with ``recall`` (if that finds it), ``compute`` or ``release``."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key], None
            running = self._running.get(key)
            if running is None:
                self._running[key] = Future()
            return None, running

    def recall(self, key: tuple) -> T | None:
        """A claimed key's value from the shared tier (the claim is then settled), or None (still claimed)."""
        value = self._shared.get(key) if self._shared else None
        if value is not None:
            self._settle(key, value)
        return value

    def compute(self, key: tuple) -> T:
        """Work out a claimed key, share it and settle the claim; on failure its waiters see the error."""
        try:
            value = self._compute(*key)
            if self._shared:
                self._shared.set(key, value)
        except BaseException as exc:
            self.release(key, exc)
            raise
        self._settle(key, value)
        return value

    def release(self, key: tuple, exc: BaseException) -> None:
        """Give a claimed key up without a value: nothing is cached and its waiters see ``exc``."""
        with self._lock:
            mine = self._running.pop(key, None)
        if mine is not None:
            mine.set_exception(exc)

    def _settle(self, key: tuple, value: T) -> None:
        with self._lock:
            mine = self._running.pop(key, None)
            self._done[key] = value
            if len(self._done) > self._maxsize:
                self._done.popitem(last=False)
        if mine is not None:
            mine.set_result(value)
