"""The Milvus backend (Milvus Lite, embedded) ranks like the default backend, filters inside Milvus,
builds incrementally and never shows a half-written build."""

from __future__ import annotations

import json
import shutil

import pytest

from bot.config import Settings
from bot.evaluation import load_gold
from bot.index.backends import IndexDamaged
from bot.index.build import build_index, current_build, ensure_index, index_text, load_index
from bot.pipeline import PolicyBot
from tests.conftest import ROOT

pytest.importorskip("milvus_lite", reason="install the 'milvus' (or 'test') extra")


def _milvus_settings(base: Settings, tmp_path, documents: set[str] | None = None) -> Settings:
    """A private corpus (optionally only ``documents``) and index folder with the session's embedding cache."""
    corpus = tmp_path / "corpus"
    shutil.copytree(base.corpus_dir, corpus)
    if documents is not None:
        catalog = json.loads((corpus / "catalog.json").read_text(encoding="utf-8"))
        catalog["documents"] = [d for d in catalog["documents"] if d["id"] in documents]
        (corpus / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    shutil.copytree(base.index_dir / "cache", tmp_path / "indexes" / "cache")
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "indexes", vector_store="milvus",
                    milvus_uri=str(tmp_path / "indexes" / "milvus.db"))


@pytest.fixture(scope="module")
def milvus_bot(tmp_path_factory, settings, embedder, bot) -> PolicyBot:
    return PolicyBot(_milvus_settings(settings, tmp_path_factory.mktemp("milvus")), embedder=embedder)


@pytest.fixture(scope="module")
def questions() -> list[str]:
    return [g.question for g in load_gold(ROOT / "eval" / "real-dev.jsonl")][:40]


def test_bm25_in_milvus_gives_the_clauses_and_scores_of_bm25s(bot, milvus_bot, questions):
    for q in questions:
        tokens = bot.tokenizer.tokens(bot.tokenizer.expand(q))
        local, milvus = bot.index.backend.lexical(tokens, 10), milvus_bot.index.backend.lexical(tokens, 10)
        assert [round(s, 3) for _, s in milvus] == pytest.approx([round(s, 3) for _, s in local], abs=2e-3), q
        assert {i for i, s in milvus if s > milvus[-1][1] + 1e-3} == {i for i, s in local if s > local[-1][1] + 1e-3}, q


def test_dense_search_in_milvus_gives_the_clauses_and_scores_of_faiss(bot, milvus_bot, questions):
    for q in questions:
        vec = bot.embedder.get_query_embedding(q)
        local, milvus = bot.index.backend.dense(vec, 10), milvus_bot.index.backend.dense(vec, 10)
        assert [i for i, _ in milvus] == [i for i, _ in local], q
        assert [s for _, s in milvus] == pytest.approx([s for _, s in local], abs=1e-4), q


def _essence(answer) -> dict:
    """An answer without what differs by float rounding between engines (scores) or per call (id, timing)."""
    out = answer.model_dump(exclude={"id", "latency_ms"})
    for quoted in ("citations", "related"):
        out[quoted] = [{k: v for k, v in c.items() if k != "score"} for c in out[quoted]]
    return out


def test_answers_match_the_default_backend(bot, milvus_bot, questions):
    differ = [q for q in questions if _essence(bot.ask(q)) != _essence(milvus_bot.ask(q))]
    assert differ == []


def test_the_document_filter_is_applied_inside_milvus(milvus_bot):
    law = "urban-rc-law"
    assert law in milvus_bot.index.documents
    vec = milvus_bot.embedder.get_query_embedding("居民委员会由哪些人组成")
    hits = milvus_bot.index.backend.dense(vec, 10, frozenset({law}))
    tokens = milvus_bot.tokenizer.tokens("居民委员会 组成")
    lexical = milvus_bot.index.backend.lexical(tokens, 10, frozenset({law}))
    assert len(hits) == 10 and lexical
    assert {milvus_bot.index.clauses[i].doc_id for i, _ in hits + lexical} == {law}


