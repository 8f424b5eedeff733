"""How the two indexes are searched: the interface retrieval sees (``SearchBackend``) and the
default engine, bm25s + FAISS in the build folder (``LocalBackend``); ``bot.index.milvus`` is the other
engine, and ``bot.index.build`` picks one by the settings, so a deployment changes engines by a
setting, not by code.

Both backends answer in clause positions (the order of ``clauses.jsonl``) with their own scores,
which the fusion and the refusal model read.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import bm25s
import faiss
import numpy as np
from llama_index.core.schema import TextNode
from llama_index.vector_stores.faiss import FaissVectorStore

from bot.config import Settings
from bot.index.clausestore import column
from bot.models import Clause

Ranked = list[tuple[int, float]]
# The vectors (flat codes) of a FAISS index read as pages of its file, not copied into the process.
FAISS_MMAP = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY


class SearchBackend(Protocol):
    """The lexical and dense searches retrieval needs; ``docs`` limits both to those documents."""

    def lexical(self, tokens: list[str], k: int, docs: frozenset[str] | None = None) -> Ranked: ...

    def dense(self, vector: list[float], k: int, docs: frozenset[str] | None = None) -> Ranked: ...

    def size(self) -> int: ...


class IndexDamaged(ValueError):
    """A build whose files or collection do not match its manifest; the message says what and how to repair."""


def write_local(settings: Settings, folder: Path, clauses: list[Clause], vectors: np.ndarray, tokens: list[list[str]]) -> dict:
    """bm25s and a FAISS index (``empty_faiss``) as files of the build."""
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    bm25.save(str(folder / "bm25"), show_progress=False)
    store = FaissVectorStore(faiss_index=empty_faiss(settings, vectors.shape[1], len(clauses)))
    store.add([TextNode(id_=c.id, text=c.text, embedding=v.tolist()) for c, v in zip(clauses, vectors)])
    store.persist(str(folder / "dense.faiss"))
    return {}


def empty_faiss(settings: Settings, dim: int, rows: int):
    """A FAISS index for ``rows`` normalised vectors: flat (exact inner product) up to
    ``faiss_flat_max`` rows, HNSW (approximate, sub-linear) above."""
    if rows > settings.faiss_flat_max:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        return index
    return faiss.IndexFlatIP(dim)


def document_mask(doc_ids: np.ndarray, docs: frozenset[str] | None) -> np.ndarray | None:
    """Which clause positions belong to ``docs`` (None: all), computed without a Python loop."""
    return None if docs is None else np.isin(doc_ids, list(docs))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of every positive score at or above the k-th best (ties included), in position order.

    Common words give most clauses of a large corpus some score, so neither partitioning nor listing
    all of them is cheap. A clause in the top k scores at least the k-th best; whenever k clauses
    reach half (a quarter) of the best score, the k-th best does too, and only those are looked at.
    """
    best = float(scores.max(initial=0.0))
    for floor in (best / 2, best / 4, 0.0):
        top = np.flatnonzero(scores >= max(floor, 1e-12))
        if len(top) >= k:
            break
    if len(top) > k:
        found = scores[top]
        top = top[found >= np.partition(found, len(top) - k)[len(top) - k]]
    return top


def faiss_search(index, vectors, query: np.ndarray, k: int, allowed: np.ndarray | None, exact_max: int,
                 hnsw: bool, ef: int) -> Ranked:
    """The ``k`` rows of a FAISS ``index`` nearest ``query`` (inner product), only ``allowed`` ones
    when a mask is given; ``vectors``: the index's flat storage (the index itself when flat)."""
    selector = None
    if allowed is not None:
        ids = np.flatnonzero(allowed)
        if len(ids) <= exact_max:
            # A filter that leaves few rows: score exactly those, best first, ties by position.
            scores = vectors.reconstruct_batch(ids) @ query
            order = np.lexsort((ids, -scores))[:k]
            return [(int(ids[i]), float(scores[i])) for i in order]
        selector = faiss.IDSelectorBatch(ids)
    if hnsw:
        params = faiss.SearchParametersHNSW(efSearch=max(ef, k), sel=selector)
    else:
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
    scores, found = index.search(query[None, :], k, params=params)
    return [(int(i), float(s)) for i, s in zip(found[0], scores[0]) if i >= 0]


class LocalBackend:
    """bm25s and FAISS opened from the build folder memory-mapped: the score matrix and the vectors
    are pages of the files, shared by every worker of the machine through the page cache."""

    def __init__(self, folder: Path, clauses: Sequence[Clause], settings: Settings) -> None:
        self.bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=True)
        self.vector_store = FaissVectorStore(faiss_index=faiss.read_index(str(folder / "dense.faiss"), FAISS_MMAP))
        self._index = self.vector_store.client
        self._hnsw = isinstance(self._index, faiss.IndexHNSW)
        self._vectors = faiss.downcast_index(self._index.storage) if self._hnsw else self._index
        self._ef, self._exact_max = settings.hnsw_ef, settings.faiss_flat_max
        self._vocab = self.bm25.vocab_dict
        self._doc_ids = np.array(column(clauses, "doc_id"))
        # One mask per document set, not one per search: both searches of a question share it.
        self._mask = functools.lru_cache(maxsize=64)(functools.partial(document_mask, self._doc_ids))

    def lexical(self, tokens: list[str], k: int, docs: frozenset[str] | None = None) -> Ranked:
        known = [t for t in tokens if t in self._vocab]
        if not known:
            return []
        scores = np.asarray(self.bm25.get_scores(known), dtype=np.float32)
        allowed = self._mask(docs)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        top = top_k(scores, k)
        order = top[np.lexsort((top, -scores[top]))][:k]
        return [(int(i), float(scores[i])) for i in order]

    def dense(self, vector: list[float], k: int, docs: frozenset[str] | None = None) -> Ranked:
        return faiss_search(self._index, self._vectors, np.asarray(vector, dtype=np.float32), k, self._mask(docs),
                            self._exact_max, self._hnsw, self._ef)

    def size(self) -> int:
        return int(self._index.ntotal)
