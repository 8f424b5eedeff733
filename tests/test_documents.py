"""Several documents: filters, levels in citations, different rules shown side by side, freshness,
and adding documents from the formats users have."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.corpus.ingest import IngestError, add_document, extract_text
from bot.index.build import sentence_embedding_texts
from bot.models import Document, Filters
from bot.pipeline import InvalidQuestion, PolicyBot


def test_citations_carry_document_and_level(bot):
    a = bot.ask("业主委员会每届任期多长")
    assert a.found
    c = a.citations[0]
    assert c.doc_id == "henan-property-regs" and c.level == "省" and c.ref.startswith("第二十八条")
    assert "《河南省物业管理条例》第二十八条" in a.answer


def test_different_figures_in_two_documents_are_both_shown(bot):
    a = bot.ask("居民委员会由几个人组成")
    docs = {c.doc_id for c in a.citations}
    assert {"urban-rc-law", "henan-urban-rc-measures"} <= docs
    assert "五至九人" in a.answer and "5至7人" in a.answer and "规定不完全相同" in a.answer


@pytest.mark.parametrize(("higher", "lower"), [
    (("国家", "2018-12-29"), ("省", "2020-06-03")),  # 上位法优先, even over a later provincial rule
    (("省", "2020-06-03"), ("省", "2011-09-01")),  # 新法优先 at one level
    (("省", "2011-09-01"), ("市", "2023-03-22")),
])
def test_the_higher_level_then_the_later_document_prevails(higher, lower):
    def doc(level: str, issued: str) -> Document:
        return Document(id="d", title="t", issuer="i", issued=issued, level=level, source="s", file="f")

    assert doc(*higher).prevails_over(doc(*lower)) and not doc(*lower).prevails_over(doc(*higher))


def test_document_filter_limits_citations(bot):
    a = bot.ask("居民委员会由几个人组成", filters=Filters(doc=["henan-urban-rc-measures"]))
    assert {c.doc_id for c in a.citations} == {"henan-urban-rc-measures"}


def test_level_filter_limits_citations(bot):
    a = bot.ask("居民委员会由几个人组成", filters=Filters(level=["国家"]))
    assert a.found and {c.level for c in a.citations} == {"国家"}


def test_unknown_filter_values_are_errors(bot):
    with pytest.raises(InvalidQuestion, match="unknown document"):
        bot.ask("社区", filters=Filters(doc=["nope"]))
    with pytest.raises(InvalidQuestion, match="unknown level"):
        bot.ask("社区", filters=Filters(level=["县"]))


def test_naming_a_document_routes_the_question_to_it(bot):
    a = bot.ask("志愿服务条例什么时候开始施行")
    assert a.found and a.citations[0].doc_id == "volunteer-service-regs"
    assert "2017年12月1日" in a.answer


def test_repealed_documents_are_not_cited_unless_asked(corpus_copy, embedder):
    catalog = json.loads((corpus_copy.corpus_dir / "catalog.json").read_text(encoding="utf-8"))
    for d in catalog["documents"]:
        if d["id"] == "henan-property-regs":
            d["status"] = "已废止"
    (corpus_copy.corpus_dir / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    bot = PolicyBot(corpus_copy, embedder=embedder)
    q = "业主委员会每届任期多长"
    assert "henan-property-regs" not in {c.doc_id for c in bot.ask(q).citations}
    assert bot.ask(q, filters=Filters(include_repealed=True)).citations[0].doc_id == "henan-property-regs"


def _docx(path):
    import docx

    d = docx.Document()
    d.add_paragraph("长葛市社区议事规则")
    d.add_paragraph("第一条 社区议事会每月召开一次。")
    table = d.add_table(rows=2, cols=3)
    for i, cells in enumerate((["序号", "事项", "时限"], ["1", "议事公开", "3日内"])):
        for j, text in enumerate(cells):
            table.cell(i, j).text = text
    d.add_paragraph("第二条 议事结果应当在3日内公开。")
    d.save(str(path))


def test_docx_text_keeps_paragraphs_and_tables_in_order(tmp_path):
    _docx(tmp_path / "rules.docx")
    lines = extract_text(tmp_path / "rules.docx").splitlines()
    assert lines == ["长葛市社区议事规则", "第一条 社区议事会每月召开一次。", "序号 | 事项 | 时限 |", "1 | 议事公开 | 3日内 |",
                     "第二条 议事结果应当在3日内公开。"]


def test_pdf_with_a_text_layer_is_extracted(tmp_path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(tmp_path / "notice.pdf"), pagesize=A4)
    c.setFont("STSong-Light", 12)
    c.drawString(72, 760, "第一条 社区服务站每天开放不少于八小时。")
    c.drawString(72, 740, "第二条 本办法自发布之日起施行。")
    c.save()
    text = extract_text(tmp_path / "notice.pdf")
    assert "社区服务站每天开放不少于八小时" in text.replace(" ", "")


def test_scanned_pdf_without_text_layer_is_refused_clearly(tmp_path):
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=595, height=842)
    with open(tmp_path / "scan.pdf", "wb") as fh:
        w.write(fh)
    with pytest.raises(IngestError, match="no text layer"):
        extract_text(tmp_path / "scan.pdf")


def test_html_main_text_without_navigation(tmp_path):
    page = """<html><head><title>通知</title></head><body>
    <div class="nav"><a href="/">首页</a> | <a href="/zwgk">政务公开</a></div>
    <div class="article"><h1>关于开展社区志愿服务的通知</h1>
    <p>各社区要在每年3月5日前后集中开展志愿服务活动，活动情况于3月31日前报送街道办事处。</p>
    <p>志愿服务时长按照实际服务时间记录，不得虚报。各单位要高度重视，认真组织，确保活动取得实效。</p></div>
    <div class="footer">版权所有 许昌市某某街道办事处 备案号12345</div></body></html>"""
    (tmp_path / "notice.html").write_text(page, encoding="utf-8")
    text = extract_text(tmp_path / "notice.html")
    assert "3月5日前后集中开展志愿服务活动" in text
    assert "版权所有" not in text and "首页" not in text


def test_unsupported_type_is_refused(tmp_path):
    (tmp_path / "x.xls").write_bytes(b"\x00\x01")
    with pytest.raises(IngestError, match="unsupported file type"):
        extract_text(tmp_path / "x.xls")


def test_added_document_is_indexed_and_answers_with_only_its_clauses_embedded(corpus_copy, embedder, tmp_path):
    from tests.test_indexing import CountingEmbedding

    _docx(tmp_path / "changge-rules.docx")
    doc = add_document(corpus_copy.corpus_dir, tmp_path / "changge-rules.docx", level="市", issued="2024-01-01")
    assert doc.id == "changge-rules" and doc.title == "长葛市社区议事规则"
    counting = CountingEmbedding(embedder)
    bot = PolicyBot(corpus_copy, embedder=counting)
    added = [c for c in bot.index.clauses if c.doc_id == "changge-rules"]
    own = [t for c in added for t in sentence_embedding_texts(c, doc.title, corpus_copy.sentence_min_chars)]
    assert 0 < counting.embedded == len(added) + len(own)  # the new document's clauses and sentences, nothing else
    a = bot.ask("社区议事会多久召开一次", filters=Filters(doc=["changge-rules"]))
    assert a.found and "每月召开一次" in a.answer and a.citations[0].ref.startswith("第一条")
    with pytest.raises(IngestError, match="already in the catalog"):
        add_document(corpus_copy.corpus_dir, tmp_path / "changge-rules.docx")


def test_add_command_reports_what_it_added(corpus_copy, tmp_path, monkeypatch):
    from bot import config
    from bot.cli import app

    _docx(tmp_path / "rules.docx")
    monkeypatch.setenv("POLICYBOT_CORPUS_DIR", str(corpus_copy.corpus_dir))
    config.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["add", str(tmp_path / "rules.docx"), "--id", "rules-2024", "--level", "市"])
    finally:
        config.get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "added rules-2024" in result.output
