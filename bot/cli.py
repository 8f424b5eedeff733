"""Command line: ``policy-bot index | ask | search``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.config import get_settings
from bot.logs import setup_logging

app = typer.Typer(help="policy-bot：许昌市“十四五”城乡社区服务体系建设规划及相关法规问答（逐字引用原文条款）", no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False) -> None:
    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        err.print(f"[red]error:[/red] POLICYBOT_{str(first['loc'][0]).upper()}: {escape(first['msg'])}")
        raise typer.Exit(2) from exc
    setup_logging("INFO" if verbose else settings.log_level)


def _bot(**kwargs):
    from bot.pipeline import PolicyBot

    try:
        return PolicyBot(show_progress=sys.stderr.isatty(), **kwargs)
    except (OSError, ValueError) as exc:  # incl. an unreachable Milvus
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


@app.command()
def index(force: Annotated[bool, typer.Option(help="Rebuild even if the index is up to date.")] = False) -> None:
    """Build the BM25 and dense indexes from corpus/ (bm25s + FAISS, or Milvus; only if missing or stale, unless --force)."""
    import time

    from bot.embedding import load_embedder
    from bot.indexing import build_documents, build_index, current_build, is_fresh

    settings = get_settings()
    t0 = time.perf_counter()
    embedder = load_embedder(settings)
    try:
        fresh = not force and is_fresh(settings, embedder.model_name)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if fresh:
        console.print(f"index is up to date (verified): {current_build(settings.index_dir)}")
        return
    previous = current_build(settings.index_dir)
    old_docs = build_documents(previous) if previous else {}
    try:
        path = build_index(settings, embedder, show_progress=True)
    except (OSError, ValueError) as exc:  # incl. an unreachable Milvus
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
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
    from bot.ingest import IngestError, add_document

    try:
        doc = add_document(get_settings().corpus_dir, file, doc_id=doc_id, title=title, doc_number=doc_number, level=level,
                           issued=date_, issuer=issuer, status=status, source=source,
                           max_bytes=get_settings().max_document_bytes, max_unzipped_bytes=get_settings().max_unzipped_bytes)
    except IngestError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
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
        err.print(f"[red]error:[/red] --{first['loc'][0]} {escape(repr(first.get('input')))}: {escape(first['msg'])}")
        raise typer.Exit(2) from exc
    bot = _bot()
    try:
        answer = bot.ask(question, top_k=top_k, filters=filters)
    except InvalidQuestion as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        else:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
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

    bot = _bot()
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

    bot = _bot(retrieval=mode)
    try:
        hits = bot.search(query, top_k)
    except InvalidQuestion as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
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
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    bot = _bot(retrieval=mode, use_llm=generative)
    if generative and bot.generator is None:
        err.print("[red]error:[/red] --generative needs POLICYBOT_LLM_BASE_URL and POLICYBOT_LLM_MODEL")
        raise typer.Exit(2)

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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless behind a proxy.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[Optional[int], typer.Option(min=1, max=64, help="Worker processes (default: one per core this process "
                                                  "may use); they share the index's memory-mapped pages.")] = None,
) -> None:
    """Start the HTTP API and the web chat page (http://HOST:PORT/)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import uvicorn

    from bot.config import server_options

    settings = get_settings()
    milvus_lite = settings.vector_store == "milvus" and "://" not in (settings.milvus_uri or "")
    if milvus_lite and workers and workers > 1:
        err.print("[red]error:[/red] Milvus Lite (a local POLICYBOT_MILVUS_URI) is opened by one process; "
                  "use --workers 1, or a Milvus server (POLICYBOT_MILVUS_URI=http://host:19530) for several workers")
        raise typer.Exit(2)
    workers = workers or (1 if milvus_lite else default_workers())
    if workers > 1:
        # One embedding engine per worker process: split the cores instead of oversubscribing them.
        os.environ.setdefault("POLICYBOT_EMBED_THREADS", str(max(1, default_workers() // workers)))
        get_settings.cache_clear()
        settings = get_settings()
    # Build once here, so workers start from a ready index instead of racing to build it. The check
    # runs in a child process: this one supervises the workers and stays small beside them.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        error, warning = pool.submit(_prepare_serving, sys.stderr.isatty()).result()
    if error:
        err.print(f"[red]error:[/red] {escape(error)}")
        raise typer.Exit(2)
    if warning:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    err.print(f"policy-bot on http://{host}:{port}/ (docs: /docs), {workers} worker(s)")
    uvicorn.run("bot.api:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level.lower(), access_log=False, **server_options(settings))


def _prepare_serving(show_progress: bool) -> tuple[str | None, str | None]:
    """Build the index if it is missing, stale or damaged, and migrate the question log store;
    returns (error, warning) messages."""
    from bot.embedding import load_embedder
    from bot.indexing import ensure_built

    settings = get_settings()
    try:
        ensure_built(settings, load_embedder(settings), show_progress=show_progress)
    except (OSError, ValueError) as exc:
        return str(exc), None
    if settings.question_log:  # apply migrations once, before the workers start; answers never wait for the store
        from bot.store import Store, default_url

        try:
            Store(settings.database_url or default_url(settings.index_dir)).migrate()
        except Exception as exc:  # noqa: BLE001 - the log is optional: warn and serve
            return None, (f"question log store unavailable ({type(exc).__name__}); answers are served, rows are dropped "
                          "until it is back")
    return None, None


def default_workers() -> int:
    """One worker per core this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _store():
    from bot.store import Store, default_url

    settings = get_settings()
    store = Store(settings.database_url or default_url(settings.index_dir))
    try:
        store.migrate()
    except Exception as exc:  # noqa: BLE001 - any driver error: one line, exit 2
        err.print(f"[red]error:[/red] the question log store is unavailable: {escape(type(exc).__name__)}: {escape(str(exc)[:200])}")
        raise typer.Exit(2) from exc
    return store


def _since(value: str, tz: str = "UTC"):
    """"7d", "24h", an ISO date or an ISO time as a UTC time; a time without a zone is in ``tz``."""
    import re
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    try:
        m = re.fullmatch(r"(\d{1,9})([dh])", value)
        if m:
            return datetime.now(timezone.utc) - timedelta(**{"days" if m.group(2) == "d" else "hours": int(m.group(1))})
        t = datetime.fromisoformat(value)
        return (t if t.tzinfo else t.replace(tzinfo=ZoneInfo(tz))).astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        err.print(f"[red]error:[/red] --since/--until/--before {escape(value[:80])!r}: use 7d, 24h, a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM after year 1")
        raise typer.Exit(2) from exc


@app.command()
def report(
    since: Annotated[str, typer.Option(help="Start: 7d, 24h, a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM (POLICYBOT_TIMEZONE).")] = "7d",
    until: Annotated[Optional[str], typer.Option(help="End (excluded), same forms; default: now.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md, html or csv.")] = "md",
    out: Annotated[Optional[Path], typer.Option(help="Write here; default: stdout.")] = None,
    gold_candidates: Annotated[Optional[Path], typer.Option("--gold-candidates", help="Also write unanswered and 👎 questions as eval rows to label.")] = None,
) -> None:
    """What users asked, what went unanswered, which answers they marked wrong (from the question log).

    A training session: --since 2026-11-30T09:00 --until 2026-11-30T12:00 (hours of POLICYBOT_TIMEZONE)."""
    from bot import report as usage

    if fmt not in ("md", "html", "csv"):
        err.print("[red]error:[/red] --format must be md, html or csv")
        raise typer.Exit(2)
    settings = get_settings()
    data = usage.build(_store(), _since(since, settings.timezone), until and _since(until, settings.timezone),
                       names=usage.ClauseNames.from_build(settings.index_dir, settings.corpus_dir), tz=settings.timezone)
    text = {"md": usage.markdown, "html": usage.html_page, "csv": usage.csv_rows}[fmt](data)
    if out:
        out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
        err.print(f"report ({data['questions']} questions) -> {out}")
    else:
        print(text, end="")
    if gold_candidates:
        rows = usage.gold_candidates(data)
        gold_candidates.write_text(rows, encoding="utf-8")
        err.print(f"{rows.count(chr(10))} questions to label -> {gold_candidates}")


log_app = typer.Typer(help="The question log.", no_args_is_help=True)
app.add_typer(log_app, name="log")


@log_app.command("purge")
def log_purge(before: Annotated[str, typer.Option("--before", help="A date YYYY-MM-DD (or 30d): delete older answers.")]) -> None:
    """Delete logged answers (and their feedback) older than a date."""
    deleted = _store().purge(_since(before))
    console.print(f"deleted {deleted} answers")


labels_app = typer.Typer(help="Labels set on /admin (correct, wrong + the right clause, not in the documents).", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("export")
def labels_export(out: Annotated[Path, typer.Option("--out", dir_okay=False, help="JSON Lines in the eval contract.")]) -> None:
    """Write every labelled question as an eval row: `policy-bot eval --gold FILE` scores them,
    `benchmarks/calibrate.py --extra FILE` fits on them; rows the bot got wrong are tagged regression."""
    from bot.labels import export_rows, write_rows
    from bot.report import ClauseNames

    rows, skipped = export_rows(_store().labelled(), ClauseNames.from_build(get_settings().index_dir))
    write_rows(rows, out)
    regressions = sum("regression" in r.tags for r in rows)
    err.print(f"{len(rows)} labelled questions ({regressions} the bot got wrong, tagged regression) -> {out}"
              + (f"; {skipped} skipped: their clause is no longer in the index" if skipped else ""))


def _plan_clauses(doc_id: str | None, section: str | None):
    from bot.quiz import UnknownSelection, select_section

    bot = _bot()
    try:
        return select_section(bot.index.documents, bot.index.clauses, doc_id or bot.settings.primary_doc, section)
    except UnknownSelection as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


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
    from bot.export import quiz_csv, quiz_docx, quiz_markdown
    from bot.quiz import QuizMaker

    if fmt not in ("md", "json", "csv", "docx"):
        err.print("[red]error:[/red] --format must be md, json, csv or docx")
        raise typer.Exit(2)
    document, pool, chosen = _plan_clauses(doc, section)
    items = QuizMaker(chosen, pool=pool).make(n, types.split(","), seed)
    title = f"《{document.title}》{section or ''} 练习题（{len(items)}题）"
    if fmt == "docx":
        if out is None:
            err.print("[red]error:[/red] --format docx needs --out FILE.docx")
            raise typer.Exit(2)
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
    from bot.export import handout_docx, handout_markdown

    document, _, chosen = _plan_clauses(doc, section)
    if fmt == "docx":
        if out is None:
            err.print("[red]error:[/red] --format docx needs --out FILE.docx")
            raise typer.Exit(2)
        handout_docx(document, chosen, out, section or "")
        err.print(f"handout -> {out}")
    elif fmt == "md":
        text = handout_markdown(document, chosen, section or "")
        if out:
            out.write_text(text, encoding="utf-8")
        else:
            print(text)
    else:
        err.print("[red]error:[/red] --format must be md or docx")
        raise typer.Exit(2)
