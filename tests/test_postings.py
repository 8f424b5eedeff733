"""The corpus tables saved with the index: the word frequencies a question looks up must be what
counting every clause would give."""

from __future__ import annotations

import pytest

from bot.index.postings import matching_text


@pytest.fixture(scope="module")
def haystacks(bot) -> list[str]:
    return [matching_text(c, bot.index.documents[c.doc_id]) for c in bot.index.clauses]


def test_the_saved_frequency_of_every_corpus_word_is_its_count_over_all_clauses(bot, haystacks):
    table = bot.index.postings.word_df
    assert len(table) > 1000
    wrong = {w: n for w, n in table.items() if n != sum(w in h for h in haystacks)}
    assert wrong == {}


def test_a_word_outside_the_table_is_counted_over_all_clauses_too(bot, haystacks):
    table = bot.index.postings.word_df
    words = ["务体系建", "居民委员会成员", "每百户居民", "不存在的词语组合"]
    assert not any(w in table for w in words)
    assert [bot.matcher.df(w) for w in words] == [sum(w in h for h in haystacks) for w in words]
