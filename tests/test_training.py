"""Trainer material: every quiz item is checkable against its clause, over many seeds; printable
handouts and answer keys are real documents."""

from __future__ import annotations

import csv
import io
import json

import docx
import pytest

from bot.export import handout_docx, handout_markdown, quiz_csv, quiz_docx, quiz_markdown
from bot.quiz import QuizMaker, select_clauses
from bot.text import normalize


@pytest.fixture(scope="module")
def plan_clauses(bot):
    return select_clauses(bot.index.clauses, "xc-plan")


@pytest.fixture(scope="module")
def maker(plan_clauses):
    return QuizMaker(plan_clauses)


@pytest.mark.parametrize("seed", range(25))
def test_every_item_is_true_to_its_clause(maker, bot, seed):
    items = maker.make(40, seed=seed)
    assert len(items) >= 30
    for it in items:
        clause = bot.index.clauses[bot.index.clause_positions[it.clause_id]]
        hay = normalize(clause.text + clause.context)
        assert it.explanation == clause.text
        if it.type == "choice":
            right = it.options["ABCD".index(it.answer)]
            assert normalize(right) in hay
            assert len(set(it.options)) == 4
            assert not any(normalize(o) in hay for o in it.options if o != right), it
        elif it.type == "blank":
            assert normalize(it.answer) in hay and "（    ）" in it.question
        else:
            assert (normalize(it.question) in hay) == (it.answer == "正确")


def test_same_seed_same_quiz_other_seed_other_quiz(maker):
    assert maker.make(20, seed=3) == maker.make(20, seed=3)
    assert maker.make(20, seed=3) != maker.make(20, seed=4)


def test_types_and_sections_are_respected(bot, plan_clauses):
    section = select_clauses(bot.index.clauses, "xc-plan", "二、(六)")
    items = QuizMaker(section, pool=plan_clauses).make(10, ["blank"], 1)
    assert items and all(i.type == "blank" for i in items)
    assert all(i.ref.startswith("二、(六)") for i in items)


def test_markdown_key_is_on_its_own_page(maker):
    text = quiz_markdown(maker.make(5, seed=1), "测试")
    questions, key = text.split("page-break-before", 1)
    assert "## 答案与解析" in key and "出处" in key and "**" not in questions


def test_csv_imports_as_a_table(maker):
    rows = list(csv.reader(io.StringIO(quiz_csv(maker.make(5, seed=1)))))
    assert rows[0][:3] == ["序号", "题型", "题干"] and len(rows) == 6
    assert all(len(r) == 10 for r in rows)


def test_quiz_docx_reads_back_with_key_after_a_page_break(maker, tmp_path):
    items = maker.make(6, seed=2)
    quiz_docx(items, "练习题", tmp_path / "q.docx")
    d = docx.Document(str(tmp_path / "q.docx"))
    texts = [p.text for p in d.paragraphs]
    assert texts[0] == "练习题" and "答案与解析" in texts
    breaks = [i for i, p in enumerate(d.paragraphs) if 'w:br w:type="page"' in p._p.xml]
    assert breaks and breaks[0] < texts.index("答案与解析")
    assert any(it.explanation in texts for it in items)


def test_handout_lists_the_indicator_table_and_every_box_item(bot, plan_clauses, tmp_path):
    doc = bot.index.documents["xc-plan"]
    md = handout_markdown(doc, plan_clauses)
    assert md.count("指标 ") == 9
    assert "**1‰**" in md and "**≥3名**" in md
    for box, n in {2: 3, 3: 15, 4: 2, 5: 3, 6: 4}.items():
        assert sum(line.startswith("- ") for line in md.split(f"专栏{box} ", 1)[1].split("## ", 1)[0].splitlines()) == n
    handout_docx(doc, plan_clauses, tmp_path / "h.docx")
    d = docx.Document(str(tmp_path / "h.docx"))
    bold = {r.text for p in d.paragraphs for r in p.runs if r.bold}
    assert {"100%", "1‰", "8小时"} <= bold
    assert any("特殊困难老年人月探访率" in p.text for p in d.paragraphs)


def test_quiz_api_returns_the_json_form(live_server):
    import httpx

    r = httpx.post(live_server.url + "/v1/quiz", json={"n": 5, "section": "专栏3", "types": ["choice"], "seed": 9}, timeout=30)
    data = r.json()
    assert r.status_code == 200 and len(data["items"]) == 5
    assert all(i["type"] == "choice" and len(i["options"]) == 4 for i in data["items"])
    bad = httpx.post(live_server.url + "/v1/quiz", json={"section": "专栏99"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_section"
    assert httpx.post(live_server.url + "/v1/quiz", json={"types": ["essay"]}, timeout=30).status_code == 422


def test_quiz_cli_writes_json(tmp_path, settings):
    import os
    import subprocess
    import sys

    env = os.environ | {"POLICYBOT_INDEX_DIR": str(settings.index_dir), "POLICYBOT_CORPUS_DIR": str(settings.corpus_dir)}
    out = subprocess.run([sys.executable, "-m", "bot", "quiz", "--n", "4", "--format", "json", "--seed", "5"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 4
