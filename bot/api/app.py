"""The FastAPI application: loads the index once per worker at start-up, then serves read-only."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from bot import __version__
from bot.api import admin, ask, chat, training, usage
from bot.api.answering import Answering
from bot.api.deps import key_error
from bot.api.errors import error_response, install_error_handlers
from bot.config import Settings, get_settings
from bot.index.build import current_build
from bot.logs import setup_logging
from bot.metrics import LATENCY, REQUESTS
from bot.pipeline import PolicyBot
from bot.usage import report
from bot.usage.questionlog import QuestionLog
from bot.usage.store import Store, default_url

logger = logging.getLogger(__name__)
WEB = Path(str(resources.files("bot.api").joinpath("web")))


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
            return await _closing(error_response(413, "request_too_large", f"request body over {self.limit} bytes"), scope, receive, send)
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout)
        except _TooLarge:
            return await _closing(error_response(413, "request_too_large", f"request body over {self.limit} bytes"), scope, receive, send)
        except asyncio.TimeoutError:
            return await _closing(error_response(408, "request_timeout", f"request body not received within {self.timeout:g} s"),
                                  scope, receive, send)
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


class Admission:
    """Decide from the request head alone, before any body byte is read or any answer work is
    queued: more than ``max_headers`` header lines get 431, a missing or wrong key 401 or 403
    (``deps.key_error``). A client without a key cannot queue for an answer by dripping a body."""

    def __init__(self, app, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope["headers"]
        if len(headers) > self.settings.max_headers:
            return await _closing(error_response(431, "too_many_headers", f"more than {self.settings.max_headers} header lines"),
                                  scope, receive, send)
        if scope["method"] != "OPTIONS":  # a CORS preflight carries no key
            authorization = next((v for k, v in headers if k == b"authorization"), b"").decode("latin-1")
            error = key_error(scope["path"], authorization, self.settings)
            if error is not None:
                response = error_response(error.status, error.code, error.message, error.type)
                response.headers.update(error.headers)
                return await _closing(response, scope, receive, send)
        await self.app(scope, receive, send)


async def _closing(response: JSONResponse, scope, receive, send) -> None:
    """Send ``response`` and close the connection: its body was never read, and a client dripping it
    must not keep the connection open (the server would otherwise read it to the end to reuse it)."""
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


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
    beside the old one (in a thread) and swap; if it does not load, keep serving the old one. Any
    error is logged and the watch goes on: a bad build never stops later good ones being picked up."""
    skipped: set[str] = set()  # builds that did not load; not retried every interval
    while True:
        await asyncio.sleep(settings.reload_interval)
        try:
            await _check_build(app, settings, skipped)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive any damaged build
            logger.warning("build watcher: %s: %s; still serving the previous build", type(exc).__name__, exc)


async def _check_build(app: FastAPI, settings: Settings, skipped: set[str]) -> None:
    live = current_build(settings.index_dir)
    loaded = app.state.bot
    if live is None or live.name in skipped or (loaded is not None and loaded.index.path == live):
        return
    try:
        embedder = loaded.embedder if loaded else None
        new = await asyncio.to_thread(PolicyBot, settings, embedder=embedder)
    except (OSError, ValueError) as exc:
        skipped.add(live.name)
        logger.warning("build %s not loaded, still serving the previous one: %s", live.name, exc)
        return
    if new.index.path != live:  # the live build is damaged; loading fell back to the last intact one
        skipped.add(live.name)
        logger.warning("build %s is damaged; serving build %s", live.name, new.index.path.name)
        if loaded is not None and loaded.index.path == new.index.path:
            return
    app.state.bot, app.state.load_error = new, None
    logger.info("now serving build %s", new.index.path.name)


def create_app(settings: Settings | None = None, bot: PolicyBot | None = None) -> FastAPI:
    """Build the app. ``bot`` lets tests share an already loaded pipeline; otherwise it loads
    (building the index if needed) when the server starts, once per worker."""
    settings = settings or get_settings()
    setup_logging(settings.log_level)
    serving = settings.model_copy(update={"build_missing_index": False})  # workers load; `serve` or `index` builds

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # A damaged or missing index must not kill the server with a traceback: it stays up, says
        # why on /readyz (503) and answers /v1 routes with 503 until it is repaired and restarted.
        try:
            app.state.bot = bot or PolicyBot(serving)
            logger.info("index loaded from %s", app.state.bot.index.path)
        except (OSError, ValueError) as exc:
            app.state.load_error = str(exc)
            logger.error("index not loaded: %s", exc)
        watcher = asyncio.create_task(_watch_builds(app, serving)) if settings.reload_interval else None
        if settings.question_log:
            store = Store(settings.database_url or default_url(settings.index_dir), timeout=settings.db_timeout)
            try:
                await asyncio.to_thread(store.migrate)
            except SQLAlchemyError as exc:  # answers are served anyway; the writer migrates when the store is back
                logger.warning("question log store unavailable at start: %s", type(exc).__name__)
            app.state.question_log = QuestionLog(store, retention_days=settings.log_retention_days, grace=settings.feedback_grace)
        yield
        if watcher:
            watcher.cancel()
        app.state.answering.close()
        if app.state.question_log:
            app.state.question_log.close()

    app = FastAPI(title="policy-bot", version=__version__, lifespan=lifespan,
                  description="许昌市“十四五”城乡社区服务体系建设规划及相关法律法规问答：逐字引用原文条款，找不到就明说。")
    app.state.settings = settings
    app.state.bot = None
    app.state.load_error = None
    app.state.question_log = None
    app.state.feedback_limiter = usage.FeedbackLimiter(settings.feedback_rate)
    app.state.answering = Answering(settings.answer_threads, settings.max_wait_s)
    install_error_handlers(app)
    # Outermost last. A request meets, in order: metrics, security headers, CORS, the key check on
    # its head (Admission), the body read under its own deadline (BodyLimit), and only then the
    # route, where a question that must be worked out meets the wait bound (bot.api.answering): a
    # slow or keyless body never counts as waiting for an answer.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout)
    app.add_middleware(Admission, settings=settings)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)
    for router in (ask.router, chat.router, training.router, usage.router, usage.admin, usage.metrics):
        app.include_router(router)
    app.include_router(admin.pages)

    # async: liveness and readiness run on the event loop, never queued behind answers.
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

    @app.get("/static/report.css", include_in_schema=False)
    def report_stylesheet() -> FileResponse:
        return FileResponse(report.STYLESHEET, media_type="text/css")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
