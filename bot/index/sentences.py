"""The sentence index: every clause's sentences embedded on their own, searched beside the clauses.

A worker's ask usually matches one sentence of a clause (the allowance sentence of an article of
five duties), and the clause's single vector averages that sentence away. Scoring a clause by its
best sentence finds it: on the shared train questions, 8 of the 12 answering clauses that no other
search put among the candidates were in the sentence search's top 10.

Stored in the build folder whichever engine holds the clauses: a FAISS index (flat, HNSW above
``faiss_flat_max`` sentences) and ``offsets`` (clause ``i``'s sentences are rows
``offsets[i]:offsets[i + 1]``), both memory-mapped, so workers share their pages.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from bot.config import Settings
from bot.index.backends import FAISS_MMAP, Ranked, document_mask, empty_faiss, faiss_search
from bot.index.clausestore import column
from bot.models import Clause
from bot.text import sentence_spans

INDEX_FILE, OFFSETS_FILE = "sentences.faiss", "sentence_offsets.npy"


def clause_sentences(clause: Clause, min_chars: int) -> list[str]:
    """The sentences of ``clause`` worth a vector of their own (at least ``min_chars`` characters);
    the whole text when none is."""
    text = clause.text
    found = [text[s:e] for s, e in sentence_spans(text) if e - s >= min_chars]
    return found or [text]


def write_sentences(settings: Settings, folder: Path, vectors: np.ndarray, counts: Sequence[int]) -> None:
    """The sentence index of a build: ``vectors`` of every clause's sentences in clause order,
    ``counts[i]`` of them for clause ``i``."""
    index = empty_faiss(settings, vectors.shape[1], len(vectors))
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(folder / INDEX_FILE))
    np.save(folder / OFFSETS_FILE, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))


class SentenceIndex:
    """Clauses scored by their best sentence against one or more query vectors (a question's views).

    ``offsets``: clause ``i``'s sentences are rows ``offsets[i]:offsets[i + 1]`` of ``vectors`` (FAISS storage).
    """

    PER_CLAUSE = 4  # sentences fetched per clause wanted: a clause's sentences often crowd the top together

    def __init__(self, folder: Path, clauses: Sequence[Clause], settings: Settings) -> None:
        self._index = faiss.read_index(str(folder / INDEX_FILE), FAISS_MMAP)
        self._hnsw = isinstance(self._index, faiss.IndexHNSW)
        self.vectors = faiss.downcast_index(self._index.storage) if self._hnsw else self._index
        self.offsets = np.load(folder / OFFSETS_FILE, mmap_mode="r")
        self._ef, self._exact_max = settings.hnsw_ef, settings.faiss_flat_max
        self._doc_ids, self._counts = np.array(column(clauses, "doc_id")), np.diff(self.offsets)
        self._mask = functools.lru_cache(maxsize=64)(self._sentence_mask)

    def size(self) -> int:
        return int(self._index.ntotal)

    def _sentence_mask(self, docs: frozenset[str] | None) -> np.ndarray | None:
        """Which sentences belong to ``docs`` (None: all): each clause's flag, once per sentence."""
        clauses = document_mask(self._doc_ids, docs)
        return None if clauses is None else np.repeat(clauses, self._counts)

    def search(self, queries: np.ndarray, k: int, docs: frozenset[str] | None = None) -> Ranked:
        """The ``k`` clauses whose best sentence is closest to any of ``queries`` (rows), best first."""
        best: dict[int, float] = {}
        for query in queries:
            for sentence, score in faiss_search(self._index, self.vectors, query, self.PER_CLAUSE * k, self._mask(docs),
                                                self._exact_max, self._hnsw, self._ef):
                clause = int(np.searchsorted(self.offsets, sentence, side="right")) - 1
                best[clause] = max(score, best.get(clause, -1.0))
        return sorted(best.items(), key=lambda cs: (-cs[1], cs[0]))[:k]

    def similarity(self, queries: np.ndarray, positions: Sequence[int]) -> np.ndarray:
        """For each query (row) and each clause position, the cosine of the clause's best sentence."""
        if not len(positions):
            return np.zeros((len(queries), 0), dtype=np.float32)
        starts = np.asarray(self.offsets[positions])
        counts = np.asarray(self.offsets[np.asarray(positions) + 1]) - starts
        rows = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, counts)])
        scores = queries @ self.vectors.reconstruct_batch(rows).T
        return np.maximum.reduceat(scores, np.concatenate([[0], np.cumsum(counts)[:-1]]), axis=1)
