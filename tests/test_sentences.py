"""The sentence index scores a clause by its best sentence, so an ask that matches one sentence of a
long clause finds that clause (``bot.index.sentences``)."""

from __future__ import annotations

import numpy as np

from bot.index.sentences import clause_sentences


def _long_clause(bot, doc: str = "xc-plan"):
    """A clause of the plan with at least four sentences of their own."""
    return next(c for c in bot.index.clauses if c.doc_id == doc
                and len(clause_sentences(c, bot.settings.sentence_min_chars)) >= 4)


def test_every_clause_has_at_least_one_sentence_vector(bot):
    offsets = np.asarray(bot.index.sentences.offsets)
    assert len(offsets) == len(bot.index.clauses) + 1
    assert (np.diff(offsets) >= 1).all() and offsets[-1] == bot.index.sentences.size()


def test_an_ask_worded_like_one_inner_sentence_finds_its_clause(bot):
    clause = _long_clause(bot)
    inner = clause_sentences(clause, bot.settings.sentence_min_chars)[2]
    found = bot.dense.sentence_ranked([inner], 3)
    assert found[0][0] == bot.index.clause_positions[clause.id]


def test_a_clause_scores_its_best_sentence(bot):
    clause = _long_clause(bot)
    pos = bot.index.clause_positions[clause.id]
    offsets = bot.index.sentences.offsets
    own = bot.index.sentences.vectors.reconstruct(int(offsets[pos]) + 1)  # its second sentence's vector
    other = pos + 1 if pos + 1 < len(bot.index.clauses) else pos - 1
    sims = bot.index.sentences.similarity(own[None, :], [pos, other])
    assert np.isclose(sims[0, 0], 1.0, atol=1e-4) and sims[0, 1] < sims[0, 0]


def test_a_sentence_search_within_documents_returns_only_their_clauses(bot):
    clause = _long_clause(bot)
    inner = clause_sentences(clause, bot.settings.sentence_min_chars)[1]
    found = bot.dense.sentence_ranked([inner], 10, frozenset({"urban-rc-law"}))
    assert found and {bot.index.clauses[i].doc_id for i, _ in found} == {"urban-rc-law"}


def test_a_candidate_found_by_any_search_carries_its_best_sentence_cosine(bot):
    query, evidence, _ = bot.candidates("社区综合服务设施覆盖率2025年要达到多少")
    assert evidence and all(-1.0 <= e.hit.sentence_best <= 1.0001 for e in evidence)
    assert max(e.hit.sentence_best for e in evidence) > 0.5
    assert all(e.hit.sentence_best >= e.hit.sentence_whole - 1e-6 for e in evidence)
