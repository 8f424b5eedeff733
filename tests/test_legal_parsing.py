"""Laws and regulations are split into 条 and 款 with 项 kept inside; counts pinned per document."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bot.corpus.catalog import load_catalog, read_text
from bot.corpus.chunking import parse_clauses
from tests.conftest import CORPUS

ARTICLES = {
    "urban-rc-law": 23, "villagers-committee-law": 41, "henan-urban-rc-measures": 28,
    "henan-villagers-committee-measures": 61, "volunteer-service-regs": 44, "henan-volunteer-service-regs": 45,
    "henan-property-regs": 95, "henan-elderly-rights-regs": 60, "xuchang-civility-regs": 37,
}
DOCS = {d.id: d for d in load_catalog(CORPUS)}


def clauses_of(doc_id: str):
    doc = DOCS[doc_id]
    return parse_clauses(doc, read_text(CORPUS, doc))


@pytest.mark.parametrize(("doc_id", "n"), sorted(ARTICLES.items()))
def test_every_article_is_found_once_in_order(doc_id, n):
    numbers = [int(re.match(r"a(\d+)", c.id.split(":")[1]).group(1)) for c in clauses_of(doc_id) if c.kind == "article"]
    assert sorted(set(numbers)) == list(range(1, n + 1))
    assert numbers == sorted(numbers)


@pytest.mark.parametrize("doc_id", sorted(DOCS))
def test_offsets_round_trip_and_the_header_block_is_never_quoted(doc_id):
    text = read_text(CORPUS, DOCS[doc_id])
    for c in clauses_of(doc_id):
        assert text[c.start:c.end] == c.text
        assert "标题:" not in c.text and "=====" not in c.text and "<!--" not in c.text


def test_paragraphs_become_kuan_with_citable_refs():
    by_id = {c.id: c for c in clauses_of("henan-property-regs")}
    k2 = by_id["henan-property-regs:a28.k2"]
    assert k2.ref == "第二十八条第二款"
    assert k2.text == "符合条件的社区居民委员会成员可以兼任业主委员会成员。"
    assert k2.section == "第三章 业主、业主大会及业主委员会 > 第二十八条第二款"


def test_items_stay_inside_the_paragraph_that_introduces_them():
    a3 = {c.id: c for c in clauses_of("urban-rc-law")}["urban-rc-law:a3"]
    assert a3.text.startswith("第三条 居民委员会的任务：")
    assert "（六）向人民政府" in a3.text


def test_single_paragraph_article_has_no_kuan_suffix():
    by_id = {c.id: c for c in clauses_of("urban-rc-law")}
    assert by_id["urban-rc-law:a1"].ref == "第一条"


def test_adoption_history_is_one_clause():
    history = [c for c in clauses_of("urban-rc-law") if c.id.endswith(":history")]
    assert len(history) == 1 and "2018年12月29日" in history[0].text


def test_policy_opinions_use_the_plan_structure_through_markdown_headings():
    kinds = Counter(c.kind for c in clauses_of("central-community-governance-2017"))
    assert kinds["principle"] == 5
    c = next(c for c in clauses_of("central-community-governance-2017") if "每百户居民拥有综合服务设施面积不低于30平方米" in c.text)
    assert c.section.startswith("四、着力补齐城乡社区治理短板 > （二）加快社区综合服务设施建设")


def test_conduct_named_only_by_its_provision_number_is_read_with_that_provision():
    penalties = {c.id: c for c in clauses_of("xuchang-civility-regs")}["xuchang-civility-regs:a35"]
    assert "本条例第十条第四项：（四）非机动车不得加装遮阳篷（伞）" in penalties.refers
    assert "遮阳" not in penalties.text + penalties.context  # neither quoted nor read as the clause's own words


def test_a_clause_that_restates_the_conduct_it_refers_to_needs_no_context():
    clauses = {c.id: c for c in clauses_of("henan-property-regs")}
    assert "违反本条例第十三条规定，专业经营单位拒不接收" in clauses["henan-property-regs:a79"].text
    assert clauses["henan-property-regs:a79"].refers == ""
