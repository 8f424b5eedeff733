"""Retrievers over the loaded index: BM25 (jieba tokens), dense (embeddings) and their weighted
fusion; the searches themselves run in the index's backend (bm25s + FAISS, or Milvus).

All three are llama-index ``BaseRetriever`` s, so they plug into llama-index query engines; the
answer module uses ``HybridRetriever.search`` which also keeps each retriever's own rank and score
(llama-index's ``QueryFusionRetriever`` discards them, and its RRF mode ignores retriever weights;
refusal needs both, hence the small fusion below).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum

import numpy as np
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from bot.answer.adapter import QueryAdapter
from bot.answer.memory import QuestionMemory
from bot.index.build import LoadedIndex
from bot.index.tokenizer import ChineseTokenizer
from bot.models import Clause


class FusionMode(str, Enum):
    RRF = "rrf"  # weighted reciprocal rank fusion (Cormack et al. 2009)
    RELATIVE = "relative"  # weighted sum of min-max normalised scores (llama-index "relative_score")


class RetrievalMode(str, Enum):
    HYBRID = "hybrid"
    BM25 = "bm25"
    DENSE = "dense"


@dataclass
class Hit:
    """One retrieved clause with the evidence each retriever gave for it."""

    clause: Clause
    score: float
    bm25_rank: int | None = None
    bm25_score: float = 0.0
    dense_rank: int | None = None
    dense_score: float = 0.0
    ask_rank: int | None = None  # rank in the search of the ask alone (a question that tells a case first)
    sentence_rank: int | None = None  # rank in the sentence search of the question's views
    sentence_whole: float = 0.0  # cosine of the clause's best sentence to the whole question
    sentence_best: float = 0.0  # ... to the closest of the question's views
    memory_rank: int | None = None  # rank among the clauses of the closest labelled questions (``bot.answer.memory``)
    memory_sim: float = 0.0  # cosine of the closest labelled question this clause answered
    memory_margin: float = 0.0  # the closest unanswerable labelled question's cosine less the closest answered one's (per question)


def _node(clause: Clause, score: float) -> NodeWithScore:
    """A clause as llama-index's node, made for the few a llama-index caller retrieves (none is kept)."""
    return NodeWithScore(node=TextNode(id_=clause.id, text=clause.text, metadata={"doc_id": clause.doc_id, "section": clause.section}),
                         score=score)


class BM25Retriever(BaseRetriever):
    """BM25 over jieba search-mode tokens (with the thesaurus's official words), in the backend."""

    def __init__(self, index: LoadedIndex, tokenizer: ChineseTokenizer, top_k: int = 30) -> None:
        super().__init__()
        self._index, self._tokenizer, self._top_k = index, tokenizer, top_k
        # A question the lexical gate passes on to the hybrid search is searched by BM25 once.
        self._search = functools.lru_cache(maxsize=1024)(self._uncached)

    def ranked(self, query: str, top_k: int | None = None, docs: frozenset[str] | None = None) -> list[tuple[int, float]]:
        return list(self._search(query, top_k or self._top_k, docs))

    def _uncached(self, query: str, top_k: int, docs: frozenset[str] | None) -> tuple[tuple[int, float], ...]:
        tokens = self._tokenizer.tokens(self._tokenizer.expand(query))
        return tuple(self._index.backend.lexical(tokens, top_k, docs))

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(self._index.clauses[i], s) for i, s in self.ranked(query_bundle.query_str)]


class DenseRetriever(BaseRetriever):
    """Cosine similarity of normalised embeddings (inner product), in the backend.

    ``adapter``: a learned map of the question's embedding towards its clauses' (``bot.answer.adapter``);
    None: the raw embedding. ``memory``: labelled questions and their clauses (``bot.answer.memory``).
    Both apply after the embedding cache, so they can be swapped (calibration does, question by question)."""

    def __init__(self, index: LoadedIndex, embedder, top_k: int = 30, max_chars: int = 160,
                 adapter: QueryAdapter | None = None, memory: QuestionMemory | None = None) -> None:
        super().__init__()
        self._index, self._embedder, self._top_k, self._max_chars = index, embedder, top_k, max_chars
        self.adapter, self.memory = adapter, memory
        # A question searched twice (once more within the documents it names) is embedded once.
        self._embed = functools.lru_cache(maxsize=1024)(embedder.get_query_embedding)

    def ranked(self, query: str, top_k: int | None = None, docs: frozenset[str] | None = None) -> list[tuple[int, float]]:
        vec = self.embedding(query)
        if self.adapter is not None:
            vec = self.adapter.apply(vec)
        return self._index.backend.dense(vec, top_k or self._top_k, docs)

    def embedding(self, query: str) -> list[float]:
        """The embedding of ``query`` as the encoder gives it, before the adapter."""
        # The encoder's cost grows with the square of the length: only the head of a long question
        # is embedded (BM25 still sees all of it), so no question costs more than a short one much.
        return self._embed(query[: self._max_chars])

    def sentence_ranked(self, texts: list[str], top_k: int, docs: frozenset[str] | None = None) -> list[tuple[int, float]]:
        """Clause positions by their best sentence against any of ``texts`` (``bot.index.sentences``)."""
        return self._index.sentences.search(self._vectors(texts), top_k, docs)

    def sentence_similarity(self, texts: list[str], positions: list[int]) -> np.ndarray:
        """Cosine of each clause's best sentence (columns) to each of ``texts`` (rows)."""
        return self._index.sentences.similarity(self._vectors(texts), positions)

    def memory_ranked(self, texts: list[str], neighbours: int,
                      docs: frozenset[str] | None = None) -> tuple[list[tuple[str, float]], float]:
        """Clause ids the labelled questions closest to any of ``texts`` were answered by, with the
        closest one's cosine, best first; and how much closer the closest unanswerable one is than the
        closest answered one (``QuestionMemory.recall``; nothing without a memory)."""
        return self.memory.recall(self._vectors(texts), neighbours, docs) if self.memory is not None else ([], 0.0)

    def _vectors(self, texts: list[str]) -> np.ndarray:
        # Raw embeddings: the adapter maps questions towards whole clauses, not towards sentences.
        return np.array([self.embedding(t) for t in texts], dtype=np.float32)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(self._index.clauses[i], s) for i, s in self.ranked(query_bundle.query_str)]


