"""A learned query-side adapter for the dense embeddings.

Workers' questions ("被她男人打了", "找个出路") and the clauses that answer them are far apart in
the embedder's space, and the distance is systematic: questions are colloquial and short, clauses
official and long. The adapter is a linear map of the question's embedding, fitted so that a
labelled question lands near the embedding of its answering clause; the clause vectors in the index
are left as built. It is ridge regression towards the identity (scikit-learn, at fitting time):

    W = argmin ||Q W - C||^2 + alpha ||W - I||^2

so with little data it stays close to the raw embedding. ``benchmarks/calibrate.py`` fits it on
the dev splits (``alpha`` by question-grouped cross-validation of
dense hit@k) and ships it as data (``bot/data/adapter.npz``), one per embedder; serving needs numpy
only. Without a shipped adapter, for another embedder or another dimension, questions are embedded
as before.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.answer.calibrated import shipped_bytes

logger = logging.getLogger(__name__)

FILENAME = "adapter.npz"


@dataclass
class QueryAdapter:
    """``apply(v)`` = normalise(v @ matrix): a question's embedding moved towards its clauses'.

    Attributes:
        matrix: (d, d), applied on the right of a row vector.
        embedder: the embedder it was fitted for (an adapter never applies to another's vectors).
        meta: how it was fitted (alpha, rows, cross-validated hit@k).
    """

    matrix: np.ndarray
    embedder: str
    meta: dict = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return int(self.matrix.shape[0])

    def fingerprint(self) -> str:
        """Names this adapter's map (answers shared between workers are keyed by the models that made them)."""
        return hashlib.sha256(self.matrix.tobytes()).hexdigest()

    def apply(self, vector) -> list[float]:
        """The adapted, unit-length query vector (the index searches by inner product)."""
        v = np.asarray(vector, dtype=np.float32) @ self.matrix
        return (v / max(float(np.linalg.norm(v)), 1e-12)).tolist()

    @classmethod
    def fitted(cls, queries: np.ndarray, targets: np.ndarray, alpha: float, embedder: str) -> QueryAdapter:
        """Ridge regression of ``targets - queries`` on ``queries`` (rows: a question's embedding and
        its answering clause's): the map is the identity plus the fitted correction."""
        from sklearn.linear_model import Ridge

        q, t = np.asarray(queries, dtype=np.float64), np.asarray(targets, dtype=np.float64)
        correction = Ridge(alpha=alpha, fit_intercept=False).fit(q, t - q).coef_  # (d_out, d_in)
        matrix = np.eye(q.shape[1]) + correction.T
        return cls(matrix.astype(np.float32), embedder, {"alpha": alpha, "rows": int(len(q))})

    def save(self, path: Path) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, matrix=self.matrix, embedder=np.array(self.embedder),
                            meta=np.array(json.dumps(self.meta, ensure_ascii=False)))
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def read(cls, raw: bytes) -> QueryAdapter:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            return cls(np.asarray(data["matrix"], dtype=np.float32), str(data["embedder"]), json.loads(str(data["meta"])))


def load_adapter(path: Path | None, embedder: str, dimension: int, folder: tuple[str, ...] = ("data",)) -> QueryAdapter | None:
    """The adapter at ``path``, or the one shipped under the package's ``folder``; None (raw
    embeddings) when there is none, or when it was fitted for another embedder or dimension."""
    raw = shipped_bytes(path, folder, FILENAME)
    if raw is None:
        return None
    adapter = QueryAdapter.read(raw)
    if adapter.embedder != embedder or adapter.matrix.shape != (dimension, dimension):
        logger.warning("query adapter fitted for %s (%d-d), not %s (%d-d): questions are embedded without it",
                       adapter.embedder, adapter.dimension, embedder, dimension)
        return None
    return adapter
