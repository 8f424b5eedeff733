"""Commands that build the index and answer: ``index``, ``add``, ``ask``, ``chat``, ``search``, ``eval``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from bot.cli.app import app, console, err, fail, load_bot
from bot.config import get_settings


@app.command()
def index(force: Annotated[bool, typer.Option(help="Rebuild even if the index is up to date.")] = False) -> None:
    """Build the BM25 and dense indexes from corpus/ (bm25s + FAISS, or Milvus; only if missing or stale, unless --force)."""
    import time

    from bot.index.build import build_index, current_build
    from bot.index.builds import build_documents, is_fresh
    from bot.index.embedding import load_embedder

    settings = get_settings()
    t0 = time.perf_counter()
    embedder = load_embedder(settings)
    try:
        fresh = not force and is_fresh(settings, embedder.model_name)
    except (OSError, ValueError) as exc:
        raise fail(escape(str(exc))) from exc
    if fresh:
        console.print(f"index is up to date (verified): {current_build(settings.index_dir)}")
        return
    previous = current_build(settings.index_dir)
    old_docs = build_documents(previous) if previous else {}
    try:
        path = build_index(settings, embedder, show_progress=True)
    except (OSError, ValueError) as exc:  # incl. an unreachable Milvus
        raise fail(escape(str(exc))) from exc
    new_docs = build_documents(path)
    changed = sorted(d for d, h in new_docs.items() if old_docs.get(d) != h)
    removed = sorted(set(old_docs) - set(new_docs))
    console.print(f"built {path} in {time.perf_counter() - t0:.1f}s; changed: {', '.join(changed) or 'none'}"
                  + (f"; removed: {', '.join(removed)}" if removed else ""))


@app.command()
def add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".txt, .md, .docx, .pdf (with a text layer) or saved .html")],
    doc_id: Annotated[Optional[str], typer.Option("--id", help="Document id (a-z, 0-9, -); default: from the file name.")] = None,
    title: Annotated[Optional[str], typer.Option(help="Title; default: the first line of the text.")] = None,
    doc_number: Annotated[str, typer.Option("--doc-number", help="文号, e.g. 许政办〔2023〕8号")] = "",
    level: Annotated[str, typer.Option(help="国家, 省 or 市; default 未核实 until an operator confirms it")] = "未核实",
    date_: Annotated[Optional[str], typer.Option("--date", help="Issue date, YYYY-MM-DD")] = None,
    issuer: Annotated[str, typer.Option(help="发布机关")] = "",
    status: Annotated[str, typer.Option(help="现行有效, 已修订 or 已废止; default 未核实")] = "未核实",
    source: Annotated[Optional[str], typer.Option(help="Where the file came from")] = None,
) -> None:
    """Add a document to corpus/ (text + catalog entry); then run `policy-bot index`."""
    from bot.corpus.ingest import IngestError, add_document

    try:
        doc = add_document(get_settings().corpus_dir, file, doc_id=doc_id, title=title, doc_number=doc_number, level=level,
                           issued=date_, issuer=issuer, status=status, source=source,
                           max_bytes=get_settings().max_document_bytes, max_unzipped_bytes=get_settings().max_unzipped_bytes)
    except IngestError as exc:
        raise fail(escape(str(exc))) from exc
    console.print(f"added {doc.id}: 《{escape(doc.title)}》 ({doc.level}, {doc.status}) -> {doc.file}; run `policy-bot index`")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in Chinese.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer contract as JSON.")] = False,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, max=50, help="Clauses to retrieve.")] = None,
    doc: Annotated[Optional[list[str]], typer.Option("--doc", help="Only this document id (repeatable).")] = None,
    level: Annotated[Optional[list[str]], typer.Option("--level", help="Only this level: 国家, 省, 市 (repeatable).")] = None,
    include_repealed: Annotated[bool, typer.Option("--include-repealed", help="Also cite repealed (已废止) documents.")] = False,
) -> None:
    """Answer a question with verbatim, cited clauses (or say it is not in the corpus)."""
    from pydantic import ValidationError

    from bot.models import Filters
    from bot.pipeline import InvalidQuestion

    try:
        filters = Filters(doc=doc or [], level=level or [], include_repealed=include_repealed)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"--{first['loc'][0]} {escape(repr(first.get('input')))}: {escape(first['msg'])}") from exc
    bot = load_bot()
    try:
        answer = bot.ask(question, top_k=top_k, filters=filters)
    except InvalidQuestion as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}, ensure_ascii=False))
            raise typer.Exit(2) from exc
        raise fail(escape(str(exc))) from exc
    if as_json:
        print(answer.model_dump_json(indent=2))
        return
    _print_answer(answer)


def _print_answer(answer) -> None:
    """An answer as the terminal shows it: text, then numbered sources (or the closest clauses)."""
    if answer.resolved_question:
        console.print(f"[dim]按「{escape(answer.resolved_question)}」理解[/dim]")
    if not answer.found and answer.reason != "delegated":
        console.print(f"[yellow]{escape(answer.answer)}[/yellow] [dim]({answer.reason})[/dim]")
        if answer.related:
            console.print("\n相关条款（未直接回答）：")
            for c in answer.related:
                console.print(f"[dim]- 《{escape(c.title)}》{escape(c.ref)}：{escape(c.text[:80])}[/dim]")
        return
    if answer.reason == "delegated":  # no figure in the documents: who sets it, quoted
        console.print(f"[yellow]{escape(answer.answer)}[/yellow] [dim]({answer.reason})[/dim]")
    else:
        console.print(escape(answer.answer))
    if answer.guard and answer.guard.intervened:
        console.print(f"[dim]grounding guard: {answer.guard.action} ({escape('; '.join(answer.guard.problems)[:200])})[/dim]")
    console.print()
    for c in answer.citations:
        number = f"{escape(c.doc_number)} · " if c.doc_number else ""
        mark = "[yellow]（用户添加，未经核实）[/yellow]" if c.added_by_user else ""
        console.print(f"[bold][{c.n}][/bold] 《{escape(c.title)}》（{c.level}级）{mark}{number}{escape(c.section)} · [dim]{c.clause_id}[/dim]")
    console.print(f"[dim]{answer.latency_ms:.0f} ms[/dim]")


@app.command()
def chat() -> None:
    """An interactive conversation: follow-ups (那农村呢？ 具体多少？) are understood from earlier
    questions. Arrow keys recall earlier input; 新对话 or /new starts over; Ctrl-D or /quit ends."""
    import readline  # noqa: F401 - gives input() line editing and history with the arrow keys

    from bot.pipeline import InvalidQuestion

    bot = load_bot()
    history: list[str] = []
    console.print("[dim]policy-bot 对话：输入问题，可以接着追问；/new 开始新对话，/quit 退出。[/dim]")
    while True:
        try:
            line = input("问> ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not line:
            continue
        if line in ("/quit", "/exit", "退出"):
            return
        if line in ("/new", "新对话"):
            history = []
            console.print("[dim]已开始新对话。[/dim]")
            continue
        try:
            answer = bot.ask(line, history=history)
        except InvalidQuestion as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            continue
        _print_answer(answer)
        history.append(line)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Search words or a question.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50)] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
) -> None:
    """Show the ranked clauses for a query, with each retriever's rank (no answer composition)."""
    from bot.pipeline import InvalidQuestion

    bot = load_bot(retrieval=mode)
    try:
        hits = bot.search(query, top_k)
    except InvalidQuestion as exc:
        raise fail(escape(str(exc))) from exc
    table = Table("#", "score", "bm25", "dense", "clause", "text")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), f"{h.score:.4f}", str(h.bm25_rank or "-"), str(h.dense_rank or "-"), h.clause.id, escape(h.clause.text[:60]))
    console.print(table)


