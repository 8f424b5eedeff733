"""Choosing the clauses an answer quotes: the best-supported one, plus others as strong when the
question asks for several things or another document sets a figure too."""

from __future__ import annotations

from bot.answer.calibrated import sigmoid
from bot.answer.evidence import Evidence, Matcher
from bot.answer.figures import conflict
from bot.answer.query import Query
from bot.config import Settings


def select(query: Query, evidence: list[Evidence], matcher: Matcher, settings: Settings,
           named: set[str] = frozenset()) -> list[Evidence]:
    """The clauses to quote, in re-ranked order (``evidence`` comes re-ranked: that order is trusted);
    ``named``: the documents the question names."""
    if not evidence:
        return []
    s = settings
    best = evidence[0]
    limit = s.max_answer_clauses if query.is_list else 2
    margin = s.multi_margin if query.is_list else s.single_margin
    chosen = [best]
    # The ranker is pairwise: sigmoid of two scores' difference is its P(the second is the better one).
    if len(evidence) > 1 and evidence[1].numbers_ok and sigmoid(evidence[1].rank_score - best.rank_score) >= s.runner_up_chance:
        chosen.append(evidence[1])  # the ranker is unsure which of the two answers: show both
    covered = set().union(*(matcher.covered(e.words, e.hit.clause.id) for e in chosen))
    for ev in evidence[len(chosen):]:  # ``chosen`` is still a prefix of ``evidence``
        if len(chosen) >= limit:
            break
        if not ev.numbers_ok:
            continue
        close = ev.coverage >= max(s.min_coverage, best.coverage - margin)
        # A 分别/哪些 question may need a clause for each of its parts: take one that covers
        # question words the chosen clauses leave out.
        own = matcher.covered(ev.words, ev.hit.clause.id)
        adds = query.is_list and ev.coverage >= s.min_coverage and bool(own - covered)
        if close or adds:
            chosen.append(ev)
            covered |= own
    if query.is_figure:
        _add_other_documents(chosen, evidence, best, s)
        if not named:  # a question naming a document asks what that one says
            _prevailing_first(chosen, matcher)
    return chosen


def _prevailing_first(chosen: list[Evidence], matcher: Matcher) -> None:
    """Where another quoted document states the best clause's figure otherwise (a 2011 provincial
    "每届任期三年" against the law's "五年" as amended in 2018) and its rule prevails, it leads."""
    best = chosen[0].hit.clause
    for i, ev in enumerate(chosen[1:], 1):
        other = ev.hit.clause
        if (other.doc_id != best.doc_id and conflict(best.text, other.text)
                and matcher.documents[other.doc_id].prevails_over(matcher.documents[best.doc_id])):
            chosen.insert(0, chosen.pop(i))
            return


def _add_other_documents(chosen: list[Evidence], evidence: list[Evidence], best: Evidence, s: Settings) -> None:
    """A figure question answered by one document also gets the nearly as strong clause of each
    other document that gives a figure: when the plan and a law (or a national law and its Henan
    measures) both set one, the answer shows both with their sources."""
    docs = {e.hit.clause.doc_id for e in chosen}
    for ev in evidence:
        if len(chosen) >= s.max_answer_clauses:
            return
        doc = ev.hit.clause.doc_id
        if (doc not in docs and ev.has_figure and ev.unit_ok and ev.numbers_ok
                and ev.coverage >= best.coverage - s.single_margin):
            chosen.append(ev)
            docs.add(doc)
