"""Answers shared by every worker serving the same build (``POLICYBOT_CACHE_URL``): through Redis
(``redis://``) across replicas, or through a SQLite file (``sqlite:///path``) across the workers of one
machine, which ``serve`` sets up by itself for several workers. A question answered by one worker is
a look-up for the others, so a hall's burst works each question out once, not once per worker.

Keys carry the build id and a hash of the settings, so a new build or other answer settings never
see old answers; entries expire after ``cache_ttl``. Redis being slow or down never fails an
answer: the tier steps aside for a while and answers are computed as without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import uuid
import threading
import time
from pathlib import Path

from bot.answer.retrieval import Hit
from bot.config import Settings
from bot.index.build import LoadedIndex
from bot.models import Answer

logger = logging.getLogger(__name__)

# Settings that say where things are or who may call, not what an answer is.
_NOT_ANSWER_SETTINGS = {"corpus_dir", "index_dir", "prompts_dir", "database_url", "milvus_uri", "milvus_token", "api_key",
                        "admin_key", "llm_api_key", "cache_url", "log_level", "cors_origins", "max_wait_s", "answer_threads",
                        "body_timeout", "reload_interval", "question_log", "log_retention_days", "embed_threads", "max_unzipped_bytes",
                        "build_missing_index", "max_header_bytes", "max_headers", "metrics_public", "feedback_rate", "db_timeout",
                        "feedback_grace", "claim_timeout", "claim_poll_s"}
_RETRY_AFTER_S = 10.0


class SharedAnswers:
    """The shared tier of ``bot.answer.cache.AnswerCache`` for one loaded build: keys, entries and
    stepping aside; a subclass stores the raw entries (``_read``, ``_write``, ``_remove``)."""

    def __init__(self, settings: Settings, index: LoadedIndex, models: str = "") -> None:
        """``models``: the calibrated models deciding answers (serialised), part of the key with the
        build and the settings, so that re-calibrated replicas never serve the old models' answers."""
        config = settings.model_dump_json(exclude=_NOT_ANSWER_SETTINGS) + models
        self._prefix = f"policybot:answer:{index.path.name}:{hashlib.sha256(config.encode()).hexdigest()[:12]}:"
        self._ttl, self._clauses, self._positions = int(settings.cache_ttl), index.clauses, index.clause_positions
        self._down_until = 0.0
        self._claim_s = settings.claim_timeout
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this process's claims

    errors: tuple[type[Exception], ...] = ()  # the store's own errors: step aside, never fail an answer

    def _read(self, key: str) -> bytes | str | None:
        raise NotImplementedError

    def _write(self, key: str, value: str) -> None:
        raise NotImplementedError

    def _remove(self, key: str) -> None:
        raise NotImplementedError

    def _take(self, key: str) -> bytes | str | bool:
        """The entry, or whether the key is now claimed by this process (False: by another, still live)."""
        raise NotImplementedError

    def _peek(self, keys: list[str]) -> dict[str, bytes | str | bool]:
        """Per key with an entry, the entry; per key with a live claim and no entry, True."""
        raise NotImplementedError

    def _drop(self, key: str) -> None:
        """This process's claim on the key given up (another's is left alone)."""
        raise NotImplementedError

    def _key(self, key: tuple) -> str:
        question, top_k, docs = key
        raw = json.dumps([question, top_k, sorted(docs) if docs is not None else None], ensure_ascii=False)
        return self._prefix + hashlib.sha256(raw.encode()).hexdigest()

    def _step_aside(self, exc: Exception) -> None:
        logger.warning("shared answer cache unavailable (%s); answering without it for %.0f s", type(exc).__name__, _RETRY_AFTER_S)
        self._down_until = time.monotonic() + _RETRY_AFTER_S

    def _guarded(self, default, op, *args):
        """``op(*args)`` on the store; ``default`` while it is stepped aside, or when it fails (it then steps aside)."""
        if time.monotonic() < self._down_until:
            return default
        try:
            return op(*args)
        except self.errors as exc:
            self._step_aside(exc)
            return default

    def get(self, key: tuple) -> tuple[Answer, list[Hit]] | None:
        raw = self._guarded(None, self._read, self._key(key))
        return None if raw is None else self._read_entry(key, raw)

    def _read_entry(self, key: tuple, raw: bytes | str) -> tuple[Answer, list[Hit]] | None:
        try:
            return self._parse(raw)
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # ValidationError and JSONDecodeError are ValueErrors
            logger.warning("shared answer cache: unreadable entry (%s) deleted; answering without it", type(exc).__name__)
            self._delete(key)
            return None

    def take(self, key: tuple) -> tuple[Answer, list[Hit]] | bool:
        """The answer when the store has it; True when the question is now this process's to work out
        (also when the store is down or its entry unreadable); False when another process has a live claim."""
        raw = self._guarded(True, self._take, self._key(key))
        if isinstance(raw, bool):
            return raw
        value = self._read_entry(key, raw)
        return True if value is None else value

    def peek(self, keys: list[tuple]) -> dict[tuple, tuple[Answer, list[Hit]] | bool]:
        """In one look-up, per key: its answer, or True while another process's claim on it is live;
        keys with neither are left out (the store down: all of them)."""
        names = {self._key(key): key for key in keys}
        raws = self._guarded({}, self._peek, list(names))
        found: dict[tuple, tuple[Answer, list[Hit]] | bool] = {}
        for name, raw in raws.items():
            value = raw if raw is True else self._read_entry(names[name], raw)
            if value is not None:
                found[names[name]] = value
        return found

    def drop(self, key: tuple) -> None:
        """Give this process's claim on ``key`` up, so that a waiting process takes it over at once."""
        self._guarded(None, self._drop, self._key(key))

    def _parse(self, raw: bytes | str) -> tuple[Answer, list[Hit]]:
        """An entry as ``set`` wrote it; anything else raises."""
        data = json.loads(raw)
        hits = [Hit(self._clauses[self._positions[cid]], *scores) for cid, *scores in data["hits"] if cid in self._positions]
        return Answer.model_validate(data["answer"]), hits

    def _delete(self, key: tuple) -> None:
        self._guarded(None, self._remove, self._key(key))

    def set(self, key: tuple, value: tuple[Answer, list[Hit]]) -> None:
        if time.monotonic() < self._down_until:
            return
        answer, hits = value
        data = {"answer": answer.model_dump(mode="json"),
                "hits": [[h.clause.id, h.score, h.bm25_rank, h.bm25_score, h.dense_rank, h.dense_score] for h in hits]}
        self._guarded(None, self._write, self._key(key), json.dumps(data, ensure_ascii=False))


