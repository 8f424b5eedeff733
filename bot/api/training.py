"""Trainer routes: ``POST /v1/quiz`` (same options as ``policy-bot quiz``, JSON form)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from bot.api.deps import get_bot
from bot.api.errors import APIError
from bot.api.schemas import ErrorResponse
from bot.pipeline import PolicyBot
from bot.training.quiz import TYPES, ItemType, QuizItem, QuizMaker, UnknownSelection, select_section

router = APIRouter(prefix="/v1", responses={400: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})


class QuizRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(30, ge=1, le=500)
    section: str | None = Field(None, description='e.g. "二、(六)" or "专栏3"')
    types: list[ItemType] = Field(list(TYPES), min_length=1)
    seed: int = 7
    doc: str | None = Field(None, description="Document id; default: the primary document")


class QuizResponse(BaseModel):
    doc: str
    section: str | None
    seed: int
    items: list[QuizItem]


@router.post("/quiz", response_model=QuizResponse, summary="Quiz items with answer key and source clause")
def quiz(req: QuizRequest, bot: Annotated[PolicyBot, Depends(get_bot)]) -> QuizResponse:
    doc_id = req.doc or bot.settings.primary_doc
    try:
        _, pool, chosen = select_section(bot.index.documents, bot.index.clauses, doc_id, req.section)
    except UnknownSelection as exc:
        raise APIError(400, f"unknown_{exc.param}", str(exc), param=exc.param) from exc
    items = QuizMaker(chosen, pool=pool).make(req.n, req.types, req.seed)
    return QuizResponse(doc=doc_id, section=req.section, seed=req.seed, items=items)
