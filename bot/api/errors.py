"""Every error is a JSON body in one envelope; no stack trace ever reaches a client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.pipeline import InvalidFilter, InvalidQuestion
from bot.text import clean_text

logger = logging.getLogger(__name__)


class APIError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 retry_after: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.type, self.param = status, code, message, type_, param
        self.retry_after, self.headers = retry_after, headers or {}


def error_response(status: int, code: str, message: str, type_: str = "invalid_request_error", param: str | None = None,
                   retry_after: int | None = None) -> JSONResponse:
    """The JSON error envelope; ``retry_after`` (seconds) adds a Retry-After header (429, 503)."""
    body = {"message": clean_text(message), "type": type_, "code": code, "param": param and clean_text(param)}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def store_unavailable() -> APIError:
    """The question log's database is unreachable, locked or slow: retry later (never a 404 or a wait)."""
    return APIError(503, "store_unavailable", "the question log is unavailable; retry later", type_="server_error", retry_after=5)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.type, exc.param, exc.retry_after)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(InvalidQuestion)
    async def _invalid_question(_: Request, exc: InvalidQuestion) -> JSONResponse:
        if isinstance(exc, InvalidFilter):
            return error_response(400, "invalid_filters", str(exc), param="filters")
        return error_response(400, "invalid_question", str(exc), param="question")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request", "type": "invalid"}
        if first.get("type") == "json_invalid":
            return error_response(422, "invalid_json", "request body is not valid JSON")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(422, "invalid_request", f"{where}: {first['msg']}" if where else first["msg"], param=where or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(ConnectionError)
    async def _engine_down(request: Request, exc: ConnectionError) -> JSONResponse:
        # The search engine (a Milvus server) is unreachable: a retryable outage, not a bug.
        logger.warning("search engine unavailable on %s: %s", request.url.path, exc)
        return error_response(503, "engine_unavailable", "the search engine is unavailable; retry shortly", type_="server_error",
                              retry_after=5)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return error_response(500, "internal_error", "internal error; the request was logged", type_="server_error")
