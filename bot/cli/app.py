"""The ``policy-bot`` Typer app, its global options and what every command shares: the consoles and
loading the bot with a one-line error instead of a traceback."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

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
        raise fail(f"POLICYBOT_{str(first['loc'][0]).upper()}: {escape(first['msg'])}") from exc
    setup_logging("INFO" if verbose else settings.log_level)


def fail(message: str) -> typer.Exit:
    """Print ``message`` (Rich markup, already escaped) as one error line; the exit to raise (status 2)."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def load_bot(**kwargs):
    from bot.pipeline import PolicyBot

    try:
        return PolicyBot(show_progress=sys.stderr.isatty(), **kwargs)
    except (OSError, ValueError) as exc:  # incl. an unreachable Milvus
        raise fail(escape(str(exc))) from exc
