"""Re-ranking fused candidates with what the question asks: coverage of its topic words and the
documents it names."""

from __future__ import annotations

from bot.config import Settings
from bot.evidence import Evidence
from bot.query import Query


def rerank(query: Query, evidence: list[Evidence], settings: Settings, routed: set[str] = frozenset()) -> list[Evidence]:
    """Reorder by fused score (scaled to the best) plus ``coverage_weight`` x coverage of the
    question's words: among clauses that share the topic, the one that holds what is asked ("任期",
    "几人") comes first, whichever document it is in. Clauses of a document the question names get
    ``route_weight`` on top, the primary document (the plan, what most questions are about)
    ``primary_weight``; for a figure question, a clause with a figure of the asked kind gets ``unit_weight``."""
    if not evidence:
        return evidence
    top = max(e.hit.score for e in evidence) or 1.0
    s = settings

    def score(e: Evidence) -> float:
        doc = e.hit.clause.doc_id
        return (e.hit.score / top + s.coverage_weight * e.coverage
                + (s.route_weight if doc in routed else 0.0)
                + (s.primary_weight if doc == s.primary_doc else 0.0)
                + (s.unit_weight if query.is_figure and e.unit_ok and e.has_figure else 0.0))

    return sorted(evidence, key=lambda e: -score(e))
