"""Re-ranking candidates by a model fitted on labelled questions.

Each candidate clause is described by what the searches and the question say about it (each
retriever's rank and score, the rank in the search of the ask alone, how close its best sentence
is, coverage of the question's and of the ask's words, how close the labelled questions it
answered are, a figure of the asked kind, the document named or the primary one; the search
measures once more for a question that tells a case first);
a logistic model fitted by ``benchmarks/calibrate.py`` on the dev splits turns that into
P(the clause answers), and candidates are ordered by it. The weights are
data (``bot/data/ranker.json``), not code.
"""

from __future__ import annotations

import math
from dataclasses import replace

from bot.answer.calibrated import CalibratedModel
from bot.answer.evidence import Evidence
from bot.answer.query import Query

_MEASURES = (
    "fused", "bm25_rr", "dense_rr", "dense_sim", "bm25_log", "ask_rr", "coverage", "ask_coverage",
    "unit_fit", "figure_fit", "numbers_ok", "routed", "primary", "contrast", "sentence_rr", "sentence_whole",
    "sentence_best", "memory_rr", "memory_sim",
)
# The same measures again for a question that tells a case first (0 otherwise): there the whole
# question's words are mostly the case's, so a clause's ranks in the whole question's searches may
# count for less, and in the ask's for more, than for a bare question. A linear model can only
# weigh them differently if they are separate features; the fit decides how.
_CASE_MEASURES = ("fused", "bm25_rr", "dense_rr", "coverage", "ask_rr", "ask_coverage", "sentence_rr", "sentence_whole",
                  "sentence_best")
RANK_FEATURES = _MEASURES + tuple(f"case_{name}" for name in _CASE_MEASURES)


def candidate_features(query: Query, e: Evidence, top: float, routed: set[str], primary_doc: str) -> dict[str, float]:
    """What is known about one candidate for ``query``; ``top``: the best fused score among them."""
    h, doc = e.hit, e.hit.clause.doc_id
    features = {
        "fused": h.score / (top or 1.0),
        "bm25_rr": 1.0 / h.bm25_rank if h.bm25_rank else 0.0,
        "dense_rr": 1.0 / h.dense_rank if h.dense_rank else 0.0,
        "dense_sim": h.dense_score,
        "bm25_log": math.log1p(h.bm25_score),
        "ask_rr": 1.0 / h.ask_rank if h.ask_rank else 0.0,
        "coverage": e.coverage,
        "ask_coverage": e.ask_coverage,
        "unit_fit": float(query.asked_unit is not None and e.unit_ok and e.has_figure),
        "figure_fit": float(query.is_figure and e.has_figure),
        "numbers_ok": float(e.numbers_ok),
        "routed": float(doc in routed),
        "primary": float(doc == primary_doc),
        "contrast": float(e.contrast),
        "sentence_rr": 1.0 / h.sentence_rank if h.sentence_rank else 0.0,
        "sentence_whole": h.sentence_whole,
        "sentence_best": h.sentence_best,
        "memory_rr": 1.0 / h.memory_rank if h.memory_rank else 0.0,
        "memory_sim": h.memory_sim,
    }
    case = float(bool(query.situation))
    return features | {f"case_{name}": case * features[name] for name in _CASE_MEASURES}


def rerank(query: Query, evidence: list[Evidence], model: CalibratedModel, routed: set[str], primary_doc: str) -> list[Evidence]:
    """``evidence`` ordered by the ranker's P(answers), each with its ``rank_score`` set."""
    if not evidence:
        return evidence
    top = max(e.hit.score for e in evidence)
    scores = [model.score(candidate_features(query, e, top, routed, primary_doc)) for e in evidence]
    scored = [replace(e, rank_score=z) for e, z in zip(evidence, scores)]
    return sorted(scored, key=lambda e: -e.rank_p)
