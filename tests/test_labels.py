"""Labels and the report, on SQLite and on a real PostgreSQL server: a label is attributed,
timestamped and can be changed; labelled questions export as eval rows that pass the strict
validation; the report names clauses and counts questions instead of repeating them."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.evaluation import load_gold
from bot.usage import report as usage
from bot.usage.labels import export_rows, write_rows
from bot.usage.report import ClauseNames
from bot.usage.store import now
from tests.conftest import log_row as _row

NAMES = ClauseNames({"xc-plan": "许昌市“十四五”城乡社区服务体系建设规划"}, [
    {"id": "xc-plan:s2.c4.i1", "doc_id": "xc-plan", "ref": "二、(四) 第1项", "text": "1.推进社区综合服务设施开放共享。开放时间每天不少于8小时。"},
    {"id": "xc-plan:s2.c6.i2", "doc_id": "xc-plan", "ref": "二、(六) 第2项", "text": "2.加强社区服务教育培训。将社区工作者培训纳入县级培训计划。"},
])


def _not_found(question: str, minutes_ago: int = 0, related: str = "xc-plan:s2.c6.i2") -> dict:
    row = _row(question, found=False, minutes_ago=minutes_ago)
    return row | {"related": json.dumps([{"clause_id": related, "doc_id": "xc-plan", "score": 0.5}])}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_log_from_before_labels_is_migrated_with_its_rows(kind, tmp_path, pg_database):
    from sqlalchemy import text

    from bot.usage.store import Store

    if kind == "sqlite":
        old = Store(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    else:
        old = Store(pg_database)
        with old.engine.begin() as conn:  # back to the schema of revision 0001
            conn.execute(text("DROP TABLE IF EXISTS labels, feedback, answers, alembic_version CASCADE"))
    old.migrate("0001")
    row = _row("升级前的问题")
    with old.engine.begin() as conn:
        conn.execute(text("INSERT INTO answers (id, time, client, route, question, found, mode, citations, latency_ms) "
                          "VALUES (:id, :time, :client, :route, :question, :found, :mode, :citations, :latency_ms)"),
                     {k: row[k] for k in ("id", "time", "client", "route", "question", "found", "mode", "citations", "latency_ms")})
    old.migrate()
    [item], _ = old.questions()
    assert (item["question"], item["related"], item["label"]) == ("升级前的问题", [], None)
    assert old.set_label(row["id"], "correct", None, "key:a")["verdict"] == "correct"
    old.engine.dispose()


def test_a_label_is_attributed_timestamped_and_can_be_changed(store):
    row = _row()
    store.insert_answers([row])
    first = store.set_label(row["id"], "correct", None, "key:aaaa", "张老师")
    changed = store.set_label(row["id"], "wrong", "xc-plan:s2.c6.i2", "key:bbbb", "李老师")
    assert (first["verdict"], first["admin_name"]) == ("correct", "张老师")
    assert (changed["verdict"], changed["clause_id"], changed["admin"], changed["admin_name"]) == ("wrong", "xc-plan:s2.c6.i2", "key:bbbb", "李老师")
    assert changed["created"] == first["created"] and changed["updated"] > first["updated"]
    assert [label["verdict"] for label in store.labelled()] == ["wrong"]  # one label per answer: the latest


def test_a_wrong_label_must_name_the_right_clause(store):
    row = _row()
    store.insert_answers([row])
    with pytest.raises(ValueError, match="clause"):
        store.set_label(row["id"], "wrong", None, "key:aaaa")
    with pytest.raises(KeyError):
        store.set_label("0" * 32, "correct", None, "key:aaaa")


def test_questions_filter_by_thumbs_down_document_and_time_window(store):
    rated, other_doc, old = _row("开放时间？"), _row("物业费？", clause="henan-property-regs:a12"), _row("旧问题", minutes_ago=120)
    store.insert_answers([rated, other_doc, old])
    store.insert_feedback([{"answer_id": rated["id"], "time": now(), "client": "x", "rating": "down", "comment": "不对"}])
    assert [i["question"] for i in store.questions(rating="down")[0]] == ["开放时间？"]
    assert [i["question"] for i in store.questions(doc="henan-property-regs")[0]] == ["物业费？"]
    window = store.questions(since=now() - timedelta(minutes=180), until=now() - timedelta(minutes=60))[0]
    assert [i["question"] for i in window] == ["旧问题"]
    assert store.questions(rating="down")[0][0]["feedback"] == [{"rating": "down", "comment": "不对"}]


def test_labels_are_purged_with_their_answers(store):
    old = _row("旧问题", minutes_ago=60 * 24 * 200)
    store.insert_answers([old])
    store.set_label(old["id"], "not_in_documents", None, "key:aaaa")
    store.purge(now() - timedelta(days=180))
    assert store.labelled() == []


def test_exported_labels_pass_the_strict_eval_validation_and_mark_regressions(store, tmp_path):
    right, wrong, absent = _row("开放时间多久？"), _not_found("社区工作者培训纳入什么计划？"), _row("低保多少钱？")
    store.insert_answers([right, wrong, absent])
    store.set_label(right["id"], "correct", None, "key:a")
    store.set_label(wrong["id"], "wrong", "xc-plan:s2.c6.i2", "key:a")
    store.set_label(absent["id"], "not_in_documents", None, "key:a")
    rows, skipped = export_rows(store.labelled(), NAMES)
    write_rows(rows, tmp_path / "rows.jsonl")
    gold = {g.question: g for g in load_gold(tmp_path / "rows.jsonl")}
    assert skipped == 0 and len(gold) == 3
    assert gold["开放时间多久？"].answerable and "regression" not in gold["开放时间多久？"].tags
    fixed = gold["社区工作者培训纳入什么计划？"]
    assert fixed.evidence == ["2.加强社区服务教育培训。将社区工作者培训纳入县级培训计划。"] and "regression" in fixed.tags
    assert fixed.keywords == [["许昌市“十四五”城乡社区服务体系建设规划"], ["二、(六) 第2项"]]
    assert not gold["低保多少钱？"].answerable and "regression" in gold["低保多少钱？"].tags


def test_a_label_whose_clause_left_the_index_is_skipped_not_exported_broken(store):
    row = _not_found("问题")
    store.insert_answers([row])
    store.set_label(row["id"], "wrong", "gone-doc:a1", "key:a")
    assert export_rows(store.labelled(), NAMES) == ([], 1)


def test_the_same_question_labelled_twice_exports_once_with_its_newest_label(store):
    a, b = _row("开放时间多久？", minutes_ago=5), _row("开放时间多久", minutes_ago=1)
    store.insert_answers([a, b])
    store.set_label(a["id"], "correct", None, "key:a")
    store.set_label(b["id"], "not_in_documents", None, "key:a")
    rows, _ = export_rows(store.labelled(), NAMES)
    assert [(r.question, r.answerable) for r in rows] == [("开放时间多久", False)]


def test_the_report_counts_a_repeated_question_once_with_its_closest_clauses(store):
    questions = ["社区工作者培训多少学时？", "社区工作者培训多少学时", "社区工作者 培训多少学时呢？", "广场舞音量多少分贝？"]
    store.insert_answers([_not_found(q) for q in questions])
    data = usage.build(store, now() - timedelta(hours=1), names=NAMES)
    top = data["unanswered_groups"][0]
    assert (top["question"], top["count"], top["related"]) == ("社区工作者培训多少学时？", 3, ["xc-plan:s2.c6.i2"])
    assert data["unanswered_groups"][1]["count"] == 1


def test_the_report_page_is_real_html_with_named_clauses_and_drawn_charts(store):
    rows = [_row(minutes_ago=i) for i in range(5)] + [_not_found("社区工作者培训多少学时？")]
    store.insert_answers(rows)
    store.insert_feedback([{"answer_id": rows[0]["id"], "time": now(), "client": "x", "rating": "down", "comment": "没说周末"}])
    page = usage.html_page(usage.build(store, now() - timedelta(hours=3), names=NAMES))
    text = re.sub(r"<[^>]+>", "\n", page)
    assert "<table>" in page and "<h2>课堂可用：问得多、没答上</h2>" in page
    assert "二、(四) 第1项" in page and "1.推进社区综合服务设施开放共享" in page and "没说周末" in page
    assert not re.search(r"xc-plan:|^\s*#|\|---|^\s*- ", text, re.M), "raw ids or Markdown on the page"
    assert page.count('src="data:image/svg+xml;base64,') == 2  # activity and documents, drawn by matplotlib
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing loaded from elsewhere


def test_a_session_is_charted_per_hour_and_a_week_per_day(store):
    store.insert_answers([_row(minutes_ago=m) for m in (10, 70, 3000)])
    session = usage.build(store, now() - timedelta(hours=3))
    week = usage.build(store, now() - timedelta(days=7))
    assert session["per"] == "hour" and session["questions"] == 2 and len(session["per_bucket"]) in (3, 4)
    assert week["per"] == "day" and week["questions"] == 3 and len(week["per_bucket"]) in (3, 4)  # from its first question
    assert sum(b["questions"] for b in week["per_bucket"]) == 3


def test_the_report_window_has_an_end(store):
    store.insert_answers([_row("早", minutes_ago=120), _row("晚", minutes_ago=5)])
    data = usage.build(store, now() - timedelta(hours=3), now() - timedelta(hours=1))
    assert [r["question"] for r in data["rows"]] == ["早"]


def test_without_an_index_documents_are_still_named_from_the_catalog(tmp_path):
    from tests.conftest import CORPUS

    names = ClauseNames.from_build(tmp_path / "no-index", CORPUS)
    assert str(names.clause("xc-plan:s2.c4.i1")) == "《许昌市“十四五”城乡社区服务体系建设规划》"
