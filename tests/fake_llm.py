"""A scripted OpenAI-compatible server for the generation tests (127.0.0.1 only).

The requested model name picks the behaviour; every reply is built from the clauses in the
prompt, so the "faithful" answer really is faithful and the others are wrong in one known way.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

app = FastAPI()
app.state.calls = []


def _clause(prompt: str, n: int) -> str:
    m = re.search(rf"^\[{n}\] [^：]*：(.*)$", prompt, re.M)
    return m.group(1) if m else ""


def _sentence_with_figure(text: str) -> str:
    sentences = [s for s in re.split(r"(?<=[。；])", text) if s.strip()]
    return next((s for s in sentences if re.search(r"\d+(小时|%|‰|年|名|个|平方米)", s)), sentences[0] if sentences else text).strip()


def _reply(model: str, prompt: str) -> str:
    good = _sentence_with_figure(_clause(prompt, 1)).rstrip("。；") + "[1]。"
    if model == "faithful":
        return "根据规划，" + good
    if model == "wrong-number":
        wrong = re.sub(r"\d", lambda m: str((int(m.group()) + 1) % 10), good, count=1)
        return "根据规划，" + good + "另外，" + wrong
    if model == "all-wrong":
        return re.sub(r"\d", lambda m: str((int(m.group()) + 1) % 10), good, count=1)
    if model == "bad-citation":
        return good.replace("[1]", "[9]")
    if model == "wrong-quote":
        return "规划要求社区服务“全年无休、随叫随到”[1]。"
    if model == "notfound":
        return "未找到"
    return "根据规划，" + good


@app.get("/readyz")
def ready() -> dict:
    return {"status": "ready"}


@app.post("/v1/chat/completions")
async def chat(request: Request):
    body = await request.json()
    model = body["model"]
    app.state.calls.append(model)
    if model == "timeout":
        await asyncio.sleep(5)
    if model == "error500":
        return JSONResponse({"error": {"message": "boom"}}, status_code=500)
    if model == "flaky" and app.state.calls.count("flaky") % 2 == 1:
        return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
    text = _reply(model, body["messages"][-1]["content"])
    if not body.get("stream"):
        return {"id": "x", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    async def events():
        for i in range(0, len(text), 3):
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                     "choices": [{"index": 0, "delta": {"content": text[i:i + 3]}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            await asyncio.sleep(0.005)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
