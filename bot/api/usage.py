"""Learning from use: answers are logged (``remember``), users rate them (``POST /v1/feedback``),
maintainers read both (``/v1/admin/…``, behind ``POLICYBOT_ADMIN_KEY``); ``/metrics`` for operators."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import SQLAlchemyError

from bot.api.deps import CHALLENGE, admin_credentials, bearer_token, get_bot
from bot.api.errors import APIError, store_unavailable
from bot.api.schemas import ErrorResponse
from bot.metrics import ANSWERS, REGISTRY
from bot.models import Answer
from bot.pipeline import PolicyBot
from bot.usage.questionlog import QuestionLog, client_id, new_answer_id
from bot.usage.report import ClauseNames
from bot.usage.store import Store, as_utc, now

router = APIRouter(prefix="/v1", responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})
admin = APIRouter(prefix="/v1/admin", responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})
metrics = APIRouter()
T = TypeVar("T")


async def get_log(request: Request) -> QuestionLog | None:
    return request.app.state.question_log


async def _on_log_threads(log: QuestionLog, call: Callable[[], T]) -> T:
    """``call`` (a store read) on the log's own reader threads: a flood of feedback or admin reads
    queues there, on the event loop, never in front of answers in the shared thread pool."""
    return await asyncio.wrap_future(log.readers.submit(call))


def _caller(request: Request) -> str:
    return client_id(bearer_token(request.headers.get("authorization", "")) or None, request.headers.get("x-client-id"))


def remember(request: Request, answer: Answer, route: str) -> Answer:
    """Count the answer and log it (off the request path); returns it with its log ``id``."""
    ANSWERS.labels(outcome="found" if answer.found else (answer.reason or "not_found")).inc()
    log: QuestionLog | None = request.app.state.question_log
    if log is None:
        return answer
    answer = answer.model_copy(update={"id": new_answer_id()})
    log.record(answer, answer.id, _caller(request), route)
    return answer


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="The `id` of an answer (32 hex digits)")
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)

    @field_validator("comment")
    @classmethod
    def _printable(cls, comment: str | None) -> str | None:
        # NUL cannot be stored in PostgreSQL text; other control characters are never meant (line breaks are kept).
        if comment is not None and any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\r\t" for ch in comment):
            raise ValueError("comment contains control characters")
        return comment


class FeedbackResponse(BaseModel):
    status: Literal["recorded"]


class FeedbackLimiter:
    """Feedback posts per client address in a moving window (``POLICYBOT_FEEDBACK_RATE``), in this process."""

    def __init__(self, rate: str) -> None:
        self._rates = parse_many(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client: str) -> None:
        """Raise 429 with Retry-After once ``client`` is over any of the rates."""
        for rate in self._rates:
            if not self._limiter.hit(rate, "feedback", client):
                reset = self._limiter.get_window_stats(rate, "feedback", client).reset_time
                raise APIError(429, "rate_limited", f"too much feedback from this client; at most {rate}",
                               retry_after=max(1, math.ceil(reset - time.time())))


async def get_limiter(request: Request) -> FeedbackLimiter:
    return request.app.state.feedback_limiter


@router.post("/feedback", response_model=FeedbackResponse, status_code=201,
             responses={429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
             summary="Rate an answer (👍/👎, optional comment); a client's later rating of an answer replaces its earlier one")
async def post_feedback(req: FeedbackRequest, request: Request, log: Annotated[QuestionLog | None, Depends(get_log)],
                        limiter: Annotated[FeedbackLimiter, Depends(get_limiter)]) -> FeedbackResponse:
    if log is None:
        raise APIError(404, "logging_off", "answers are not logged on this server (POLICYBOT_QUESTION_LOG=off)", param="answer_id")
    limiter.check(request.client.host if request.client else "unknown")
    if not log.available:
        raise store_unavailable()
    if not await _on_log_threads(log, lambda: _known(log, req.answer_id)):
        raise APIError(404, "answer_not_found", f"no answer with id {req.answer_id!r}", param="answer_id")
    log.record_feedback({"answer_id": req.answer_id, "time": now(), "client": _caller(request), "rating": req.rating,
                         "comment": (req.comment or "").strip() or None})
    return FeedbackResponse(status="recorded")


def _known(log: QuestionLog, answer_id: str) -> bool:
    """An answer this process issued, one issued within the grace period (another worker's row may
    still be in its batch; the writer waits for it), or one in the store. Never sleeps: the lookup
    runs under the store's statement timeout and a slow or unreachable store is a 503."""
    if log.issued_here(answer_id) or log.recently_issued(answer_id):
        return True
    try:
        return log.store.has_answer(answer_id)
    except SQLAlchemyError as exc:
        raise store_unavailable() from exc


@dataclass(frozen=True)
class Admin:
    """Who is using the admin routes: a hash of the admin key, and the name given with it (if any)."""

    id: str
    name: str | None = None


def require_admin(request: Request) -> Admin:
    """``Authorization: Bearer <POLICYBOT_ADMIN_KEY>`` (or Basic with the key as password, for the
    /admin pages in a browser); no key 401, the ordinary API key or any other 403."""
    settings = request.app.state.settings
    token, name = admin_credentials(request.headers.get("authorization", ""))
    if not token:
        raise APIError(401, "admin_key_required", "send 'Authorization: Bearer <admin key>'", type_="authentication_error",
                       headers=CHALLENGE)
    key = settings.admin_key
    if key is None or not secrets.compare_digest(token.encode(), key.get_secret_value().encode()):
        raise APIError(403, "forbidden", "this key may not read the question log", type_="permission_error")
    return Admin(client_id(token, None), name)


