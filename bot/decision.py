"""The one decision path: retrieve -> re-rank -> choose clauses -> refuse or answer.

Serving, evaluation and calibration of the refusal model all call ``Decider.decide``, so the
refusal model is fitted on exactly the signals it sees in service.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.choices import decide as decide_choice
from bot.config import Settings
from bot.evidence import Evidence, Matcher
from bot.models import Clause
from bot.query import Query
from bot.refusal import RefusalModel
from bot.rerank import rerank
from bot.retrieval import Hit, HybridRetriever
from bot.selection import select
from bot.text import chinese_numeral, normalize


@dataclass
class Decision:
    """What the bot decided for one question.

    Attributes:
        evidence: the re-ranked candidates (best first, ``top_k`` of them).
        chosen: the clauses to quote (empty when refused).
        reason: why not found (machine-readable), or None.
        choice: for a multiple-choice question, the letter the cited text supports.
    """

    query: Query
    evidence: list[Evidence]
    chosen: list[Evidence]
    reason: str | None
    choice: str | None = None

    @property
    def hits(self) -> list[Hit]:
        return [e.hit for e in self.evidence]


class Decider:
    """Holds what deciding needs (retriever, matcher, refusal model) for one loaded index."""

    def __init__(self, settings: Settings, retriever: HybridRetriever, matcher: Matcher, refusal: RefusalModel,
                 clauses: list[Clause], threshold: float | None = None) -> None:
        self._s, self._retriever, self._matcher, self._refusal = settings, retriever, matcher, refusal
        self._threshold = threshold
        self._all_docs = frozenset(matcher.documents)
        self._articles: dict[tuple[str, int], list[Clause]] = {}
        for c in clauses:
            if c.kind == "article":
                self._articles.setdefault((c.doc_id, _article_number(c)), []).append(c)

    def decide(self, query: Query, top_k: int, docs: frozenset[str] | None) -> Decision:
        """Decide ``query`` over the documents ``docs`` (None: all)."""
        depth = max(top_k, self._s.rerank_depth)
        candidates = self._candidates(query, depth, docs)
        routed = self._matcher.routed_documents(query.text) & (docs or self._all_docs)
        if routed:  # the question names a document: make sure its best clauses are candidates
            _merge(candidates, self._retriever.search(query.topic, depth, docs=routed))
        if query.article:
            _merge(candidates, self._article_hits(query, routed))
        evidence = rerank(query, self._matcher.evidence(query, candidates), self._s, routed)[:top_k]
        chosen = select(query, evidence, self._matcher, self._s)
        letter = None
        if query.choice:
            letter, deciding = decide_choice(query.choice, evidence, self._matcher)
            if deciding is not None:
                chosen = [deciding] + [e for e in chosen if e is not deciding][:1]
        reason = self._refusal.reason(query, chosen, evidence, self._threshold)
        return Decision(query, evidence, [] if reason else chosen, reason, letter if not reason else None)

    def _candidates(self, query: Query, depth: int, docs: frozenset[str] | None) -> list[Hit]:
        hits = self._retriever.search(query.topic, depth, docs=docs)
        if query.choice:  # each option with the stem: the clause deciding it must be a candidate
            for option in query.choice.options.values():
                _merge(hits, self._retriever.search(f"{query.topic} {option}", depth, docs=docs, lexical_only=True))
        return hits

    def _article_hits(self, query: Query, routed: set[str]) -> list[Hit]:
        """The clauses of the article the question cites (《X》第N条), 款 in order."""
        _, number, paragraph = query.article
        out = []
        for doc in sorted(routed):
            clauses = self._articles.get((doc, number), [])
            if paragraph:
                clauses = [c for c in clauses if c.id.endswith(f".k{paragraph}")] or clauses
            out += [Hit(c, 1.0) for c in clauses]
        return out


def _merge(hits: list[Hit], more: list[Hit]) -> None:
    seen = {h.clause.id for h in hits}
    hits += [h for h in more if h.clause.id not in seen]


def _article_number(clause: Clause) -> int:
    label = normalize(clause.ref).split("条", 1)[0].removeprefix("第")
    try:
        return chinese_numeral(label)
    except KeyError:
        return -1