class RedisAnswers(SharedAnswers):
    """Answers shared through Redis by every worker and replica; entries expire after ``cache_ttl``."""

    def __init__(self, settings: Settings, index: LoadedIndex, models: str = "") -> None:
        import redis

        super().__init__(settings, index, models)
        self._redis = redis.Redis.from_url(settings.cache_url, socket_timeout=0.25, socket_connect_timeout=0.25)
        self.errors = (redis.RedisError,)

    def _read(self, key: str) -> bytes | None:
        return self._redis.get(key)

    def _write(self, key: str, value: str) -> None:
        self._redis.set(key, value, ex=self._ttl)

    def _remove(self, key: str) -> None:
        self._redis.delete(key)

    def _take(self, key: str) -> bytes | bool:
        raw = self._redis.get(key)
        if raw is not None:
            return raw
        claim, ms = key + ":claim", max(1, int(self._claim_s * 1000))
        if self._redis.set(claim, self._owner, nx=True, px=ms):
            return True
        return self._redis.get(claim) == self._owner.encode()

    def _peek(self, keys: list[str]) -> dict[str, bytes | bool]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.mget(keys)
        pipe.mget([key + ":claim" for key in keys])
        values, claims = pipe.execute()
        return {key: value if value is not None else True
                for key, value, claim in zip(keys, values, claims) if value is not None or claim is not None}

    def _drop(self, key: str) -> None:
        if self._redis.get(key + ":claim") == self._owner.encode():
            self._redis.delete(key + ":claim")


class SqliteAnswers(SharedAnswers):
    """Answers shared through one SQLite file by the workers of one machine (WAL: readers never wait
    for the writer). One connection per process behind a lock: each call takes microseconds."""

    errors = (sqlite3.Error,)
    _PURGE_EVERY = 1000  # writes between deletions of expired entries

    def __init__(self, settings: Settings, index: LoadedIndex, models: str = "") -> None:
        super().__init__(settings, index, models)
        path = Path(settings.cache_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock, self._writes = threading.Lock(), 0
        self._db = sqlite3.connect(path, timeout=settings.db_timeout, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: no disk flush per write (WAL stays consistent)
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)")
        except sqlite3.Error as exc:  # e.g. not a database: this process answers without the tier
            logger.warning("shared answer file %s unusable (%s); each worker caches its own answers", path, type(exc).__name__)
            self._down_until = float("inf")

    def _read(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
        return row[0] if row else None

    def _write(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", (key, value, time.time() + self._ttl))
            self._writes += 1
            if self._writes % self._PURGE_EVERY == 0:
                self._db.execute("DELETE FROM answers WHERE expires <= ?", (time.time(),))
                self._db.execute("DELETE FROM claims WHERE expires <= ?", (time.time(),))

    def _remove(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM answers WHERE key = ?", (key,))

    def _take(self, key: str) -> str | bool:
        now = time.time()
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ? AND expires > ?", (key, now)).fetchone()
            if row:
                return row[0]
            # A claim is left in place when its answer is written (it expires): a worker that missed the
            # answer a moment before it was written then waits for it instead of working it out again.
            taken = self._db.execute("INSERT INTO claims VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, "
                                     "expires = excluded.expires WHERE claims.expires <= ? OR claims.owner = excluded.owner",
                                     (key, self._owner, now + self._claim_s, now))
            return taken.rowcount == 1

    _BATCH = 500  # keys per statement (SQLite's bound on parameters is 999 in old builds)

    def _peek(self, keys: list[str]) -> dict[str, str | bool]:
        found: dict[str, str | bool] = {}
        now = time.time()
        with self._lock:
            for start in range(0, len(keys), self._BATCH):
                batch = keys[start:start + self._BATCH]
                marks = ",".join("?" * len(batch))
                for (key,) in self._db.execute(f"SELECT key FROM claims WHERE key IN ({marks}) AND expires > ?", (*batch, now)):
                    found[key] = True
                for key, value in self._db.execute(f"SELECT key, value FROM answers WHERE key IN ({marks}) AND expires > ?",
                                                   (*batch, now)):
                    found[key] = value
        return found

    def _drop(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self._owner))


def shared_answers(settings: Settings, index: LoadedIndex, models: str = "") -> SharedAnswers:
    """The shared tier ``settings.cache_url`` names: ``sqlite:///path`` or a Redis URL."""
    if settings.cache_url.startswith("sqlite:///"):
        return SqliteAnswers(settings, index, models)
    return RedisAnswers(settings, index, models)
