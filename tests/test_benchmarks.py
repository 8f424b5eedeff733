"""The benchmark scripts' own building blocks work (the benchmarks themselves are run by hand)."""

from bot.corpus.catalog import load_catalog, read_text
from bot.corpus.chunking import parse_clauses


def test_scale_benchmark_writes_a_corpus_the_parser_reads_as_articles(tmp_path):
    from benchmarks.scale import make_corpus

    assert make_corpus(tmp_path, 2) > 0
    docs = load_catalog(tmp_path)
    assert [d.id for d in docs] == ["syn-0", "syn-1"]
    articles = [c for c in parse_clauses(docs[0], read_text(tmp_path, docs[0])) if c.kind == "article"]
    assert len(articles) >= 80  # one per 第N条 written (a sampled sentence may hold a 款 break too)


def test_calibration_weighs_only_what_the_bot_measures():
    # A model fitted over a signal the serving path does not compute could not be loaded (or the
    # fit would stop on it half way): calibrate's feature lists stay within the bot's.
    from benchmarks.calibrate import GATE_FEATURES, REFUSAL_FEATURES
    from bot.answer.refusal import SIGNALS

    assert set(REFUSAL_FEATURES) <= set(SIGNALS)
    assert set(GATE_FEATURES) <= set(SIGNALS)
