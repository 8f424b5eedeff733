"""Printable material for trainers: quizzes (md / csv / docx, answer key on its own page) and
study handouts (indicator table, each 专栏's items one per line, key figures highlighted)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from bot.answer.figures import KEY_FIGURE as _KEY_FIGURE
from bot.answer.figures import table_row
from bot.models import Clause, Document
from bot.training.quiz import QuizItem

_TYPE_NAMES = {"choice": "单选题", "blank": "填空题", "judge": "判断题"}
_ITEM_TITLE = re.compile(r"^\d{1,2}[.．]([^。]+)。")


def quiz_markdown(items: list[QuizItem], title: str) -> str:
    lines = [f"# {title}", ""]
    for it in items:
        lines.append(f"{it.n}. （{_TYPE_NAMES[it.type]}）{it.question}")
        lines += [f"   {chr(65 + i)}. {o}" for i, o in enumerate(it.options)]
        if it.type == "judge":
            lines.append("   （正确 / 错误）")
        lines.append("")
    lines += ["<div style=\"page-break-before: always\"></div>", "", "## 答案与解析", ""]
    for it in items:
        lines += [f"{it.n}. **{it.answer}**　出处：{it.ref}（{it.clause_id}）", f"   > {it.explanation}", ""]
    return "\n".join(lines)


def quiz_csv(items: list[QuizItem]) -> str:
    """One row per item, columns most exam systems import: 题型, 题干, 选项A-D, 答案, 解析, 出处."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["序号", "题型", "题干", "选项A", "选项B", "选项C", "选项D", "答案", "解析", "出处"])
    for it in items:
        options = (it.options + [""] * 4)[:4]
        writer.writerow([it.n, _TYPE_NAMES[it.type], it.question, *options, it.answer, it.explanation, f"{it.ref} {it.clause_id}"])
    return buf.getvalue()


def quiz_docx(items: list[QuizItem], title: str, path: Path) -> None:
    import docx
    from docx.enum.text import WD_BREAK

    d = docx.Document()
    d.add_heading(title, level=1)
    for it in items:
        d.add_paragraph(f"{it.n}. （{_TYPE_NAMES[it.type]}）{it.question}")
        for i, o in enumerate(it.options):
            d.add_paragraph(f"{chr(65 + i)}. {o}")
        if it.type == "judge":
            d.add_paragraph("（正确 / 错误）")
    d.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    d.add_heading("答案与解析", level=1)
    for it in items:
        p = d.add_paragraph(f"{it.n}. ")
        p.add_run(it.answer).bold = True
        p.add_run(f"　出处：{it.ref}（{it.clause_id}）")
        d.add_paragraph(it.explanation, style="Quote")
    d.save(str(path))


def handout_sections(doc: Document, clauses: list[Clause]) -> list[tuple[str, list[str]]]:
    """(heading, lines) of a study sheet: the indicator table rows, each 专栏 item in one line,
    and every other clause's sentences that carry a key figure."""
    sections: dict[str, list[str]] = {}
    for c in clauses:
        if c.kind in ("notice", "preamble"):
            continue
        head = " > ".join(c.headings) or doc.title
        if c.kind == "table_row":
            sections.setdefault(head, []).append(table_row(c))
        elif c.kind == "box_item":
            m = _ITEM_TITLE.match(c.text)
            figures = [s for s in re.split(r"(?<=[。；])", c.text) if _KEY_FIGURE.search(s)]
            summary = (m.group(0) if m else c.text[:40]) + "".join(f for f in figures if not (m and f.startswith(m.group(0))))
            sections.setdefault(head, []).append(summary)
        else:
            for sentence in re.split(r"(?<=[。；])", c.text):
                if _KEY_FIGURE.search(sentence):
                    sections.setdefault(head, []).append(sentence.strip())
    return list(sections.items())


def _highlight_md(text: str) -> str:
    return _KEY_FIGURE.sub(lambda m: f"**{m.group(0)}**", text)


def handout_markdown(doc: Document, clauses: list[Clause], subtitle: str = "") -> str:
    lines = [f"# 学习要点：《{doc.title}》", f"{doc.doc_number}　{subtitle}".strip(), ""]
    for head, items in handout_sections(doc, clauses):
        lines += [f"## {head}", ""] + [f"- {_highlight_md(x)}" for x in items] + [""]
    return "\n".join(lines)


def handout_docx(doc: Document, clauses: list[Clause], path: Path, subtitle: str = "") -> None:
    import docx

    d = docx.Document()
    d.add_heading(f"学习要点：《{doc.title}》", level=1)
    d.add_paragraph(f"{doc.doc_number}　{subtitle}".strip())
    for head, items in handout_sections(doc, clauses):
        d.add_heading(head, level=2)
        for text in items:
            p = d.add_paragraph(style="List Bullet")
            pos = 0
            for m in _KEY_FIGURE.finditer(text):
                p.add_run(text[pos:m.start()])
                p.add_run(m.group(0)).bold = True
                pos = m.end()
            p.add_run(text[pos:])
    d.save(str(path))
