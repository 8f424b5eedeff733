"""Writing files so that readers see the old content or the new one, never a half-written file; the
pointer to the live index build (``indexes/CURRENT``), swapped that way."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, data: str | bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` (text as UTF-8, bytes, or a function writing to the open file) to a temporary
    file beside ``path``, then rename it over ``path`` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_build(index_dir: Path) -> Path | None:
    """The live build folder, or None when nothing has been built or ``CURRENT`` does not name a
    folder directly inside ``builds/`` (``../elsewhere``, an absolute path or a symlink out are refused)."""
    pointer = index_dir / "CURRENT"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    builds = index_dir / "builds"
    path = builds / name
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        return None
    try:
        inside = path.resolve().parent == builds.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return path if inside and (path / "manifest.json").exists() else None