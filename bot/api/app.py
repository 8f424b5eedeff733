"""The FastAPI application: loads the index once per worker at start-up, then serves read-only."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from bot import __version__
from bot.api import ask, chat, training
from bot.api.deps import require_api_key
from bot.api.errors import error_response, install_error_handlers
from bot.config import Settings, get_settings
from bot.logs import setup_logging
from bot.pipeline import PolicyBot

logger = logging.getLogger(__name__)
WEB = Path(str(resources.files("bot").joinpath("web")))


class BodyLimit:
    """Reject request bodies over ``limit`` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._reject(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope, receive, send):
        response = error_response(413, "request_too_large", f"request body over {self.limit} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


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
        yield

    app = FastAPI(title="policy-bot", version=__version__, lifespan=lifespan,
                  description="许昌市“十四五”城乡社区服务体系建设规划及相关法律法规问答：逐字引用原文条款，找不到就明说。")
    app.state.settings = settings
    app.state.bot = None
    app.state.load_error = None
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    secured = [Depends(require_api_key)]
    app.include_router(ask.router, dependencies=secured)
    app.include_router(chat.router, dependencies=secured)
    app.include_router(training.router, dependencies=secured)

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
