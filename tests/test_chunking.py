"""The clause parser follows the plan's own structure and quotes it verbatim."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bot.corpus.chunking import parse_clauses


@pytest.fixture(scope="module")
def clauses(plan):
    doc, text = plan
    return parse_clauses(doc, text, max_chars=300)


def test_offsets_round_trip(plan, clauses):
    _, text = plan
    assert all(text[c.start : c.end] == c.text for c in clauses)


def test_clause_ids_are_unique_and_prefixed(clauses):
    ids = [c.id for c in clauses]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("xc-plan:") for i in ids)


def test_clauses_do_not_overlap_and_follow_reading_order(clauses):
    for a, b in zip(clauses, clauses[1:]):
        assert a.end <= b.start


def test_six_boxes_with_their_item_counts(clauses):
    per_box = Counter(re.match(r"xc-plan:b(\d+)\.", c.id).group(1) for c in clauses if c.kind in ("box_item", "table_row"))
    assert per_box == {"1": 9, "2": 3, "3": 15, "4": 2, "5": 3, "6": 4}


def test_inline_box_items_each_start_with_their_number(clauses):
    for c in clauses:
        if c.kind == "box_item":
            n = c.id.rsplit(".i", 1)[1]
            assert c.text.startswith(f"{n}."), c.id


def test_box_items_never_keep_the_table_bar(clauses):
    assert not any(c.text.rstrip().endswith("|") for c in clauses)


def test_nine_indicator_rows_carry_the_header(clauses):
    rows = [c for c in clauses if c.kind == "table_row"]
    assert [c.id for c in rows] == [f"xc-plan:b1.r{i}" for i in range(1, 10)]
    for c in rows:
        assert "2025年 目标值" in c.context and "指标属性" in c.context
        assert c.context not in c.text


def test_indicator_row_values_are_verbatim(clauses):
    row = next(c for c in clauses if c.id == "xc-plan:b1.r7")
    assert row.text == "7 | 社会工作者总量占常住人口总数比例 | 0.4‰ | 1‰ | 预期性"


def test_six_principles(clauses):
    principles = [c for c in clauses if c.kind == "principle"]
    assert len(principles) == 6
    assert all(c.text.startswith("——坚持") for c in principles)
    assert principles[0].section == "一、总体要求 > (二)基本原则 > 坚持党的全面领导"


def test_every_numbered_item_is_found(clauses):
    items = Counter(c.id.split(":")[1].split(".x")[0] for c in clauses if c.kind == "item")
    expected = {f"s2.c{s}.i{i}" for s, n in {2: 3, 3: 3, 4: 3, 5: 2, 6: 3}.items() for i in range(1, n + 1)}
    expected |= {f"s3.i{i}" for i in range(1, 4)}
    assert set(items) == expected


def test_section_path_and_short_reference(clauses):
    c = next(c for c in clauses if c.id == "xc-plan:s2.c4.i1")
    assert c.section == "二、主要任务 > (四)创新社区服务机制 > 1.完善城乡社区服务统筹机制"
    assert c.headings == ["二、主要任务", "(四)创新社区服务机制"]
    assert c.ref == "二、(四) 第1项"
    box = next(c for c in clauses if c.id == "xc-plan:b4.i1")
    assert box.ref == "二、(三) 专栏4 第1项"


def test_long_clauses_split_at_sentence_ends_within_one_item(plan, clauses):
    _, text = plan
    parts = [c for c in clauses if c.id.startswith("xc-plan:s2.c2.i1.x")]
    assert len(parts) > 1
    assert all(len(c.text) <= 300 for c in parts)
    assert all(c.text.endswith("。") for c in parts)
    # The parts tile the original line: nothing lost, nothing borrowed from a neighbour.
    line_start = text.rfind("\n", 0, parts[0].start) + 1
    line_end = text.find("\n", parts[-1].end)
    assert (parts[0].start, parts[-1].end) == (line_start, line_end)
    assert all(text[a.end : b.start].strip() == "" for a, b in zip(parts, parts[1:]))


def test_source_quirks_are_kept_verbatim(clauses):
    assert any("“互联网 政务服务”" in c.text for c in clauses)
    assert any("村(社区)" in c.text for c in clauses)


def test_notice_and_preamble_are_clauses_but_the_header_lines_are_not(clauses):
    notice = next(c for c in clauses if c.kind == "notice")
    assert "2023年3月22日" in notice.text
    assert not any("11411000005747138B" in c.text for c in clauses)
    assert next(c for c in clauses if c.kind == "preamble").text.startswith("为高质量建设")


def test_headings_alone_are_not_clauses(clauses):
    assert not any(c.text in ("一、总体要求", "(二)基本原则", "二、主要任务") for c in clauses)
