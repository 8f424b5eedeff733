"""The answer cache: per process, and optionally shared by every worker and replica.

A least-recently-used cache in which concurrent misses of one key are computed once: when a hall
asks the same question at the same moment, one caller answers and the others wait for its result.
``functools.lru_cache`` lets every concurrent miss compute (and cachetools does not coalesce
either), which under a burst multiplies the most expensive work by the number of listeners.
Behind it an optional shared tier (``SharedTier``, e.g. Redis or a SQLite file) lets a question
answered by one worker or replica be served by all.

Across processes a miss is settled once too: a process claims the key in the shared tier before
working it out, and another that meets the claim waits for the answer instead of computing it. One
thread per cache (``_poll``) looks every key this process waits for up in one batched query, every
``poll_s`` seconds; a claim expires (``claim_timeout`` in the tier), so a waiter whose claimer died
works the key out itself.

``cache(*key)`` does it all in the caller's thread. The API takes the same steps apart (``claim``,
``recall``, ``compute``, ``release``) so that what is already known is served on its event loop and
only real work waits for a computing thread (``bot.api.answering``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class SharedTier(Protocol[T]):
    """A cache every process can read; ``get`` returns None on a miss or when the tier is down.

    Claims (all three or none): ``take`` returns the value when the tier has it, True when the key
    is now this process's to work out (also when the tier is down), False when another process holds
    a live claim; ``peek`` answers for many keys in one look-up: the value, True (still claimed
    elsewhere) or False (neither: the claim was given up or expired; a key left out counts as False);
    ``drop`` gives this process's claim up."""

    def get(self, key: tuple) -> T | None: ...

    def set(self, key: tuple, value: T) -> None: ...


class AnswerCache(Generic[T]):
    """``cache(*key)`` -> (value, whether it came from a cache or a computation already running)."""

    POLL_S = 0.02  # seconds between the batched look-ups of keys other processes are working out

    def __init__(self, compute: Callable[..., T], maxsize: int, shared: SharedTier[T] | None = None,
                 poll_s: float = POLL_S) -> None:
        self._compute, self._maxsize, self._shared, self._poll_s = compute, maxsize, shared, poll_s
        self._claims = shared is not None and hasattr(shared, "take")
        self._done: OrderedDict[tuple, T] = OrderedDict()
        self._running: dict[tuple, Future[T]] = {}
        self._elsewhere: dict[tuple, Future[T | None]] = {}  # keys claimed by another process, waited for here
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None  # runs while keys are waited for

    def __call__(self, *key: Hashable) -> tuple[T, bool]:
        value, running = self.claim(key)
        if value is not None:
            return value, True
        if running is not None:
            return running.result(), True
        try:
            while True:
                value, elsewhere = self.recall(key)
                if value is not None:
                    return value, True
                if elsewhere is None:
                    break
                value = elsewhere.result()
                if value is not None:
                    return value, True
        except BaseException as exc:
            self.release(key, exc)
            raise
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

    def recall(self, key: tuple) -> tuple[T | None, Future[T | None] | None]:
        """For a key claimed in this process, one look-up in the shared tier: (value, None) when it
        has the value (the claim is then settled); (None, None) when the key is now this process's to
        work out (``compute`` or ``release``); (None, future) when another process is working it out:
        the future gives its value (settled here too) or None when that claim lapsed without one:
        ``recall`` again, to take it over."""
        if not self._claims:
            value = self._shared.get(key) if self._shared else None
            if value is not None:
                self._settle(key, value)
            return value, None
        taken = self._shared.take(key)
        if taken is True:
            return None, None
        if taken is not False:
            self._settle(key, taken)
            return taken, None
        elsewhere: Future[T | None] = Future()
        with self._lock:
            self._elsewhere[key] = elsewhere
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll, name="answer-claims", daemon=True)
                self._poller.start()
        return None, elsewhere

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
        """Give a claimed key up without a value: nothing is cached, its waiters see ``exc``, and
        another process's waiters may take it over."""
        with self._lock:
            mine = self._running.pop(key, None)
        if mine is not None:
            mine.set_exception(exc)
        if self._claims:
            self._shared.drop(key)

    def waiting(self) -> int:
        """Keys this process waits for while other processes work them out."""
        return len(self._elsewhere)

    def _poll(self) -> None:
        """The claims thread: while keys are waited for, one batched look-up every ``poll_s``."""
        while True:
            time.sleep(self._poll_s)
            with self._lock:
                keys = list(self._elsewhere)
                if not keys:
                    self._poller = None
                    return
            try:
                found = self._shared.peek(keys)
            except Exception:  # noqa: BLE001 - a tier that fails to answer: the waiters take their keys over
                found = {}
            self._wake(keys, found)

    def _wake(self, keys: Iterable[tuple], found: dict) -> None:
        for key in keys:
            state = found.get(key, False)
            if state is True:
                continue
            if state is not False:
                self._settle(key, state)
            with self._lock:
                elsewhere = self._elsewhere.pop(key, None)
            if elsewhere is not None:
                elsewhere.set_result(None if state is False else state)

    def _settle(self, key: tuple, value: T) -> None:
        with self._lock:
            mine = self._running.pop(key, None)
            self._done[key] = value
            if len(self._done) > self._maxsize:
                self._done.popitem(last=False)
        if mine is not None:
            mine.set_result(value)
