"""The gold-set format is validated strictly and the metrics mean what the README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.answer.retrieval import Hit
from bot.evaluation import GoldQuestion, GoldSetError, evaluate, is_relevant, load_gold, summarize
from bot.models import Answer, Citation, Clause

ROOT = Path(__file__).resolve().parent.parent
FLOORS = json.loads((ROOT / "eval" / "floors.json").read_text(encoding="utf-8"))


def _write(tmp_path, rows) -> Path:
    p = tmp_path / "gold.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return p


GOOD = {"id": "a", "question": "问题", "answerable": True, "keywords": [["8小时"]], "evidence": ["每天不少于8小时"]}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "invalid JSON"),
        ({**GOOD, "id": "b", "answerable": True, "evidence": []}, "evidence"),
        ({**GOOD, "id": "b", "answerable": False}, "unanswerable rows"),
        ({**GOOD, "id": "b", "keywords": [[]]}, "keyword group"),
        ({**GOOD, "id": "b", "extra": 1}, "extra"),
        ({**GOOD}, "duplicate id"),
    ],
)
def test_malformed_rows_are_reported_with_their_line(tmp_path, bad, message):
    with pytest.raises(GoldSetError, match=rf"gold.jsonl:2: .*{message}"):
        load_gold(_write(tmp_path, [GOOD, bad]))


def test_the_shipped_sets_are_valid_and_large_enough():
    gold, dev = load_gold(ROOT / "eval" / "gold.jsonl"), load_gold(ROOT / "eval" / "dev.jsonl")
    assert len(gold) >= 150 and sum(not g.answerable for g in gold) >= 20
    assert sum("paraphrase" in g.tags for g in gold) >= 40
    assert not {g.question for g in gold} & {d.question for d in dev}


def test_the_real_question_sets_are_split_by_topic_and_large_enough():
    dev, test = load_gold(ROOT / "eval" / "real-dev.jsonl"), load_gold(ROOT / "eval" / "real-test.jsonl")
    rows = dev + test
    assert sum("colloquial" in g.tags for g in rows) >= 120
    assert sum("mc" in g.tags for g in rows) >= 40 and sum("near-miss" in g.tags for g in rows) >= 40

    def topics(rs):
        return {t for g in rs for t in g.tags if t.startswith("topic:")}

    assert not topics(dev) & topics(test)


def test_every_evidence_string_of_the_real_sets_is_in_a_clause(bot):
    texts = [c.text + c.context for c in bot.index.clauses]
    for name in ("real-dev.jsonl", "real-test.jsonl", "indep-test2.jsonl", "indep-dev3.jsonl", "indep-dev4.jsonl",
                 "indep-test3.jsonl"):
        for g in load_gold(ROOT / "eval" / name):
            assert not g.answerable or any(is_relevant(t, g.evidence) for t in texts), (name, g.id)


def test_multiple_choice_rows_name_their_option_and_key_its_content():
    for g in load_gold(ROOT / "eval" / "real-test.jsonl"):
        if "mc" in g.tags:
            assert g.choice and f"{g.choice}.{g.keywords[0][0]}" in g.question, g.id


def test_conversation_sets_have_sixty_threads_split_by_topic_and_history_rows():
    dev, test = load_gold(ROOT / "eval" / "conv-dev.jsonl"), load_gold(ROOT / "eval" / "conv-test.jsonl")
    threads = {tuple(g.history[:1]) for g in dev + test if "follow-up" in g.tags}
    assert len(threads) >= 60
    assert all(g.history for g in dev + test if "follow-up" in g.tags)
    assert all(not g.history and not g.answerable for g in dev + test if "needs-context" in g.tags)
    topics = [{t for g in rs if "follow-up" in g.tags for t in g.tags if t.startswith("topic:")} for rs in (dev, test)]
    assert not topics[0] & topics[1]


def test_resolution_accuracy_compares_what_was_searched_with_the_expected_question():
    row = {"id": "f", "question": "那农村呢？", "history": ["城市社区要有几个社会组织？"], "answerable": True,
           "keywords": [["5个"]], "evidence": ["5个"], "resolved": "农村社区要有几个社会组织"}
    gold = GoldQuestion.model_validate(row)

    def answer(resolved):
        return Answer(question="那农村呢？", found=True, answer="5个", citations=[], latency_ms=1.0, resolved_question=resolved)

    good = evaluate([gold], lambda q, h: (answer("农村社区要有几个社会组织"), []))
    bad = evaluate([gold], lambda q, h: (answer("城市社区要有几个社会组织，农村"), []))
    assert good["resolution_accuracy"] == 1.0 and bad["resolution_accuracy"] == 0.0


def test_choice_accuracy_counts_only_multiple_choice_rows():
    rows = [{"answerable": True, "rank": 1, "cited": [], "found": True, "relevant_citations": 1, "correct": True,
             "latency_ms": 1.0, "choice": c, "gold_choice": g} for c, g in (("B", "B"), ("A", "C"), (None, None))]
    assert summarize(rows)["choice_accuracy"] == 0.5


def test_metrics_on_a_hand_scored_example():
    rows = [
        {"id": "1", "question": "q1", "answerable": True, "keywords": [["8小时", "八小时"]], "evidence": ["不少于8小时"]},
        {"id": "2", "question": "q2", "answerable": True, "keywords": [["100%"]], "evidence": ["覆盖率"]},
        {"id": "3", "question": "q3", "answerable": False, "keywords": [], "evidence": []},
    ]
    def clause(cid, text):
        return Clause(id=cid, doc_id="d", kind="item", headings=[], section="s", ref="r", start=0, end=len(text), text=text)

    def cite(n, c):
        return Citation(n=n, doc_id="d", title="t", doc_number="n", section="s", ref="r", clause_id=c.id, text=c.text, score=1.0)

    right, wrong = clause("d:1", "开放时间每天不少于8小时"), clause("d:2", "无关条款")
    answers = {
        "q1": (Answer(question="q1", found=True, answer="每天不少于8小时[1]", citations=[cite(1, right), cite(2, wrong)], latency_ms=10,
                      retrieval="lexical"),
               [Hit(wrong, 1.0), Hit(right, 0.5)]),
        "q2": (Answer(question="q2", found=False, answer="未找到", citations=[], latency_ms=30, reason="low_confidence"),
               [Hit(wrong, 1.0)]),
        "q3": (Answer(question="q3", found=False, answer="未找到", citations=[], latency_ms=20, reason="no_figure"), []),
    }
    report = evaluate([GoldQuestion.model_validate(r) for r in rows], lambda q, h: answers[q])
    assert report["hit_at_1"] == 0.0 and report["hit_at_3"] == 0.5 and report["mrr"] == 0.25
    assert report["answer_accuracy"] == 0.5
    assert report["citation_precision"] == 0.5 and report["citation_recall"] == 0.5
    assert report["refusal_accuracy"] == 1.0 and report["false_refusal_rate"] == 0.5
    assert report["latency_p50_ms"] == 20.0 and report["lexical_share"] == 0.3333
    assert [q["failure"] for q in report["questions"]] == [None, "false_refusal:low_confidence (retrieval_miss)", None]


SETS = [name for name in FLOORS if not name.startswith("_")]


@pytest.fixture(scope="module")
def reports(bot):
    """Each gated set, evaluated once through the same path as ``policy-bot eval``."""
    return {name: evaluate(load_gold(ROOT / "eval" / name), lambda q, h: bot.run(q, top_k=5, history=h)) for name in SETS}


def _check(metric: str, value: float, floor: float) -> None:
    if metric == "false_refusal_rate":
        assert value <= floor, f"{metric} {value} above ceiling {floor}"
    else:
        assert value >= floor, f"{metric} {value} below floor {floor}"


@pytest.mark.parametrize(("name", "metric"), [(n, m) for n in SETS for m in sorted(FLOORS[n]["overall"])])
def test_each_gated_set_meets_its_ci_floor(reports, name, metric):
    _check(metric, reports[name][metric], FLOORS[name]["overall"][metric])


@pytest.mark.parametrize(("name", "tag", "metric"),
                         [(n, t, m) for n in SETS for t, ms in FLOORS[n]["by_tag"].items() for m in ms])
def test_each_gated_tag_meets_its_ci_floor(reports, name, tag, metric):
    _check(metric, reports[name]["by_tag"][tag][metric], FLOORS[name]["by_tag"][tag][metric])


def test_a_multiple_choice_row_may_name_several_letters_in_order(tmp_path):
    row = {**GOOD, "choice": "BD"}
    assert load_gold(_write(tmp_path, [row]))[0].choice == "BD"
    with pytest.raises(GoldSetError, match="in order"):
        load_gold(_write(tmp_path, [{**GOOD, "choice": "DB"}]))