class Page(BaseModel):
    items: list[dict]
    next: str | None = Field(description="Cursor for the next page (pass as ?cursor=…), null at the end")


def log_store(log: QuestionLog | None) -> Store:
    """The log's store, or 404 when this server logs nothing."""
    if log is None:
        raise APIError(404, "logging_off", "answers are not logged on this server (POLICYBOT_QUESTION_LOG=off)")
    return log.store


async def _page(log: QuestionLog, fetch: Callable[[], tuple[list[dict], str | None]]) -> Page:
    try:
        items, nxt = await _on_log_threads(log, fetch)
    except ValueError as exc:
        raise APIError(400, "invalid_cursor", str(exc), param="cursor") from exc
    except SQLAlchemyError as exc:
        raise store_unavailable() from exc
    return Page(items=items, next=nxt)


Since = Annotated[datetime | None, Query(description="ISO time; only newer items")]
Until = Annotated[datetime | None, Query(description="ISO time; only older items (excluded)")]
Limit = Annotated[int, Query(ge=1, le=500)]


@admin.get("/questions", response_model=Page, summary="Logged questions, newest first, with their label and feedback")
async def admin_questions(request: Request, log: Annotated[QuestionLog | None, Depends(get_log)], found: bool | None = None,
                          since: Since = None, limit: Limit = 50, cursor: str | None = None, until: Until = None,
                          doc: Annotated[str | None, Query(max_length=64, description="Only answers citing this document id")] = None,
                          rating: Annotated[Literal["up", "down"] | None, Query(description="Only answers rated so")] = None) -> Page:
    store = log_store(log)
    page = await _page(log, lambda: store.questions(found=found, since=since and as_utc(since), until=until and as_utc(until), doc=doc,
                                         rating=rating, limit=limit, cursor=cursor))
    names = clause_names(request)
    if names is not None:
        for item in page.items:
            for c in item["citations"] + item["related"]:
                c["name"] = _named(names, c["clause_id"])
            if item["label"] and item["label"]["clause_id"]:
                item["label"]["clause"] = _named(names, item["label"]["clause_id"])
    return page


def clause_names(request: Request) -> ClauseNames | None:
    """Readable clause names of the index being served (built once per loaded index)."""
    loaded = request.app.state.bot
    if loaded is None:
        return None
    cached = getattr(request.app.state, "clause_names", None)
    if cached is None or cached[0] is not loaded.index:
        cached = (loaded.index, ClauseNames.from_index(loaded.index))
        request.app.state.clause_names = cached
    return cached[1]


def _named(names: ClauseNames, clause_id: str) -> dict:
    n = names.clause(clause_id)
    return {"title": n.title, "ref": n.ref, "words": n.words}


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["correct", "wrong", "not_in_documents"] = Field(
        description="correct; wrong (clause_id: the clause that answers it); not_in_documents")
    clause_id: str | None = Field(None, max_length=128, description="For 'wrong': the right clause (GET /v1/admin/clauses finds it)")


@admin.put("/labels/{answer_id}", summary="Label a logged answer (or change its label)")
def put_label(answer_id: str, req: LabelRequest, request: Request, who: Annotated[Admin, Depends(require_admin)],
              log: Annotated[QuestionLog | None, Depends(get_log)]) -> dict:
    store = log_store(log)
    if req.verdict == "wrong":
        loaded = request.app.state.bot
        if not req.clause_id:
            raise APIError(422, "clause_required", "a 'wrong' label names the clause that answers the question", param="clause_id")
        if loaded is not None and req.clause_id not in loaded.index.clause_positions:
            raise APIError(422, "unknown_clause", f"no clause {req.clause_id!r} in the index", param="clause_id")
    try:
        label = store.set_label(answer_id, req.verdict, req.clause_id, who.id, who.name)
    except KeyError as exc:
        raise APIError(404, "answer_not_found", f"no answer with id {answer_id!r}", param="answer_id") from exc
    except SQLAlchemyError as exc:
        raise store_unavailable() from exc
    names = clause_names(request)
    if label["clause_id"] and names is not None:
        label["clause"] = _named(names, label["clause_id"])
    return label


@admin.get("/clauses", summary="Find the clause that answers a question (for a 'wrong' label)")
def admin_clauses(request: Request, bot: Annotated[PolicyBot, Depends(get_bot)], q: Annotated[str, Query(min_length=1, max_length=200)],
                  limit: Limit = 8) -> list[dict]:
    names = clause_names(request)
    return [{"clause_id": h.clause.id, "text": h.clause.text, **_named(names, h.clause.id)} for h in bot.search(q, min(limit, 20))]


@admin.get("/feedback", response_model=Page, summary="Answer feedback with its question, newest first")
async def admin_feedback(log: Annotated[QuestionLog | None, Depends(get_log)], rating: Literal["up", "down"] | None = None,
                         since: Since = None, limit: Limit = 50, cursor: str | None = None) -> Page:
    store = log_store(log)
    return await _page(log, lambda: store.feedback_items(rating=rating, since=since and as_utc(since), limit=limit, cursor=cursor))


@metrics.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
