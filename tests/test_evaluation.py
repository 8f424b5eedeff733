"""The gold-set format is validated strictly and the metrics mean what the README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.evaluation import METRIC_KEYS, GoldQuestion, GoldSetError, evaluate, load_gold
from bot.models import Answer, Citation, Clause
from bot.retrieval import Hit

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
        "q1": (Answer(question="q1", found=True, answer="每天不少于8小时[1]", citations=[cite(1, right), cite(2, wrong)], latency_ms=10),
               [Hit(wrong, 1.0), Hit(right, 0.5)]),
        "q2": (Answer(question="q2", found=False, answer="未找到", citations=[], latency_ms=30, reason="low_confidence"),
               [Hit(wrong, 1.0)]),
        "q3": (Answer(question="q3", found=False, answer="未找到", citations=[], latency_ms=20, reason="no_figure"), []),
    }
    report = evaluate([GoldQuestion.model_validate(r) for r in rows], lambda q: answers[q])
    assert report["hit_at_1"] == 0.0 and report["hit_at_3"] == 0.5 and report["mrr"] == 0.25
    assert report["answer_accuracy"] == 0.5
    assert report["citation_precision"] == 0.5 and report["citation_recall"] == 0.5
    assert report["refusal_accuracy"] == 1.0 and report["false_refusal_rate"] == 0.5
    assert report["latency_p50_ms"] == 20.0
    assert [q["failure"] for q in report["questions"]] == [None, "false_refusal:low_confidence (retrieval_miss)", None]


@pytest.fixture(scope="module")
def gold_report(bot):
    return evaluate(load_gold(ROOT / "eval" / "gold.jsonl"), lambda q: bot.run(q, top_k=5))


def test_report_has_every_metric(gold_report):
    assert set(METRIC_KEYS) <= set(gold_report)


@pytest.mark.parametrize("metric", sorted(FLOORS["overall"]))
def test_gold_set_meets_the_ci_floor(gold_report, metric):
    floor = FLOORS["overall"][metric]
    value = gold_report[metric]
    if metric == "false_refusal_rate":
        assert value <= floor, f"{metric} {value} above ceiling {floor}"
    else:
        assert value >= floor, f"{metric} {value} below floor {floor}"


@pytest.mark.parametrize(("tag", "metric"), [(t, m) for t, ms in FLOORS["by_tag"].items() for m in ms])
def test_gold_tags_meet_the_ci_floor(gold_report, tag, metric):
    assert gold_report["by_tag"][tag][metric] >= FLOORS["by_tag"][tag][metric]
