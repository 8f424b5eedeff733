"""The FastAPI application: loads the index once per worker at start-up, then serves read-only."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from bot import __version__
from bot.api import admin, ask, chat, training, usage
from bot.api.deps import require_api_key
from bot.api.errors import error_response, install_error_handlers
from bot.config import Settings, get_settings
from bot.logs import setup_logging
from bot.indexing import current_build
from bot.metrics import LATENCY, REQUESTS
from bot.questionlog import QuestionLog
from bot.store import Store, default_url
from bot.pipeline import PolicyBot

logger = logging.getLogger(__name__)
WEB = Path(str(resources.files("bot").joinpath("web")))


class BodyLimit:
    """Read the whole request body first: over ``limit`` bytes (with or without Content-Length,
    chunked included) is 413; a client that takes longer than ``timeout`` seconds to send it is 408.
    The app then gets the body from memory, so a slow client never holds an answer thread."""

    def __init__(self, app, limit: int, timeout: float) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await error_response(413, "request_too_large", f"request body over {self.limit} bytes")(scope, receive, send)
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout)
        except _TooLarge:
            return await error_response(413, "request_too_large", f"request body over {self.limit} bytes")(scope, receive, send)
        except asyncio.TimeoutError:
            return await error_response(408, "request_timeout", f"request body not received within {self.timeout:g} s")(scope, receive, send)
        if body is None:  # the client went away
            return
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive) -> bytes | None:
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


class _TooLarge(Exception):
    pass


class LoadShedding:
    """At most ``limit`` /v1 requests in a worker at once; more get 503 with Retry-After at once,
    instead of queueing for a minute behind the embedder. Liveness and the page are never shed."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit, self.inflight = app, limit, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        if self.inflight >= self.limit:
            response = error_response(503, "overloaded", "the server is busy; retry in a moment", type_="server_error")
            response.headers["Retry-After"] = "1"
            return await response(scope, receive, send)
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


class RequestMetrics:
    """Requests and latency per route family (a fixed set of labels, whatever the path)."""

    ROUTES = ("/v1/ask", "/v1/search", "/v1/chat/completions", "/v1/feedback", "/v1/admin", "/v1/clauses", "/v1/documents",
              "/v1/quiz", "/healthz", "/readyz", "/metrics", "/admin")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = next((r for r in self.ROUTES if scope["path"].startswith(r)), "other")
        status = 500
        t0 = time.perf_counter()

        async def observe(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            REQUESTS.labels(route=route, status=str(status)).inc()
            LATENCY.labels(route=route).observe(time.perf_counter() - t0)


class SecurityHeaders:
    """The page loads only its own scripts and styles, is never framed, and no response is sniffed."""

    HEADERS = [
        (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/docs"):  # Swagger UI loads its own assets
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _watch_builds(app: FastAPI, settings: Settings) -> None:
    """Serve a new build without a restart: when ``indexes/CURRENT`` names another build, load it
    beside the old one (in a thread) and swap; if it does not load, keep serving the old one."""
    while True:
        await asyncio.sleep(settings.reload_interval)
        live = current_build(settings.index_dir)
        loaded = app.state.bot
        if live is None or (loaded is not None and loaded.index.path == live):
            continue
        try:
            embedder = loaded.embedder if loaded else None
            app.state.bot = await asyncio.to_thread(PolicyBot, settings, embedder=embedder)
            app.state.load_error = None
            logger.info("now serving build %s", live.name)
        except (OSError, ValueError) as exc:
            logger.warning("build %s not loaded, still serving the previous one: %s", live.name, exc)


def create_app(settings: Settings | None = None, bot: PolicyBot | None = None) -> FastAPI:
    """Build the app. ``bot`` lets tests share an already loaded pipeline; otherwise it loads
    (building the index if needed) when the server starts, once per worker."""
    settings = settings or get_settings()
    setup_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # A damaged or missing index must not kill the server with a traceback: it stays up, says
        # why on /readyz (503) and answers /v1 routes with 503 until it is repaired and restarted.
        try:
            app.state.bot = bot or PolicyBot(settings)
            logger.info("index loaded from %s", app.state.bot.index.path)
        except (OSError, ValueError) as exc:
            app.state.load_error = str(exc)
            logger.error("index not loaded: %s", exc)
        watcher = asyncio.create_task(_watch_builds(app, settings)) if settings.reload_interval else None
        if settings.question_log:
            store = Store(settings.database_url or default_url(settings.index_dir))
            try:
                await asyncio.to_thread(store.migrate)
            except SQLAlchemyError as exc:  # answers are served anyway; the writer migrates when the store is back
                logger.warning("question log store unavailable at start: %s", type(exc).__name__)
            app.state.question_log = QuestionLog(store, retention_days=settings.log_retention_days)
        yield
        if watcher:
            watcher.cancel()
        if app.state.question_log:
            app.state.question_log.close()

    app = FastAPI(title="policy-bot", version=__version__, lifespan=lifespan,
                  description="许昌市“十四五”城乡社区服务体系建设规划及相关法律法规问答：逐字引用原文条款，找不到就明说。")
    app.state.settings = settings
    app.state.bot = None
    app.state.load_error = None
    app.state.question_log = None
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout)
    app.add_middleware(LoadShedding, limit=settings.max_inflight)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)
    secured = [Depends(require_api_key)]
    app.include_router(ask.router, dependencies=secured)
    app.include_router(chat.router, dependencies=secured)
    app.include_router(training.router, dependencies=secured)
    app.include_router(usage.router, dependencies=secured)
    app.include_router(usage.admin, dependencies=[Depends(usage.require_admin)])
    app.include_router(usage.metrics)
    app.include_router(admin.pages)

    # async: liveness and readiness run on the event loop, never queued behind answers in the thread pool.
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request):
        loaded = request.app.state.bot
        if loaded is None:
            error = request.app.state.load_error
            return JSONResponse({"status": "unavailable" if error else "loading", "error": error}, status_code=503)
        return {"status": "ready", "clauses": len(loaded.index.clauses), "build": loaded.index.path.name,
                "embedder": loaded.index.manifest["embedder"]}

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
