"""What trainees asked: ``report``, ``log purge``, ``labels export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from bot.cli.app import app, console, err, fail
from bot.config import get_settings


def _store():
    from bot.usage.store import Store, default_url

    settings = get_settings()
    store = Store(settings.database_url or default_url(settings.index_dir))
    try:
        store.migrate()
    except Exception as exc:  # noqa: BLE001 - any driver error: one line, exit 2
        raise fail(f"the question log store is unavailable: {escape(type(exc).__name__)}: {escape(str(exc)[:200])}") from exc
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
        raise fail(f"--since/--until/--before {escape(value[:80])!r}: use 7d, 24h, a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM after year 1") from exc


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
    from bot.usage import report as usage

    if fmt not in ("md", "html", "csv"):
        raise fail("--format must be md, html or csv")
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
    from bot.usage.labels import export_rows, write_rows
    from bot.usage.report import ClauseNames

    rows, skipped = export_rows(_store().labelled(), ClauseNames.from_build(get_settings().index_dir))
    write_rows(rows, out)
    regressions = sum("regression" in r.tags for r in rows)
    err.print(f"{len(rows)} labelled questions ({regressions} the bot got wrong, tagged regression) -> {out}"
              + (f"; {skipped} skipped: their clause is no longer in the index" if skipped else ""))
