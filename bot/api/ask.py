"""Answer, search and browse routes: ``/v1/ask``, ``/v1/search``, ``/v1/clauses/{id}``, ``/v1/documents``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from bot.api.answering import Answering, final, respond
from bot.api.chat import usable_history
from bot.api.deps import get_bot
from bot.api.errors import APIError
from bot.api.schemas import AskRequest, ClauseResponse, ErrorResponse, SearchRequest, SearchResponse, SearchResult
from bot.api.usage import remember
from bot.models import Answer, Document
from bot.pipeline import PolicyBot

router = APIRouter(prefix="/v1", responses={400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
Bot = Annotated[PolicyBot, Depends(get_bot)]


# async: a known answer is served on the event loop; only uncached work queues (bot.api.answering).
@router.post("/ask", response_model=Answer, summary="Answer a question with cited clauses")
async def ask(req: AskRequest, bot: Bot, request: Request) -> Answer:
    answer, events = await respond(request, bot, req.question, req.top_k, req.filters, usable_history(bot, req.history))
    return remember(request, await final(bot, answer, events), "ask")


@router.post("/search", response_model=SearchResponse, summary="Ranked clauses, no answer composition")
async def search(req: SearchRequest, bot: Bot, request: Request) -> SearchResponse:
    answering: Answering = request.app.state.answering
    hits = await answering.uncached(bot.search, req.query, req.top_k, req.filters)
    return SearchResponse(
        query=req.query.strip(),
        results=[
            SearchResult(rank=i, score=round(h.score, 6), bm25_rank=h.bm25_rank, bm25_score=round(h.bm25_score, 4),
                         dense_rank=h.dense_rank, dense_score=round(h.dense_score, 4), clause=h.clause)
            for i, h in enumerate(hits, 1)
        ],
    )


@router.get("/clauses/{clause_id}", response_model=ClauseResponse, responses={404: {"model": ErrorResponse}},
            summary="One clause with its section path and neighbours")
def clause(clause_id: str, bot: Bot) -> ClauseResponse:
    clauses = bot.index.clauses
    pos = bot.index.clause_positions.get(clause_id)
    if pos is None:
        raise APIError(404, "clause_not_found", f"no clause with id {clause_id!r}", param="clause_id")
    c = clauses[pos]
    prev = clauses[pos - 1] if pos > 0 and clauses[pos - 1].doc_id == c.doc_id else None
    nxt = clauses[pos + 1] if pos + 1 < len(clauses) and clauses[pos + 1].doc_id == c.doc_id else None
    return ClauseResponse(clause=c, document=bot.index.documents[c.doc_id], previous=prev, next=nxt)


@router.get("/documents", response_model=list[Document], summary="The corpus catalog")
def documents(bot: Bot) -> list[Document]:
    return list(bot.index.documents.values())
