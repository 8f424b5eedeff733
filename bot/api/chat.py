"""OpenAI-compatible ``/v1/chat/completions`` (model ``policy-bot``), plain and streaming (SSE).

The last user message is the question; the earlier user turns (the last few, within the body
limit) are the thread a follow-up such as "那农村呢？" is resolved from. Answers stay grounded in
the corpus alone: nothing an assistant turn said is quoted. Citations appear in the message text and, for clients that can use them, in an
extra top-level ``citations`` field (on the final chunk when streaming).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from bot.api.answering import final, respond
from bot.api.deps import get_bot, get_settings
from bot.api.errors import APIError
from bot.api.schemas import ChatRequest, ErrorResponse
from bot.api.usage import remember
from bot.config import Settings
from bot.models import Answer
from bot.pipeline import InvalidQuestion, PolicyBot

router = APIRouter(prefix="/v1", responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})
# Stream in readable pieces: up to a punctuation mark, or this many characters.
_PIECE = re.compile(r".{1,24}?[，。；：、！？\n]|.{1,24}", re.S)


def message_text(answer: Answer) -> str:
    """The answer as chat text: the quoted answer, then one line per citation."""
    if not answer.citations:
        return answer.answer
    refs = [f"[{c.n}] 《{c.title}》（{c.doc_number}）{c.ref}｜{c.clause_id}" for c in answer.citations]
    return answer.answer + "\n\n引用：\n" + "\n".join(refs)


def _extras(answer: Answer) -> dict:
    return {"answer_id": answer.id, "found": answer.found, "reason": answer.reason, "choice": answer.choice, "mode": answer.mode,
            "resolved_question": answer.resolved_question,
            "citations": [c.model_dump() for c in answer.citations], "related": [c.model_dump() for c in answer.related]}


def usable_history(bot: PolicyBot, turns: list[str]) -> list[str]:
    """The earlier user turns a follow-up can lean on: line breaks and runs of spaces folded to one
    space, and a turn that would be refused as a question (too long, binary) left out. An earlier
    turn, already answered or refused, never makes a later request of its thread fail."""
    usable = []
    for turn in turns:
        try:
            usable.append(bot.check_question(" ".join(turn.split())))
        except InvalidQuestion:
            continue
    return usable


def _question(req: ChatRequest, settings: Settings) -> tuple[str, list[str]]:
    """The question (last user message) and the earlier user turns, oldest first."""
    if req.model != settings.model_name:
        raise APIError(404, "model_not_found", f"unknown model {req.model!r}; this server serves {settings.model_name!r}", param="model")
    users = [m.text() for m in req.messages if m.role == "user"]
    if not users:
        raise APIError(400, "no_user_message", "messages must contain a user message with the question", param="messages")
    return users[-1], users[:-1]


@router.post("/chat/completions", summary="OpenAI-compatible chat completion (plain or stream)")
async def chat_completions(req: ChatRequest, bot: Annotated[PolicyBot, Depends(get_bot)],
                           settings: Annotated[Settings, Depends(get_settings)], request: Request):
    question, history = _question(req, settings)
    # Raises InvalidQuestion (400) or overloaded (503) before any byte is sent.
    answer, events = await respond(request, bot, question, history=usable_history(bot, history))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    if req.stream:  # Starlette iterates the events on a thread: with an LLM they wait for it
        log = lambda answer: remember(request, answer, "chat")  # noqa: E731 - logged when the stream ends
        return StreamingResponse(_stream(completion_id, created, req.model, events, log), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    answer = remember(request, await final(bot, answer, events), "chat")
    text = message_text(answer)
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        **_extras(answer),
    }


def _stream(completion_id: str, created: int, model: str, events: Iterator[str | Answer],
            log: Callable[[Answer], Answer]) -> Iterator[str]:
    """SSE chunks: the answer text as it arrives, then the citation list, then the final chunk."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    answer: Answer | None = None
    for event in events:
        if isinstance(event, Answer):
            answer = event
            continue
        for piece in _PIECE.findall(event):
            yield chunk({"content": piece})
    answer = log(answer)
    tail = message_text(answer)[len(answer.answer):]  # the 引用 list, once the citations are known
    if tail:
        yield chunk({"content": tail})
    yield chunk({}, "stop", **_extras(answer))
    yield "data: [DONE]\n\n"
