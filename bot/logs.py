"""Structured, quiet-by-default logging: one ``key=value`` line per event on stderr."""

from __future__ import annotations

import logging
import sys


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage().replace('"', "'")
        return f'ts={self.formatTime(record, "%Y-%m-%dT%H:%M:%S")} level={record.levelname.lower()} logger={record.name} msg="{msg}"'


def setup_logging(level: str = "WARNING") -> None:
    """Send the ``bot`` loggers to stderr at ``level``; third-party noise stays at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KeyValueFormatter())
    root = logging.getLogger("bot")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
