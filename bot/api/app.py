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


def create_app(settings: Settings | None = None, bot: PolicyBot | None = None) -> FastAPI:
    """Build the app. ``bot`` lets tests share an already loaded pipeline; otherwise it loads
    (building the index if needed) when the server starts, once per worker."""
    settings = settings or get_settings()
    setup_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.bot = bot or PolicyBot(settings)
        logger.info("index loaded from %s", app.state.bot.index.path)
        yield

    app = FastAPI(title="policy-bot", version=__version__, lifespan=lifespan,
                  description="许昌市“十四五”城乡社区服务体系建设规划及相关法律法规问答：逐字引用原文条款，找不到就明说。")
    app.state.settings = settings
    app.state.bot = None
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    secured = [Depends(require_api_key)]
    app.include_router(ask.router, dependencies=secured)
    app.include_router(chat.router, dependencies=secured)
    app.include_router(training.router, dependencies=secured)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request):
        loaded = request.app.state.bot
        if loaded is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ready", "clauses": len(loaded.index.clauses), "build": loaded.index.path.name,
                "embedder": loaded.index.manifest["embedder"]}

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
