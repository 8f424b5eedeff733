"""Trainers' material from the plan's clauses: ``quiz``, ``handout``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from bot.cli.app import app, err, fail, load_bot


def _plan_clauses(doc_id: str | None, section: str | None):
    from bot.training.quiz import UnknownSelection, select_section

    bot = load_bot()
    try:
        return select_section(bot.index.documents, bot.index.clauses, doc_id or bot.settings.primary_doc, section)
    except UnknownSelection as exc:
        raise fail(escape(str(exc))) from exc


@app.command()
def quiz(
    n: Annotated[int, typer.Option("--n", min=1, max=500, help="Number of questions.")] = 30,
    section: Annotated[Optional[str], typer.Option(help='Only this section, e.g. "二、(六)" or "专栏3".')] = None,
    types: Annotated[str, typer.Option(help="Comma-separated: choice,blank,judge.")] = "choice,blank,judge",
    seed: Annotated[int, typer.Option(help="Same seed, same quiz.")] = 7,
    fmt: Annotated[str, typer.Option("--format", help="md, json, csv or docx.")] = "md",
    out: Annotated[Optional[Path], typer.Option(help="Write here (required for docx); default: stdout.")] = None,
    doc: Annotated[Optional[str], typer.Option("--doc", help="Document id; default: the primary document (POLICYBOT_PRIMARY_DOC).")] = None,
) -> None:
    """Generate a quiz with answer key and the verbatim clause behind every answer."""
    from bot.training.export import quiz_csv, quiz_docx, quiz_markdown
    from bot.training.quiz import QuizMaker

    if fmt not in ("md", "json", "csv", "docx"):
        raise fail("--format must be md, json, csv or docx")
    document, pool, chosen = _plan_clauses(doc, section)
    items = QuizMaker(chosen, pool=pool).make(n, types.split(","), seed)
    title = f"《{document.title}》{section or ''} 练习题（{len(items)}题）"
    if fmt == "docx":
        if out is None:
            raise fail("--format docx needs --out FILE.docx")
        quiz_docx(items, title, out)
    else:
        text = {"md": lambda: quiz_markdown(items, title), "csv": lambda: quiz_csv(items),
                "json": lambda: json.dumps([i.model_dump() for i in items], ensure_ascii=False, indent=1)}[fmt]()
        if out:
            out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
        else:
            print(text)
    if out:
        err.print(f"{len(items)} questions -> {out}")


@app.command()
def handout(
    section: Annotated[Optional[str], typer.Option(help='Only this section, e.g. "二、(二)"; default: the whole plan.')] = None,
    fmt: Annotated[str, typer.Option("--format", help="md or docx.")] = "md",
    out: Annotated[Optional[Path], typer.Option(help="Write here (required for docx); default: stdout.")] = None,
    doc: Annotated[Optional[str], typer.Option("--doc", help="Document id; default: the primary document (POLICYBOT_PRIMARY_DOC).")] = None,
) -> None:
    """A study sheet: indicator table, each 专栏's items one per line, key figures highlighted."""
    from bot.training.export import handout_docx, handout_markdown

    document, _, chosen = _plan_clauses(doc, section)
    if fmt == "docx":
        if out is None:
            raise fail("--format docx needs --out FILE.docx")
        handout_docx(document, chosen, out, section or "")
        err.print(f"handout -> {out}")
    elif fmt == "md":
        text = handout_markdown(document, chosen, section or "")
        if out:
            out.write_text(text, encoding="utf-8")
        else:
            print(text)
    else:
        raise fail("--format must be md or docx")
