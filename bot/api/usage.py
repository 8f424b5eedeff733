"""Learning from use: answers are logged (``remember``), users rate them (``POST /v1/feedback``),
maintainers read both (``/v1/admin/…``, behind ``POLICYBOT_ADMIN_KEY``); ``/metrics`` for operators."""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from bot.api.deps import bearer_token
from bot.api.errors import APIError
from bot.api.schemas import ErrorResponse
from bot.metrics import ANSWERS, REGISTRY
from bot.models import Answer
from bot.questionlog import QuestionLog, client_id, new_answer_id
from bot.store import as_utc, now

router = APIRouter(prefix="/v1", responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})
admin = APIRouter(prefix="/v1/admin", responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})
metrics = APIRouter()


def get_log(request: Request) -> QuestionLog | None:
    return request.app.state.question_log


def _caller(request: Request) -> str:
    return client_id(bearer_token(request) or None, request.headers.get("x-client-id"))


def remember(request: Request, answer: Answer, route: str) -> Answer:
    """Count the answer and log it (off the request path); returns it with its log ``id``."""
    ANSWERS.labels(outcome="found" if answer.found else (answer.reason or "not_found")).inc()
    log = get_log(request)
    if log is None:
        return answer
    answer = answer.model_copy(update={"id": new_answer_id()})
    log.record(answer, answer.id, _caller(request), route)
    return answer


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(min_length=1, max_length=64, description="The `id` of an answer")
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)


class FeedbackResponse(BaseModel):
    status: Literal["recorded"]


@router.post("/feedback", response_model=FeedbackResponse, status_code=201, summary="Rate an answer (👍/👎, optional comment)")
def post_feedback(req: FeedbackRequest, request: Request, log: Annotated[QuestionLog | None, Depends(get_log)]) -> FeedbackResponse:
    if log is None:
        raise APIError(404, "logging_off", "answers are not logged on this server (POLICYBOT_QUESTION_LOG=off)", param="answer_id")
    if not _known(log, req.answer_id):
        raise APIError(404, "answer_not_found", f"no answer with id {req.answer_id!r}", param="answer_id")
    log.record_feedback({"answer_id": req.answer_id, "time": now(), "client": _caller(request), "rating": req.rating,
                         "comment": (req.comment or "").strip() or None})
    return FeedbackResponse(status="recorded")


def _known(log: QuestionLog, answer_id: str) -> bool:
    """An answer this process issued, or one in the store (another worker's rows may still be in
    its batch for up to a second)."""
    if log.issued_here(answer_id):
        return True
    for attempt in range(3):
        try:
            if log.store.has_answer(answer_id):
                return True
        except SQLAlchemyError as exc:
            raise APIError(503, "store_unavailable", "the question log is unavailable; retry later", type_="server_error") from exc
        time.sleep(0.5 * (attempt < 2))
    return False


def require_admin(request: Request) -> None:
    """``Authorization: Bearer <POLICYBOT_ADMIN_KEY>``; the ordinary API key is refused (403)."""
    settings = request.app.state.settings
    token = bearer_token(request)
    if not token:
        raise APIError(401, "admin_key_required", "send 'Authorization: Bearer <admin key>'", type_="authentication_error")
    key = settings.admin_key
    if key is None or not secrets.compare_digest(token.encode(), key.get_secret_value().encode()):
        raise APIError(403, "forbidden", "this key may not read the question log", type_="permission_error")


class Page(BaseModel):
    items: list[dict]
    next: str | None = Field(description="Cursor for the next page (pass as ?cursor=…), null at the end")


def _store(log: QuestionLog | None):
    if log is None:
        raise APIError(404, "logging_off", "answers are not logged on this server (POLICYBOT_QUESTION_LOG=off)")
    return log.store


def _page(fetch) -> Page:
    try:
        items, nxt = fetch()
    except ValueError as exc:
        raise APIError(400, "invalid_cursor", str(exc), param="cursor") from exc
    except SQLAlchemyError as exc:
        raise APIError(503, "store_unavailable", "the question log is unavailable; retry later", type_="server_error") from exc
    return Page(items=items, next=nxt)


Since = Annotated[datetime | None, Query(description="ISO time; only newer items")]
Limit = Annotated[int, Query(ge=1, le=500)]


@admin.get("/questions", response_model=Page, summary="Logged questions, newest first")
def admin_questions(log: Annotated[QuestionLog | None, Depends(get_log)], found: bool | None = None, since: Since = None,
                    limit: Limit = 50, cursor: str | None = None) -> Page:
    store = _store(log)
    return _page(lambda: store.questions(found=found, since=since and as_utc(since), limit=limit, cursor=cursor))


@admin.get("/feedback", response_model=Page, summary="Answer feedback with its question, newest first")
def admin_feedback(log: Annotated[QuestionLog | None, Depends(get_log)], rating: Literal["up", "down"] | None = None,
                   since: Since = None, limit: Limit = 50, cursor: str | None = None) -> Page:
    store = _store(log)
    return _page(lambda: store.feedback_items(rating=rating, since=since and as_utc(since), limit=limit, cursor=cursor))


@metrics.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