def test_a_rebuild_writes_only_changed_clauses_and_deletes_removed_ones(tmp_path, settings, embedder):
    ms = _milvus_settings(settings, tmp_path, {"xc-plan", "urban-rc-law"})
    first = load_index(build_index(ms, embedder), settings=ms)
    second = load_index(build_index(ms, embedder), settings=ms)
    plan = ms.corpus_dir / "docs" / "xc-plan.txt"
    plan.write_text(plan.read_text(encoding="utf-8") + "4.加强宣传引导。本规划由市民政局负责解释。\n", encoding="utf-8")
    third = load_index(build_index(ms, embedder), settings=ms)
    before = {(c.id, index_text(c)) for c in first.clauses}
    changed = sum((c.id, index_text(c)) not in before for c in third.clauses)
    n_law = sum(c.doc_id == "urban-rc-law" for c in third.clauses)
    catalog = json.loads((ms.corpus_dir / "catalog.json").read_text(encoding="utf-8"))
    catalog["documents"] = [d for d in catalog["documents"] if d["id"] == "xc-plan"]
    (ms.corpus_dir / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    fourth = load_index(build_index(ms, embedder), settings=ms)

    slots = [i.manifest["milvus"]["collection"] for i in (first, second, third, fourth)]
    assert slots == ["policybot_a", "policybot_b", "policybot_a", "policybot_b"]
    assert first.manifest["milvus"]["upserted"] == second.manifest["milvus"]["upserted"] == len(first.clauses)  # empty slots
    assert 1 <= changed <= 2
    assert third.manifest["milvus"] == {"collection": "policybot_a", "alias": "policybot", "upserted": changed, "deleted": 0}
    assert fourth.manifest["milvus"] == {"collection": "policybot_b", "alias": "policybot", "upserted": changed, "deleted": n_law}
    assert fourth.backend.size() == len(fourth.clauses) == len(third.clauses) - n_law


def test_a_build_in_progress_is_never_what_queries_see(tmp_path, settings, embedder):
    ms = _milvus_settings(settings, tmp_path, {"urban-rc-law"})
    live = load_index(build_index(ms, embedder), settings=ms)
    vec = embedder.get_query_embedding("居民委员会的任期")
    before = live.backend.dense(vec, 5)
    catalog = json.loads((ms.corpus_dir / "catalog.json").read_text(encoding="utf-8"))
    catalog["documents"] = []  # the next build would empty its collection
    (ms.corpus_dir / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="no clauses"):
        build_index(ms, embedder)
    shutil.copytree(settings.corpus_dir, ms.corpus_dir, dirs_exist_ok=True)  # every document back
    newer = load_index(build_index(ms, embedder), settings=ms)

    assert live.backend.dense(vec, 5) == before  # the old build's collection was not touched
    assert newer.manifest["milvus"]["collection"] != live.manifest["milvus"]["collection"]
    client = newer.backend._client
    assert client.describe_alias("policybot")["collection_name"] == newer.manifest["milvus"]["collection"]


def test_a_dropped_collection_is_detected_and_rebuilt(tmp_path, settings, embedder):
    ms = _milvus_settings(settings, tmp_path, {"urban-rc-law"})
    index = ensure_index(ms, embedder)
    index.backend._client.drop_collection(index.manifest["milvus"]["collection"])
    with pytest.raises(IndexDamaged, match="is missing"):
        load_index(current_build(ms.index_dir), settings=ms)
    rebuilt = ensure_index(ms, embedder)
    assert rebuilt.backend.size() == len(rebuilt.clauses) > 0


def test_an_unreachable_engine_is_a_503_with_retry_after_not_a_500(tmp_path, settings, embedder):
    import httpx

    from bot.api import create_app
    from tests.conftest import LiveServer

    ms = _milvus_settings(settings, tmp_path, {"urban-rc-law"}).model_copy(update={"question_log": False})
    bot = PolicyBot(ms, embedder=embedder)
    server = LiveServer(create_app(ms, bot=bot))
    try:
        assert httpx.post(server.url + "/v1/ask", json={"question": "居民委员会每届任期几年？"}).status_code == 200
        bot.index.backend._client.drop_collection(bot.index.manifest["milvus"]["collection"])
        r = httpx.post(server.url + "/v1/ask", json={"question": "居民委员会成员由谁选举？"})
    finally:
        server.stop()
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["error"]["code"] == "engine_unavailable"