@app.command("eval")
def eval_(
    gold: Annotated[Path, typer.Option("--gold", exists=True, dir_okay=False, help="Gold set (JSON Lines).")],
    top_k: Annotated[int, typer.Option("--top-k", min=5, max=50, help="Clauses retrieved per question (at least 5: hit@5 is a metric).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics and per-question rows as JSON.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write report.json and report.md here.")] = None,
    mode: Annotated[str, typer.Option(help="Retrieval: hybrid, bm25 or dense.")] = "hybrid",
    generative: Annotated[bool, typer.Option("--generative", help="Answer through the configured LLM (POLICYBOT_LLM_*).")] = False,
) -> None:
    """Score retrieval, answers and refusals on a gold set."""
    from rich.progress import track

    from bot.evaluation import GoldSetError, evaluate, format_metric, load_gold, report_keys, write_reports

    try:
        questions = load_gold(gold)
    except GoldSetError as exc:
        raise fail(escape(str(exc))) from exc
    bot = load_bot(retrieval=mode, use_llm=generative)
    if generative and bot.generator is None:
        raise fail("--generative needs POLICYBOT_LLM_BASE_URL and POLICYBOT_LLM_MODEL")

    def run(q: str, history: list[str]):
        k = top_k
        if generative:
            return bot.ask(q, top_k=k, history=history), bot.run(q, top_k=k, history=history)[1]
        return bot.run(q, top_k=k, history=history)

    report = evaluate(
        questions,
        run,
        progress=lambda xs: track(xs, description="Evaluating", console=err, transient=True),
    )
    if out:
        write_reports(report, out, f"policy-bot eval: {gold.name} ({mode})")
    if as_json:
        print(json.dumps({k: report[k] for k in [*report_keys(report), "questions"]}, ensure_ascii=False, indent=1))
        return
    table = Table("metric", "overall", *report["by_tag"])
    for k in report_keys(report):
        table.add_row(k, *[format_metric(v) for v in (report[k], *(m.get(k) for m in report["by_tag"].values()))])
    console.print(table)
    failures = [r for r in report["questions"] if r["failure"]]
    for r in failures:
        console.print(f"[red]{r['id']}[/red] {escape(r['question'])} → {r['failure']} (rank {r['rank'] or '-'})")
