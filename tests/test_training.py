"""Trainer material: every quiz item is checkable against its clause, over many seeds; printable
handouts and answer keys are real documents."""

from __future__ import annotations

import csv
import io

import docx
import pytest

from bot.text import normalize
from bot.training.export import handout_docx, handout_markdown, quiz_csv, quiz_docx, quiz_markdown
from bot.training.quiz import QuizMaker, select_clauses


@pytest.fixture(scope="module")
def plan_clauses(bot):
    return select_clauses(bot.index.clauses, "xc-plan")


@pytest.fixture(scope="module")
def maker(plan_clauses):
    return QuizMaker(plan_clauses)


def _filled(stem: str, value: str) -> str:
    return normalize(stem.replace("（    ）", value))


@pytest.mark.parametrize("seed", range(25))
def test_every_item_restates_its_clause_and_only_the_key_fits(maker, bot, seed):
    """Stronger than the generator's own check: the blank filled with the key gives back the
    clause's sentence, filled with any distractor it does not; a false statement is the clause's
    sentence with one value swapped."""
    items = maker.make(40, seed=seed)
    assert len(items) >= 30
    for it in items:
        clause = bot.index.clauses[bot.index.clause_positions[it.clause_id]]
        hay = normalize(clause.text + clause.context)
        assert it.explanation == clause.text
        if it.type in ("choice", "blank") and clause.kind != "table_row":
            key = it.answer if it.type == "blank" else it.options["ABCD".index(it.answer)]
            assert _filled(it.question, key) in hay, it
            assert not any(_filled(it.question, o) in hay for o in it.options if o != key), it
        if it.type == "choice":
            assert len(set(it.options)) == 4
        if it.type == "judge":
            assert (normalize(it.question) in hay) == (it.answer == "正确"), it


def test_check_rejects_a_key_the_clause_does_not_support(maker, bot):
    """The generator's last line of defence, on items built wrong on purpose."""
    choice = next(i for i in maker.make(40, ["choice"], seed=1) if i.type == "choice")
    clause = bot.index.clauses[bot.index.clause_positions[choice.clause_id]]
    right = choice.options["ABCD".index(choice.answer)]
    wrong_letter = next(x for x in "ABCD" if x != choice.answer)
    assert QuizMaker.check(choice, clause)
    assert not QuizMaker.check(choice.model_copy(update={"answer": wrong_letter}), clause)
    also_in_clause = clause.text[:4]
    assert also_in_clause != right
    clashing = [also_in_clause if x == wrong_letter else o for x, o in zip("ABCD", choice.options)]
    assert not QuizMaker.check(choice.model_copy(update={"options": clashing}), clause)  # two options fit
    blank = choice.model_copy(update={"type": "blank", "options": [], "answer": "九十九万"})
    assert not QuizMaker.check(blank, clause)
    sentence = clause.text.split("。")[0]
    assert QuizMaker.check(blank.model_copy(update={"type": "judge", "question": sentence, "answer": "正确"}), clause)
    assert not QuizMaker.check(blank.model_copy(update={"type": "judge", "question": sentence, "answer": "错误"}), clause)


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
