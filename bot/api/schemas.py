"""Request and response models of the HTTP API (the answer itself is ``bot.models.Answer``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.models import Clause, Document, Filters


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="The question, in Chinese.")
    top_k: int | None = Field(None, ge=1, le=50)
    filters: Filters | None = None
    history: list[str] = Field([], max_length=20, description="Earlier user turns of the conversation, oldest first; "
                               "a follow-up (那农村呢？) is resolved from them")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    top_k: int = Field(5, ge=1, le=50)
    filters: Filters | None = None


class SearchResult(BaseModel):
    rank: int
    score: float
    bm25_rank: int | None
    bm25_score: float
    dense_rank: int | None
    dense_score: float
    clause: Clause


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]


class ClauseResponse(BaseModel):
    clause: Clause
    document: Document
    previous: Clause | None
    next: Clause | None


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI-style error envelope, used by every route."""

    error: ErrorBody


class ContentPart(BaseModel):
    """One part of a chat message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The subset of the OpenAI chat request that matters here; other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
