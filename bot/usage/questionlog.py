"""The question log: every answer recorded off the request path.

``record`` only puts a row on a bounded queue; one writer thread commits rows in batches. When
the database is unreachable, locked or full, rows are dropped and counted (never waited for), a
warning is logged, and writing resumes by itself when the database is back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy.exc import SQLAlchemyError

from bot.metrics import LOG_DROPPED, LOG_QUEUE, LOG_WRITTEN
from bot.models import Answer, Citation
from bot.usage.store import Store, now

logger = logging.getLogger(__name__)


def new_answer_id() -> str:
    """32 hex digits: the issue time in milliseconds (12), then 80 random bits. The time lets
    feedback on another worker's fresh answer be accepted without waiting for that worker's batch."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def issued_within(answer_id: str, seconds: float) -> bool:
    """True when ``answer_id`` says it was issued at most ``seconds`` ago (and not in the future)."""
    try:
        issued = int(answer_id[:12], 16) / 1000
    except ValueError:
        return False
    return len(answer_id) == 32 and 0 <= time.time() - issued <= seconds + 1.0  # 1 s for clocks of other machines


def _storable(row: dict) -> dict:
    """``row`` with NUL removed from its text: PostgreSQL text cannot hold it, and one such row must not fail a batch."""
    return {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in row.items()}


