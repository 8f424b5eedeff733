"""The one decision path: retrieve -> re-rank -> choose clauses -> refuse or answer.

Serving and evaluation call ``Decider.decide``; calibration calls ``Decider.consider``, the same
path short of the calibrated models, so the models are fitted on exactly the signals they see in
service (a kept refusal model on those of the ranker it was fitted with: ``benchmarks/calibrate.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.answer.calibrated import CalibratedModel, sigmoid
from bot.answer.choices import decide as decide_choice
from bot.answer.evidence import Evidence, Matcher, Weighing
from bot.answer.query import Query
from bot.answer.refusal import delegated, hard_reason, refusal_reason, signals, unfilled, warned
from bot.answer.rerank import rerank
from bot.answer.retrieval import Hit, HybridRetriever
from bot.answer.selection import select
from bot.config import Settings
from bot.corpus.chunking import referred
from bot.index.clausestore import of_document
from bot.models import Clause
from bot.text import chinese_numeral, normalize


@dataclass
class Decision:
    """What the bot decided for one question.

    Attributes:
        evidence: the re-ranked candidates (best first, ``top_k`` of them).
        chosen: the clauses to quote (empty when refused).
        reason: why not found (machine-readable), or None.
        choice: for a multiple-choice question, the letter the cited text supports.
        lexical: decided from BM25 alone (the lexical gate was confident; the question was never embedded).
    """

    query: Query
    evidence: list[Evidence]
    chosen: list[Evidence]
    reason: str | None
    choice: str | None = None
    lexical: bool = False

    @property
    def hits(self) -> list[Hit]:
        return [e.hit for e in self.evidence]


class Decider:
    """Holds what deciding needs (retriever, matcher, calibrated models) for one loaded index.

    Args:
        ranker: P(a candidate clause answers the question); candidates are ordered by it.
        refusal: P(the chosen clauses answer the question); below its threshold: ``low_confidence``.
        gate: P(BM25's answer is right without the dense search); None: always search both ways.
        threshold: overrides the refusal model's calibrated threshold.
    """

    def __init__(self, settings: Settings, retriever: HybridRetriever, matcher: Matcher, ranker: CalibratedModel,
                 refusal: CalibratedModel, clauses: Sequence[Clause], gate: CalibratedModel | None = None,
                 threshold: float | None = None) -> None:
        self._s, self._retriever, self._matcher, self.ranker = settings, retriever, matcher, ranker
        self._refusal, self._gate, self._threshold = refusal, gate, threshold
        self._all_docs = frozenset(matcher.documents)
        # A document's articles by number, worked out when a question first cites one of them.
        self._clauses = clauses
        self._articles = functools.lru_cache(maxsize=256)(self._articles_of)

    def decide(self, query: Query, top_k: int, docs: frozenset[str] | None) -> Decision:
        """Decide ``query`` over the documents ``docs`` (None: all).

        BM25 goes first: when the gate is confident in its answer and no warning signal fired, that
        answer stands and the question is never embedded (the embedding is most of an uncached
        answer's cost). Anything else (a refusal included) is decided again on the hybrid search, by
        the refusal model.
        """
        weighing = self._matcher.weigh(query)
        if self._gate is not None:
            quick = self.consider(query, top_k, docs, lexical_only=True, weighing=weighing)
            decided = query.choice is None or quick.choice is not None  # an undecided exam question gets both searches
            if quick.reason is None and decided:
                sig = signals(query, quick.chosen[0], quick.evidence)
                if not warned(sig) and self._gate.says_yes(sig):
                    return replace(quick, lexical=True)
        d = self.consider(query, top_k, docs, weighing=weighing)
        if d.reason is None and d.choice is None:  # an exam question whose option the text decides is answered
            sig = signals(query, d.chosen[0], d.evidence)
            if not self._refusal.says_yes(sig, self._threshold):
                # The ask names a place some candidates' documents do not govern (they were put last):
                # that, not the signal, is why nothing answers.
                reason = "other_place" if any(e.outside for e in d.evidence) else refusal_reason(sig)
                return replace(d, chosen=[], reason=reason, choice=None)
        return d

    def consider(self, query: Query, top_k: int, docs: frozenset[str] | None, lexical_only: bool = False,
                 weighing: Weighing | None = None) -> Decision:
        """The decision before the refusal model weighs in: only rules that cannot be wrong refuse.
        ``lexical_only``: from BM25 alone; ``weighing``: what another search of the question worked out already."""
        evidence, routed = self.candidates(query, top_k, docs, lexical_only, weighing)
        # A clause whose document does not govern the place asked about (郑州市 against 许昌's plan) comes
        # last and is never quoted beside one that does; if it is the best there is, ``hard_reason`` refuses.
        ranked = sorted(rerank(query, evidence, self.ranker, routed, self._s.primary_doc), key=lambda e: e.outside)
        _slot_filler_first(query, ranked, self._matcher, self._s.slot_filler_chance)
        evidence = ranked[:top_k]
        chosen = select(query, [e for e in evidence if not e.outside] or evidence, self._matcher, self._s, routed)
        if query.count > 1 and len(chosen) >= query.count and not chosen[0].lists:
            # "哪两项" answered by two items: the quote names as many things as asked, though its first
            # clause names one (a copy: the weighing keeps the clause's own evidence for the other search).
            first = chosen[0]
            chosen[0] = replace(first, lists=True)
            evidence = [chosen[0] if e is first else e for e in evidence]
        letter = None
        if query.choice:
            letter, deciding = decide_choice(query.choice, ranked, self._matcher, routed)
            if deciding is not None:
                chosen = [deciding] + [e for e in chosen if e is not deciding][:1]
        reason = hard_reason(query, chosen[0] if chosen else None)
        if reason is None and not query.choice and delegated(query, chosen[0]):
            return Decision(query, evidence, chosen[:1], "delegated")
        return Decision(query, evidence, [] if reason else chosen, reason, letter if not reason else None)

    def candidates(self, query: Query, top_k: int, docs: frozenset[str] | None, lexical_only: bool = False,
                   weighing: Weighing | None = None) -> tuple[list[Evidence], set[str]]:
        """Every candidate clause with its evidence, unranked, and the documents the question names
        (what the ranker is fitted on: ``benchmarks/calibrate.py``)."""
        depth = max(top_k, self._s.rerank_depth)
        weighing = weighing or self._matcher.weigh(query)
        whole, asks = self.view_texts(query)
        candidates = self._views(query, whole, asks, depth, docs, lexical_only)
        routed = weighing.routed & (docs or self._all_docs)
        if routed:  # the question names a document: make sure its best clauses are candidates
            _merge(candidates, self._retriever.search(query.topic, depth, docs=routed, lexical_only=lexical_only))
        if query.article:
            _merge(candidates, self._article_hits(query, routed))
        if not lexical_only and self._retriever.uses_dense:
            self._recall([whole, *asks], candidates, docs)
            self._retriever.weigh_sentences([whole, *asks], candidates)
        return weighing.evidence(candidates), routed

    def _recall(self, views: list[str], hits: list[Hit], docs: frozenset[str] | None) -> None:
        """Add to ``hits`` the clauses that answered the labelled questions most like ``views``
        (``memory_rank``, ``memory_sim``), and tell every hit how much closer the closest labelled
        question the documents do not answer is than the closest answered one (``memory_margin``)."""
        voted, margin = self._retriever.by_memory(views, self._s.memory_neighbours, docs)
        by_id = {h.clause.id: h for h in hits}
        for h in voted:
            mine = _adopt(hits, by_id, h)
            mine.memory_rank, mine.memory_sim = h.memory_rank, h.memory_sim
        for h in hits:
            h.memory_margin = margin

    def _views(self, query: Query, whole: str, asks: list[str], depth: int, docs: frozenset[str] | None,
               lexical_only: bool) -> list[Hit]:
        """The whole question's hits; when it tells a case first, the hits of the ask alone and of the
        ask with the case's rarest words (``ask_rank``: where the ask's searches put each); the clauses
        whose best sentence is closest to any of these views (``sentence_rank``). ``whole`` and ``asks``:
        the texts ``view_texts`` gives for ``query``."""
        hits = self._retriever.search(whole, depth, docs=docs, lexical_only=lexical_only)
        by_id = {h.clause.id: h for h in hits}
        if not asks:
            for rank, h in enumerate(hits, 1):
                h.ask_rank = rank
        for view in asks:
            for rank, h in enumerate(self._retriever.search(view, depth, docs=docs, lexical_only=lexical_only), 1):
                mine = _adopt(hits, by_id, h)
                mine.ask_rank = min(rank, mine.ask_rank or rank)
        if not lexical_only and self._retriever.uses_dense:  # a clause whose one sentence answers the ask
            for h in self._retriever.by_sentence([whole, *asks], depth, docs):
                _adopt(hits, by_id, h).sentence_rank = h.sentence_rank
        if query.choice:  # each option with the stem: the clause deciding it must be a candidate
            for option in query.choice.options.values():
                _merge(hits, self._retriever.search(f"{query.topic} {option}", depth, docs=docs, lexical_only=True))
        return hits

    def view_texts(self, query: Query) -> tuple[str, list[str]]:
        """What is searched for ``query``: the whole question (its topic), and when it tells a case
        first, the ask alone and the ask with the case's rarest words (calibration fits the query
        adapter on the same texts)."""
        if not query.situation:
            return query.topic, []
        salient = " ".join(w for w in self._matcher.salient(query.situation) if w not in query.ask)
        return query.topic, list(dict.fromkeys(v for v in (query.ask, f"{query.ask} {salient}".strip()) if v))

    def _article_hits(self, query: Query, routed: set[str]) -> list[Hit]:
        """The clauses of the article the question cites (《X》第N条), 款 in order."""
        _, number, paragraph = query.article
        out = []
        for doc in sorted(routed):
            clauses = self._articles(doc).get(number, [])
            if paragraph:
                clauses = [c for c in clauses if c.id.endswith(f".k{paragraph}")] or clauses
            out += [Hit(c, 1.0) for c in clauses]
        return out

    def _articles_of(self, doc: str) -> dict[int, list[Clause]]:
        articles: dict[int, list[Clause]] = {}
        for c in of_document(self._clauses, doc):
            if c.kind == "article":
                articles.setdefault(_article_number(c), []).append(c)
        return articles


def _slot_filler_first(query: Query, ranked: list[Evidence], matcher: Matcher, chance: float) -> None:
    """The ranker weighs the asked slot as one feature among many, so the article on the conduct
    asked about (第十条: 电动车…遮阳伞) can outrank the one that punishes it by number and states the
    asked fine (第三十五条: "违反本条例第十条第四项规定的，处以五十元罚款"). When the best leaves the slot
    unfilled, the first candidate the ranker finds nearly as likely that fills it and punishes *the
    part of the best the question is about* leads. Any filler would do more harm: a near-miss ("每个县
    要建多少家社区医院") would get another figure of the asked unit, "不戴头盔罚多少" the fine of 遮阳伞."""
    if not ranked or ranked[0].hit.clause.kind != "article" or not any(unfilled(query, ranked[0]).values()):
        return
    best = ranked[0]
    for i, ev in enumerate(ranked[1:], 1):
        if ev.outside or sigmoid(ev.rank_score - best.rank_score) < chance:
            break
        if _punishes(ev.hit.clause, best, matcher) and not any(unfilled(query, ev).values()):
            ranked.insert(0, ranked.pop(i))
            return


def _punishes(clause: Clause, best: Evidence, matcher: Matcher) -> bool:
    """Whether ``clause`` names by number a provision of ``best``'s article that speaks of the
    question at least as much as any line (款, 项) of that article does."""
    target = best.hit.clause
    if clause.doc_id != target.doc_id:
        return False
    article = _article_number(target)
    named = [text for number, text in referred(clause.refers) if number == article]
    if not named:
        return False
    best_line = max((matcher.coverage(best.words, line) for line in target.text.splitlines() if line.strip()), default=0.0)
    return any(matcher.coverage(best.words, text) >= best_line > 0 for text in named)


def _adopt(hits: list[Hit], by_id: dict[str, Hit], h: Hit) -> Hit:
    """The hit of ``h``'s clause among ``hits`` (``by_id``: the same by clause id), ``h`` added when new."""
    mine = by_id.get(h.clause.id)
    if mine is None:
        mine = by_id[h.clause.id] = h
        hits.append(h)
    return mine


def _merge(hits: list[Hit], more: list[Hit]) -> None:
    seen = {h.clause.id for h in hits}
    hits += [h for h in more if h.clause.id not in seen]


def _article_number(clause: Clause) -> int:
    label = normalize(clause.ref).split("条", 1)[0].removeprefix("第")
    try:
        return chinese_numeral(label)
    except KeyError:
        return -1
