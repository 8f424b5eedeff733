"""How the API answers: what is known at once, the rest queued for a few computing threads.

A question whose answer this worker already has, or is already working out for someone else, is
answered on the event loop; one the shared tier has (``POLICYBOT_CACHE_URL``), after a look-up on a
small pool of its own; one another worker has claimed in the shared tier is waited for (the answer
cache polls all such questions in one look-up) and counts as no work of this worker. Only a question that must be worked out goes to the worker's
``answer_threads`` computing threads, first come first served, and only such work can be refused:
when the wait it can expect there exceeds ``max_wait_s`` (503 with Retry-After). A burst of cached
answers thus neither waits behind nor is refused for the uncached work of the same moment, and the
uncached answers finish one after another instead of forty at a time, each at a fortieth of the speed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bot.api.errors import APIError
from bot.models import Answer, Filters
from bot.pipeline import Found, Job, PolicyBot

T = TypeVar("T")


class Answering:
    """One worker's computing threads and its admission by expected wait.

    The expected wait of a new uncached question is the uncached work queued or running ahead of it
    times the recent time per uncached answer, over the number of threads: busy, the threads finish
    ``threads`` answers every ``service_s`` seconds. ``service_s`` is an exponentially weighted mean
    of the time each worked-out answer (or search) took on its thread; ``PRIOR_S`` stands in before
    the first. Cache hits are neither counted nor measured: they take microseconds.
    """

    PRIOR_S = 0.05  # an uncached answer's time on 2 cores, before anything is measured
    ALPHA = 0.1  # weight of the newest answer's time in the mean
    LOOKUP_THREADS = 2  # shared-tier look-ups: one SQLite connection or a few Redis round trips at a time

    def __init__(self, threads: int, max_wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threads, self.max_wait, self.clock = threads, max_wait, clock
        self.queued, self.service_s = 0, self.PRIOR_S
        self._compute = ThreadPoolExecutor(threads, thread_name_prefix="answer")
        self._lookups = ThreadPoolExecutor(self.LOOKUP_THREADS, thread_name_prefix="answer-lookup")

    def expected_wait(self) -> float:
        """Seconds a question that must be worked out, arriving now, can expect to wait."""
        return self.queued * self.service_s / self.threads

    def admit(self) -> None:
        """Refuse (503 with the seconds until the queue is back under the bound) when the expected wait is over it."""
        wait = self.expected_wait()
        if wait > self.max_wait:
            raise APIError(503, "overloaded", "the server is busy; retry in a moment", type_="server_error",
                           retry_after=max(1, math.ceil(wait - self.max_wait)))

    async def uncached(self, work: Callable[..., T], *args) -> T:
        """``work(*args)`` on the computing threads, once admitted."""
        self.admit()
        return await self._queue(work, *args)

    async def answer(self, bot: PolicyBot, job: Job) -> tuple[Found, bool]:
        """The answer to ``job`` and whether it was already known (``PolicyBot.work_out``, its steps placed as above)."""
        cache = bot.answers
        if job.key is None:  # nothing to work out
            return bot.work_out(job)
        if cache is None:
            return await self.uncached(bot.work_out, job)
        value, running = cache.claim(job.key)
        if value is not None:
            return value, True
        if running is not None:  # someone asked first: wait for their answer, holding no thread
            return await asyncio.wrap_future(running), True
        loop, lapsed = asyncio.get_running_loop(), False
        try:
            while True:
                value, elsewhere = await loop.run_in_executor(self._lookups, cache.recall, job.key)
                if value is not None:
                    return value, True
                if elsewhere is None:
                    break
                # Another worker is working it out: wait for its answer (the cache's one batched poll
                # finds it), neither queued nor counted here. A claim that lapses is taken over.
                value = await asyncio.wrap_future(elsewhere)
                if value is not None:
                    return value, True
                lapsed = True
            if not lapsed:  # a question taken over has waited already: it is worked out, not shed
                self.admit()
        except BaseException as exc:
            self._release(cache, job.key, exc)
            raise
        return await self._queue(cache.compute, job.key), False

    def _release(self, cache, key: tuple, exc: BaseException) -> None:
        """Give the question up (its askers here see ``exc``); its shared claim is dropped off the event loop."""
        try:
            self._lookups.submit(cache.release, key, exc)
        except RuntimeError:  # closing
            cache.release(key, exc)

    async def _queue(self, work: Callable[..., T], *args) -> T:
        self.queued += 1
        try:
            result, seconds = await asyncio.get_running_loop().run_in_executor(self._compute, self._timed, work, args)
        finally:
            self.queued -= 1
        self.service_s += self.ALPHA * (seconds - self.service_s)
        return result

    def _timed(self, work: Callable[..., T], args: tuple) -> tuple[T, float]:
        start = self.clock()
        result = work(*args)
        return result, self.clock() - start

    def close(self) -> None:
        """Stop the threads once the work they have is done."""
        self._compute.shutdown(wait=False, cancel_futures=True)
        self._lookups.shutdown(wait=False, cancel_futures=True)


async def respond(request: Request, bot: PolicyBot, question: str, top_k: int | None = None, filters: Filters | None = None,
                  history: list[str] | None = None) -> tuple[Answer, Iterator[str | Answer]]:
    """The answer to ``question`` and its events as ``PolicyBot.stream`` yields them; raises
    ``InvalidQuestion`` (400) or ``APIError`` (503 overloaded). With an LLM (``bot.generates``) the
    events call it: iterate them off the event loop."""
    job = bot.prepare(question, top_k, filters, history)
    answering: Answering = request.app.state.answering
    answer, hits = bot.finish(job, *await answering.answer(bot, job))
    return answer, bot.elaborate(answer, hits, job.started)


async def final(bot: PolicyBot, answer: Answer, events: Iterator[str | Answer]) -> Answer:
    """The last of ``respond``'s events: ``answer`` itself, or the LLM's (waited for on a thread)."""
    if not bot.generates(answer):
        return answer
    *_, answer = await run_in_threadpool(list, events)
    return answer
