"""Labelled questions as evidence: the clauses that answered questions like this one.

A worker's paraphrase ("被她男人打了") is often closer to another worker's paraphrase of the same
need than to the clause's official wording, and the labelled questions the project holds (its dev
splits, and questions labelled from the log with ``policy-bot labels export``) say which clause
answered each. The memory keeps those questions' embeddings and answering clause ids; a new
question's nearest labelled questions vote for their clauses, with the cosine of the closest as
the vote's strength. It is a retriever and a ranking signal, not an answer: the learned ranker
weighs it beside the searches (``bot.answer.rerank``), fitted with each question's own set left
out of the memory, as a question nobody labelled meets it.

``benchmarks/calibrate.py`` writes it (``bot/data/memory.npz``, one per embedder, like the other
fitted files); serving needs numpy only.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.answer.calibrated import shipped_bytes
from bot.index.clausestore import column, positions_of
from bot.models import Clause
from bot.text import normalize

logger = logging.getLogger(__name__)

FILENAME = "memory.npz"


class QuestionMemoryError(ValueError):
    """A memory file that ``QuestionMemory.save`` did not write, or one whose parts disagree."""


@dataclass
class QuestionMemory:
    """Labelled questions: ``vectors[i]`` (unit length, as the embedder gives a question) was
    answered by the clauses ``clauses[i]`` (empty: the documents do not answer it).

    Attributes:
        sources: where each question was labelled (a gold file's name), so a set can be left out.
        embedder: the embedder the vectors are from (a memory never serves another's questions).
        clause_hashes: each clause id's text as it was labelled (``clause_hash``), so that a rebuilt
            index is checked against it (``bound``).
    """

    questions: list[str]
    clauses: list[tuple[str, ...]]
    sources: list[str]
    vectors: np.ndarray
    embedder: str
    clause_hashes: dict[str, str]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.clauses)
        if (self.vectors.ndim != 2 or len(self.vectors) != n or len(self.questions) != n or len(self.sources) != n
                or not np.isfinite(self.vectors).all()
                or not all(isinstance(c, str) and c in self.clause_hashes for cs in self.clauses for c in cs)):
            raise QuestionMemoryError("malformed question memory (rows, vectors and clause ids disagree): "
                                      "rerun benchmarks/calibrate.py")
        # Derived once, not per question: which rows were answered, and in which documents.
        self._answerable = np.array([bool(c) for c in self.clauses], dtype=bool)
        self._documents = [frozenset(map(_document, c)) for c in self.clauses]

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def fingerprint(self) -> str:
        """Names this memory (answers shared between workers are keyed by what made them)."""
        return hashlib.sha256(self.vectors.tobytes() + json.dumps(self.clauses).encode()).hexdigest()

    def without(self, source: str, near: np.ndarray | None = None, copies: float = 0.99) -> QuestionMemory:
        """The memory less the questions labelled in ``source`` and, with ``near`` (a question's
        vector), less any question that close to it (cosine ≥ ``copies``: the same question in
        another set). Calibration: a question meets only the others, as a new question would."""
        keep = [i for i, s in enumerate(self.sources) if s != source]
        if near is not None and keep:
            keep = [i for i, sim in zip(keep, self.vectors[keep] @ np.asarray(near, dtype=np.float32)) if sim < copies]
        return self._rows(keep, [self.clauses[i] for i in keep], self.clause_hashes)

    def _rows(self, keep: list[int], clauses: list[tuple[str, ...]], hashes: dict[str, str]) -> QuestionMemory:
        """The memory of rows ``keep``, answered by ``clauses`` (one per kept row)."""
        named = {c for cs in clauses for c in cs}
        return QuestionMemory([self.questions[i] for i in keep], clauses, [self.sources[i] for i in keep],
                              self.vectors[keep].reshape(len(keep), self.dimension), self.embedder,
                              {c: h for c, h in hashes.items() if c in named}, self.meta)

    def bound(self, clauses: Sequence[Clause]) -> QuestionMemory:
        """This memory with its clause ids as the loaded index ``clauses`` names them. A clause id
        that still holds the text it was labelled with stays; one whose text the index now holds
        under another id (a rebuilt index, a renumbered clause) moves there; a clause whose text is
        gone (the document changed) no longer votes, and a question left with no clause is dropped
        (not turned into an unanswerable one). Anything but the first case is logged: rerun
        ``benchmarks/calibrate.py``."""
        positions = positions_of(clauses)
        stale = [c for c, h in self.clause_hashes.items()
                 if (i := positions.get(c)) is None or clause_hash(clauses[i].text) != h]
        if not stale:
            return self
        by_hash = {clause_hash(text): c for c, text in zip(column(clauses, "id"), column(clauses, "text"))}
        now = {c: by_hash.get(self.clause_hashes[c]) for c in stale}  # None: its text is gone
        renamed = [tuple(dict.fromkeys(n for c in cs if (n := now.get(c, c)) is not None)) for cs in self.clauses]
        keep = [i for i, (old, new) in enumerate(zip(self.clauses, renamed)) if new or not old]
        hashes = {n: h for c, h in self.clause_hashes.items() if (n := now.get(c, c)) is not None}
        gone = sum(n is None for n in now.values())
        logger.warning("question memory: %d of its %d clauses are not where it was labelled (%d found under another id, "
                       "%d gone; %d questions dropped): rerun benchmarks/calibrate.py",
                       len(stale), len(self.clause_hashes), len(stale) - gone, gone, len(self.clauses) - len(keep))
        return self._rows(keep, [renamed[i] for i in keep], hashes)

    def recall(self, views: np.ndarray, neighbours: int,
               docs: frozenset[str] | None = None) -> tuple[list[tuple[str, float]], float]:
        """Clause ids voted for by the ``neighbours`` labelled answerable questions closest to any of
        ``views`` (a question's embeddings, one per row), each with its closest voter's cosine, best
        first (only clauses of ``docs`` when given); and how much closer the closest labelled question
        the documents do not answer is than the closest answered one (0.0 without both kinds)."""
        if not len(self.clauses) or not len(views):
            return [], 0.0
        sims = (np.asarray(views, dtype=np.float32) @ self.vectors.T).max(axis=0)
        answerable = self._answerable
        margin = float(sims[~answerable].max() - sims[answerable].max()) if 0 < answerable.sum() < len(sims) else 0.0
        # Only questions answered in ``docs`` vote (masked before the nearest are taken, so that
        # questions about other documents do not use up the votes).
        sims[~answerable] = -np.inf
        if docs is not None:
            sims[[not (d & docs) for d in self._documents]] = -np.inf
        best: dict[str, float] = {}
        for i in np.argsort(-sims)[:neighbours]:
            if sims[i] == -np.inf:
                break
            for clause_id in self.clauses[i]:
                if docs is None or _document(clause_id) in docs:
                    best.setdefault(clause_id, float(sims[i]))
        return sorted(best.items(), key=lambda kv: -kv[1]), margin

    def save(self, path: Path) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, vectors=self.vectors.astype(np.float32), embedder=np.array(self.embedder),
                            rows=np.array(json.dumps({"questions": self.questions, "clauses": self.clauses,
                                                      "sources": self.sources, "clause_hashes": self.clause_hashes,
                                                      "meta": self.meta}, ensure_ascii=False)))
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def read(cls, raw: bytes) -> QuestionMemory:
        """The memory ``save`` wrote; ``QuestionMemoryError`` for anything else (pickles are never loaded)."""
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                rows = json.loads(str(data["rows"]))
                return cls(rows["questions"], [tuple(c) for c in rows["clauses"]], rows["sources"],
                           np.asarray(data["vectors"], dtype=np.float32), str(data["embedder"]), rows["clause_hashes"],
                           rows["meta"])
        except QuestionMemoryError:
            raise
        except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as exc:  # JSONDecodeError is a ValueError
            raise QuestionMemoryError(f"not a question memory ({exc}): rerun benchmarks/calibrate.py") from exc


def clause_hash(text: str) -> str:
    """What a memory keeps of a clause's text: enough to tell whether an id still names that text."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()[:16]


def _document(clause_id: str) -> str:
    """The document a clause id names (``doc:ref``)."""
    return clause_id.split(":", 1)[0]


def load_memory(path: Path | None, embedder: str, dimension: int, folder: tuple[str, ...] = ("data",)) -> QuestionMemory | None:
    """The memory at ``path``, or the one shipped under the package's ``folder``; None when there is
    none, or when its vectors are another embedder's or dimension's."""
    raw = shipped_bytes(path, folder, FILENAME)
    if raw is None:
        return None
    memory = QuestionMemory.read(raw)
    if memory.embedder != embedder or memory.dimension != dimension:
        logger.warning("question memory built with %s (%d-d), not %s (%d-d): not used",
                       memory.embedder, memory.dimension, embedder, dimension)
        return None
    return memory