@lru_cache(maxsize=4096)
def client_id(api_key: str | None, browser_id: str | None) -> str:
    """Who asked, without keeping a secret: a hash of the API key, else the page's random id."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
    if browser_id and browser_id.isascii() and 0 < len(browser_id) <= 64:
        return "web:" + hashlib.sha256(browser_id.encode()).hexdigest()[:16]
    return "anonymous"


def answer_row(answer: Answer, answer_id: str, client: str, route: str, time: datetime) -> dict:
    return {
        "id": answer_id, "time": time, "client": client, "route": route, "question": answer.question,
        "resolved_question": answer.resolved_question, "found": answer.found, "reason": answer.reason,
        "mode": answer.mode, "guard": answer.guard.action if answer.guard else None,
        "citations": _clause_refs(answer.citations), "related": _clause_refs(answer.related) if answer.related else None,
        "latency_ms": answer.latency_ms,
    }


def _clause_refs(citations: list[Citation]) -> str:
    return json.dumps([{"clause_id": c.clause_id, "doc_id": c.doc_id, "score": c.score} for c in citations])


class QuestionLog:
    """Bounded queue + one writer thread.

    Args:
        store: where rows go.
        capacity: rows that may wait; beyond it rows are dropped at once (answers never wait).
        batch: rows committed in one transaction at most; ``interval``: seconds a row may wait for a batch.
        retention_days: answers older than this are purged once a day (0: never).
        grace: seconds feedback on an answer not yet in the store is kept and retried (another
            worker's batch may not be committed yet); then it is dropped.
        readers: threads for the API's reads of the store (``readers``), apart from answers.
    """

    def __init__(self, store: Store, capacity: int = 10_000, batch: int = 500, interval: float = 1.0,
                 retention_days: int = 180, grace: float = 30.0, readers: int = 4) -> None:
        # The schema may exist already (``serve`` and the app migrate on start); the writer checks once.
        self.store = store
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=capacity)
        self._batch, self._interval, self._retention, self._grace = batch, interval, retention_days, grace
        self._waiting: list[dict] = []  # feedback whose answer is not in the store yet
        self._failures = 0
        self._recent: OrderedDict[str, None] = OrderedDict()  # answer ids issued here, not yet committed maybe
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._last_purge = 0.0
        self._schema_ready = False
        self._thread = threading.Thread(target=self._run, name="question-log", daemon=True)
        self._thread.start()
        # The API's reads of the store (feedback look-ups, admin pages) run here, not in the thread
        # pool that answers questions; each is bounded by the store's statement timeout.
        self.readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="question-log-read")

    def record(self, answer: Answer, answer_id: str, client: str, route: str) -> None:
        """Queue ``answer`` for the log; the row is built by the writer thread, off the request path."""
        self._put("answers", (answer, answer_id, client, route, now()))
        with self._lock:
            self._recent[answer_id] = None
            if len(self._recent) > 50_000:
                self._recent.popitem(last=False)

    def record_feedback(self, row: dict) -> None:
        self._put("feedback", row)

    def issued_here(self, answer_id: str) -> bool:
        with self._lock:
            return answer_id in self._recent

    def recently_issued(self, answer_id: str) -> bool:
        """Issued by any worker within the grace period: its row may still be on its way."""
        return issued_within(answer_id, self._grace)

    @property
    def available(self) -> bool:
        """False while the last write failed (database unreachable, locked or slow)."""
        return self._failures == 0

    def _put(self, table: str, row) -> None:
        try:
            self._queue.put_nowait((table, row))
            self._idle.clear()
        except queue.Full:
            LOG_DROPPED.inc()
            logger.warning("question log queue full; row dropped")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued row has been written or dropped (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self._idle.is_set():
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.flush(5.0)
        self._stop.set()
        self._thread.join(timeout=5)
        self.readers.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            items = self._take()
            if items or self._waiting:
                self._write(items)
            elif self._failures:
                self._probe()
            if not items:
                self._idle.set()
            self._purge_daily()

    def _take(self) -> list[tuple[str, dict]]:
        try:
            items = [self._queue.get(timeout=self._interval)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._interval
        while len(items) < self._batch and time.monotonic() < deadline:
            try:
                items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        LOG_QUEUE.set(self._queue.qsize())
        return items

    def _write(self, items: list[tuple[str, object]]) -> None:
        """Commit one batch: answers first, then feedback whose answer is stored. A row the database
        refuses is dropped alone; an unreachable, locked or slow database drops the batch (counted)
        and the writer backs off, resuming by itself."""
        answers = [_storable(answer_row(*r)) for t, r in items if t == "answers"]
        feedback = self._waiting + [_storable(r) for t, r in items if t == "feedback"]
        self._waiting = []
        written = 0
        try:
            if not self._schema_ready:  # migrations applied by the writer, so a store down at start-up is fine
                self.store.migrate()
                self._schema_ready = True
            written = self.store.insert_answers(answers)
            dropped, answers = len(answers) - written, []
            if feedback:
                stored, refused, missing = self.store.insert_feedback(feedback)
                written += stored
                self._waiting = [r for r in missing if issued_within(r["answer_id"], self._grace)]
                dropped += refused + len(missing) - len(self._waiting)
            LOG_DROPPED.inc(dropped)
        except SQLAlchemyError as exc:
            LOG_DROPPED.inc(len(answers) + len(feedback))
            if self._failures == 0 or self._failures % 50 == 0:
                logger.warning("question log: %d rows dropped, database unavailable: %s", len(answers) + len(feedback),
                               type(exc).__name__)
            self._failures += 1
            time.sleep(min(2.0, 0.1 * 2 ** min(self._failures, 5)))  # back off while it is down, resume by itself
            return
        finally:
            LOG_WRITTEN.inc(written)
        if self._failures:
            logger.warning("question log: database back, writing again")
        self._failures = 0

    def _probe(self) -> None:
        """While idle after a failure: is the database back? (Feedback is refused until it is.)"""
        try:
            self.store.ping()
        except SQLAlchemyError:
            time.sleep(min(2.0, 0.1 * 2 ** min(self._failures, 5)))
            return
        logger.warning("question log: database back, writing again")
        self._failures = 0

    def _purge_daily(self) -> None:
        if not self._retention or not self._schema_ready or time.monotonic() - self._last_purge < 86_400:
            return
        self._last_purge = time.monotonic()
        try:
            deleted = self.store.purge(now() - timedelta(days=self._retention))
            if deleted:
                logger.info("question log: purged %d answers older than %d days", deleted, self._retention)
        except SQLAlchemyError as exc:
            logger.warning("question log: purge failed: %s", type(exc).__name__)
