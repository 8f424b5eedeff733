"""``policy-bot serve``: the HTTP API and web page, index built and question-log store migrated once before the workers start."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from bot.cli.app import app, err, fail
from bot.config import get_settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless behind a proxy.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes; each loads the index once.")] = 1,
) -> None:
    """Start the HTTP API and the web chat page (http://HOST:PORT/)."""
    import uvicorn

    from bot.index.build import ensure_index
    from bot.index.embedding import load_embedder

    if workers > 1:
        # One embedding engine per worker process: split the cores instead of oversubscribing them.
        os.environ.setdefault("POLICYBOT_EMBED_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    settings = get_settings()
    if settings.vector_store == "milvus" and workers > 1 and "://" not in (settings.milvus_uri or ""):
        raise fail("Milvus Lite (a local POLICYBOT_MILVUS_URI) is opened by one process; "
               "use --workers 1, or a Milvus server (POLICYBOT_MILVUS_URI=http://host:19530) for several workers")
    # Build once here, so workers start from a ready index instead of racing to build it.
    try:
        ensure_index(settings, load_embedder(settings), show_progress=sys.stderr.isatty())
    except (OSError, ValueError) as exc:
        raise fail(escape(str(exc))) from exc
    if settings.question_log:  # apply migrations once, before the workers start; answers never wait for the store
        from bot.usage.store import Store, default_url

        try:
            Store(settings.database_url or default_url(settings.index_dir)).migrate()
        except Exception as exc:  # noqa: BLE001 - the log is optional: warn and serve
            err.print(f"[yellow]warning:[/yellow] question log store unavailable ({type(exc).__name__}); answers are served, rows are dropped until it is back")
    err.print(f"policy-bot on http://{host}:{port}/ (docs: /docs), {workers} worker(s)")
    from bot.api.app import server_options

    uvicorn.run("bot.api:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level.lower(), access_log=False, **server_options(settings))
