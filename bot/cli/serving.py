"""``policy-bot serve``: the HTTP API and web page, index built and question-log store migrated once before the workers start."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer
from rich.markup import escape

from bot.cli.app import app, err, fail
from bot.config import get_settings


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
        raise fail("Milvus Lite (a local POLICYBOT_MILVUS_URI) is opened by one process; "
                   "use --workers 1, or a Milvus server (POLICYBOT_MILVUS_URI=http://host:19530) for several workers")
    workers = workers or (1 if milvus_lite else default_workers())
    if workers > 1:
        # One embedding engine per worker process: split the cores instead of oversubscribing them,
        # and the same share for every OpenMP/BLAS pool a worker loads (FAISS, numpy): threads of
        # several workers' pools contending for the same cores spin instead of answering.
        share = str(max(1, default_workers() // workers))
        os.environ.setdefault("POLICYBOT_EMBED_THREADS", share)
        os.environ.setdefault("OMP_NUM_THREADS", share)
        if not settings.cache_url and settings.answer_cache_size:
            # The workers share answers through a file beside the index: a question is worked out once.
            os.environ["POLICYBOT_CACHE_URL"] = f"sqlite:///{(settings.index_dir / 'answers.sqlite').resolve()}"
        get_settings.cache_clear()
        settings = get_settings()
    # Build once here, so workers start from a ready index instead of racing to build it. The check
    # runs in a child process: this one supervises the workers and stays small beside them.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        error, warning = pool.submit(_prepare_serving, sys.stderr.isatty()).result()
    if error:
        raise fail(escape(error))
    if warning:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    err.print(f"policy-bot on http://{host}:{port}/ (docs: /docs), {workers} worker(s)")
    uvicorn.run("bot.api:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level.lower(), access_log=False, **server_options(settings))


def _prepare_serving(show_progress: bool) -> tuple[str | None, str | None]:
    """Build the index if it is missing, stale or damaged, and migrate the question log store;
    returns (error, warning) messages."""
    from bot.index.build import ensure_built
    from bot.index.embedding import load_embedder

    settings = get_settings()
    try:
        ensure_built(settings, load_embedder(settings), show_progress=show_progress)
    except (OSError, ValueError) as exc:
        return str(exc), None
    if settings.question_log:  # apply migrations once, before the workers start; answers never wait for the store
        from bot.usage.store import Store, default_url

        try:
            Store(settings.database_url or default_url(settings.index_dir)).migrate()
        except Exception as exc:  # noqa: BLE001 - the log is optional: warn and serve
            return None, (f"question log store unavailable ({type(exc).__name__}); answers are served, rows are dropped "
                          "until it is back")
    return None, None


def default_workers() -> int:
    """One worker per core this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
