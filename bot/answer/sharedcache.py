"""Answers shared through Redis (``POLICYBOT_CACHE_URL``) by every worker and replica serving the
same build: a question answered anywhere is a look-up everywhere else.

Keys carry the build id and a hash of the settings, so a new build or other answer settings never
see old answers; entries expire after ``cache_ttl``. Redis being slow or down never fails an
answer: the tier steps aside for a while and answers are computed as without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from bot.answer.retrieval import Hit
from bot.config import Settings
from bot.index.build import LoadedIndex
from bot.models import Answer

logger = logging.getLogger(__name__)

# Settings that say where things are or who may call, not what an answer is.
_NOT_ANSWER_SETTINGS = {"corpus_dir", "index_dir", "prompts_dir", "database_url", "milvus_uri", "milvus_token", "api_key",
                        "admin_key", "llm_api_key", "cache_url", "log_level", "cors_origins", "max_wait_s", "body_timeout",
                        "reload_interval", "question_log", "log_retention_days", "embed_threads", "max_unzipped_bytes",
                        "build_missing_index", "max_header_bytes", "max_headers", "metrics_public", "feedback_rate", "db_timeout",
                        "feedback_grace"}
_RETRY_AFTER_S = 10.0


class RedisAnswers:
    """The shared tier of ``bot.answer.cache.AnswerCache`` for one loaded build."""

    def __init__(self, settings: Settings, index: LoadedIndex, models: str = "") -> None:
        """``models``: the calibrated models deciding answers (serialised), part of the key with the
        build and the settings, so that re-calibrated replicas never serve the old models' answers."""
        import redis

        self._redis = redis.Redis.from_url(settings.cache_url, socket_timeout=0.25, socket_connect_timeout=0.25)
        self._errors = redis.RedisError
        config = settings.model_dump_json(exclude=_NOT_ANSWER_SETTINGS) + models
        self._prefix = f"policybot:answer:{index.path.name}:{hashlib.sha256(config.encode()).hexdigest()[:12]}:"
        self._ttl, self._clauses, self._positions = int(settings.cache_ttl), index.clauses, index.clause_positions
        self._down_until = 0.0

    def _key(self, key: tuple) -> str:
        question, top_k, docs = key
        raw = json.dumps([question, top_k, sorted(docs) if docs is not None else None], ensure_ascii=False)
        return self._prefix + hashlib.sha256(raw.encode()).hexdigest()

    def _step_aside(self, exc: Exception) -> None:
        logger.warning("shared answer cache unavailable (%s); answering without it for %.0f s", type(exc).__name__, _RETRY_AFTER_S)
        self._down_until = time.monotonic() + _RETRY_AFTER_S

    def get(self, key: tuple) -> tuple[Answer, list[Hit]] | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            raw = self._redis.get(self._key(key))
        except self._errors as exc:
            self._step_aside(exc)
            return None
        if raw is None:
            return None
        try:
            return self._parse(raw)
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # ValidationError and JSONDecodeError are ValueErrors
            logger.warning("shared answer cache: unreadable entry (%s) deleted; answering without it", type(exc).__name__)
            self._delete(key)
            return None

    def _parse(self, raw: bytes) -> tuple[Answer, list[Hit]]:
        """An entry as ``set`` wrote it; anything else raises."""
        data = json.loads(raw)
        hits = [Hit(self._clauses[self._positions[cid]], *scores) for cid, *scores in data["hits"] if cid in self._positions]
        return Answer.model_validate(data["answer"]), hits

    def _delete(self, key: tuple) -> None:
        try:
            self._redis.delete(self._key(key))
        except self._errors as exc:
            self._step_aside(exc)

    def set(self, key: tuple, value: tuple[Answer, list[Hit]]) -> None:
        if time.monotonic() < self._down_until:
            return
        answer, hits = value
        data = {"answer": answer.model_dump(mode="json"),
                "hits": [[h.clause.id, h.score, h.bm25_rank, h.bm25_score, h.dense_rank, h.dense_score] for h in hits]}
        try:
            self._redis.set(self._key(key), json.dumps(data, ensure_ascii=False), ex=self._ttl)
        except self._errors as exc:
            self._step_aside(exc)
