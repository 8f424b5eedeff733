"""Deciding whether the best evidence answers the question, or the bot must say "not found".

Hard rules catch what is logically wrong (a year the clause does not contain, another city, a
figure question with no figure in sight). Everything softer is one calibrated logistic model over
several signals, because no single retrieval-score threshold separates answerable from
unanswerable questions here. The model is fitted on ``eval/dev.jsonl`` by
``benchmarks/calibrate.py`` and shipped as ``bot/data/refusal.json``; ``eval/gold.jsonl`` is
never used for it.
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

FEATURES = (
    "coverage", "unknown_share", "log_bm25", "dense", "dense_top", "agreement",
    "figure_ok", "n_words",
)

# An unknown word that names a place (郑州市, 洛阳市) points at another jurisdiction.
_PLACE = re.compile(r"\w{2,}[市省县]")


def features(query: Query, best: Evidence, evidence: list[Evidence]) -> np.ndarray:
    """The signals the refusal model weighs, in ``FEATURES`` order."""
    h = best.hit
    return np.array([
        best.coverage,
        len(best.unknown) / max(len(best.words), 1),
        math.log1p(h.bm25_score),
        h.dense_score,
        max(e.hit.dense_score for e in evidence),
        float(bool(h.bm25_rank and h.bm25_rank <= 3 and h.dense_rank and h.dense_rank <= 3)),
        float(query.is_figure and best.has_figure),
        math.log1p(len(best.words)),
    ], dtype=np.float64)


def hard_reason(query: Query, best: Evidence | None) -> str | None:
    """Reasons that need no calibration."""
    if not any("\u4e00" <= ch <= "\u9fff" for ch in query.text):
        return "not_chinese"
    if query.instruction:
        return "instruction"
    if best is None:
        return "no_match"
    if not best.numbers_ok:
        return "unmatched_number"
    if any(_PLACE.fullmatch(w) for w in best.unknown):
        return "other_place"
    if query.asked_unit and not best.unit_ok:
        return "unmatched_unit"
    if query.is_figure and not best.has_figure:
        return "no_figure"
    return None


@dataclass
class RefusalModel:
    """Logistic model: answer when P(answerable) >= threshold."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    meta: dict

    @classmethod
    def load(cls, path: Path | None = None) -> RefusalModel:
        raw = (Path(path).read_text(encoding="utf-8") if path
               else resources.files("bot").joinpath("data", "refusal.json").read_text(encoding="utf-8"))
        data = json.loads(raw)
        if tuple(data["features"]) != FEATURES:
            raise ValueError("refusal model was fitted on other features; rerun benchmarks/calibrate.py")
        return cls(np.array(data["mean"]), np.array(data["std"]), np.array(data["weights"]), float(data["bias"]),
                   float(data["threshold"]), data.get("meta", {}))

    @classmethod
    def always_answer(cls) -> RefusalModel:
        """A model that never refuses (used while collecting calibration data)."""
        n = len(FEATURES)
        return cls(np.zeros(n), np.ones(n), np.zeros(n), 0.0, 0.0, {})

    def reason(self, query: Query, chosen: list[Evidence], evidence: list[Evidence], threshold: float | None = None) -> str | None:
        """Why the chosen evidence does not answer ``query``, or None when it does."""
        best = chosen[0] if chosen else None
        reason = hard_reason(query, best)
        limit = self.threshold if threshold is None else threshold
        if reason is None and self.probability(features(query, best, evidence)) < limit:
            reason = "low_confidence"
        return reason

    def probability(self, x: np.ndarray) -> float:
        z = float(((x - self.mean) / self.std) @ self.weights + self.bias)
        return 1.0 / (1.0 + math.exp(-z))

    def to_json(self) -> str:
        return json.dumps({
            "features": list(FEATURES), "mean": self.mean.round(6).tolist(), "std": self.std.round(6).tolist(),
            "weights": self.weights.round(6).tolist(), "bias": round(self.bias, 6), "threshold": self.threshold,
            "meta": self.meta,
        }, ensure_ascii=False, indent=1)


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (a few dozen rows: no library needed).

    Returns:
        (mean, std, weights, bias) with weights on standardised features.
    """
    mean, std = x.mean(0), x.std(0)
    std = np.where(std < 1e-6, 1.0, std)  # a constant feature keeps weight 0 instead of dividing by 0
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = l2 * np.eye(z.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + reg @ w
        hess = z.T @ (z * (p * (1 - p))[:, None]) + reg
        w -= np.linalg.solve(hess, grad)
    return mean, std, w[:-1], float(w[-1])