class HybridRetriever(BaseRetriever):
    """Weighted fusion of BM25 and dense rankings.

    Args:
        weights: (bm25, dense), normalised once here to sum to 1.
        candidate_k: how deep each retriever's list goes into the fusion.
        mode: a ``FusionMode``; ``rrf_k`` is the RRF constant (60 in the paper).
    """

    def __init__(
        self,
        bm25: BM25Retriever,
        dense: DenseRetriever,
        weights: tuple[float, float] = (0.5, 0.5),
        candidate_k: int = 30,
        mode: FusionMode = FusionMode.RELATIVE,
        rrf_k: int = 60,
        top_k: int = 5,
        retrieval: RetrievalMode = RetrievalMode.HYBRID,
    ) -> None:
        super().__init__()
        total = sum(weights) or 1.0
        self._weights = (weights[0] / total, weights[1] / total)
        self._bm25, self._dense = bm25, dense
        self._candidate_k, self._mode, self._rrf_k, self._top_k = candidate_k, FusionMode(mode), rrf_k, top_k
        self._retrieval = RetrievalMode(retrieval)
        self._clauses, self._positions = bm25._index.clauses, bm25._index.clause_positions

    def search(self, query: str, top_k: int | None = None, docs: set[str] | None = None, lexical_only: bool = False) -> list[Hit]:
        """The ``top_k`` best clauses for ``query``, best first; only from ``docs`` when given.
        ``lexical_only`` skips the query embedding (for cheap extra look-ups such as one per option)."""
        top_k = top_k or self._top_k
        docs = None if docs is None else frozenset(docs)
        use_bm25 = self._retrieval in (RetrievalMode.HYBRID, RetrievalMode.BM25) or lexical_only
        use_dense = self._retrieval in (RetrievalMode.HYBRID, RetrievalMode.DENSE) and not lexical_only
        bm25 = self._bm25.ranked(query, self._candidate_k, docs) if use_bm25 else []
        dense = self._dense.ranked(query, self._candidate_k, docs) if use_dense else []
        hits: dict[int, Hit] = {}
        for rank, (i, s) in enumerate(bm25, 1):
            hits[i] = Hit(self._clauses[i], 0.0, bm25_rank=rank, bm25_score=s)
        for rank, (i, s) in enumerate(dense, 1):
            hit = hits.setdefault(i, Hit(self._clauses[i], 0.0))
            hit.dense_rank, hit.dense_score = rank, s
        w_bm25 = self._weights[0] if use_dense else 1.0
        w_dense = self._weights[1] if use_bm25 else 1.0
        if self._mode is FusionMode.RRF:
            for h in hits.values():
                h.score = sum(
                    w / (self._rrf_k + r) for w, r in ((w_bm25, h.bm25_rank), (w_dense, h.dense_rank)) if r is not None
                )
        else:
            b_norm = _minmax([s for _, s in bm25])
            d_norm = _minmax([s for _, s in dense])
            for h in hits.values():
                h.score = (w_bm25 * b_norm(h.bm25_score) if h.bm25_rank else 0.0) + (
                    w_dense * d_norm(h.dense_score) if h.dense_rank else 0.0
                )
        return sorted(hits.values(), key=lambda h: -h.score)[:top_k]

    @property
    def uses_dense(self) -> bool:
        return self._retrieval is not RetrievalMode.BM25

    def by_sentence(self, texts: list[str], top_k: int, docs: frozenset[str] | None = None) -> list[Hit]:
        """Clauses by their best sentence against any of ``texts`` (a question's views), best first."""
        return [Hit(self._clauses[i], 0.0, sentence_rank=rank)
                for rank, (i, _) in enumerate(self._dense.sentence_ranked(texts, top_k, docs), 1)]

    def by_memory(self, texts: list[str], neighbours: int, docs: frozenset[str] | None = None) -> tuple[list[Hit], float]:
        """Clauses that answered the labelled questions closest to any of ``texts``, best first, and
        how much closer the closest labelled question the documents do not answer is than the closest answered one."""
        voted, margin = self._dense.memory_ranked(texts, neighbours, docs)
        hits = [Hit(self._clauses[self._positions[cid]], 0.0, memory_rank=rank, memory_sim=sim)
                for rank, (cid, sim) in enumerate(((c, s) for c, s in voted if c in self._positions), 1)]
        return hits, margin

    def weigh_sentences(self, texts: list[str], hits: list[Hit]) -> None:
        """Set each hit's best-sentence cosines: to ``texts[0]`` (the whole question) and to any of ``texts``."""
        sims = self._dense.sentence_similarity(texts, [self._positions[h.clause.id] for h in hits])
        for h, whole, best in zip(hits, sims[0], sims.max(axis=0)):
            h.sentence_whole, h.sentence_best = float(whole), float(best)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(h.clause, h.score) for h in self.search(query_bundle.query_str)]


def _minmax(scores: list[float]):
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 0.0)
    return (lambda s: (s - lo) / (hi - lo)) if hi > lo else (lambda s: 1.0)
