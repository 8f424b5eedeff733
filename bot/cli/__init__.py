"""Command line: ``policy-bot index | ask | chat | search | eval | serve | report | quiz | handout | ...``.

One module per group of commands, each registering on the Typer ``app``; importing them here
makes the full command set."""

from bot.cli import answering, serving, usage, training  # noqa: F401, I001 - registers the commands in the order --help lists them
from bot.cli.app import app

__all__ = ["app"]
