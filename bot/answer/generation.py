"""Generative answers from the retrieved clauses through any OpenAI-compatible LLM, behind the
grounding guard. Without a configured LLM, or when it fails, the extractive answer stands.

Design: the model's text is streamed sentence by sentence through ``bot.answer.grounding``; a sentence
is shown only if its citations and figures check out (unsupported sentences are stripped and
logged). If no sentence survives, the model says 未找到, or the LLM fails within the time budget,
the extractive answer is shown instead (``guard.action == "fallback"``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

from bot.answer.grounding import check_sentence, split_sentences
from bot.config import Settings
from bot.models import Answer, Citation, Guard

logger = logging.getLogger(__name__)

_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)


class LLMUnavailable(RuntimeError):
    """The LLM did not answer within the time budget and retries."""


def load_prompt(prompts_dir: Path, name: str) -> str:
    """A prompt file without its ``<!-- version -->`` header comment."""
    return _COMMENT.sub("", (prompts_dir / name).read_text(encoding="utf-8")).strip()


class LLMClient:
    """Streaming chat completions with bounded retries inside one overall deadline."""

    def __init__(self, settings: Settings) -> None:
        import openai

        self._openai = openai
        self._s = settings
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
        self._client = openai.OpenAI(base_url=settings.llm_base_url, api_key=key, max_retries=0)

    def stream(self, messages: list[dict]) -> Iterator[str]:
        deadline = time.monotonic() + self._s.llm_timeout
        retryable = (self._openai.APITimeoutError, self._openai.APIConnectionError,
                     self._openai.RateLimitError, self._openai.InternalServerError)
        for attempt in range(self._s.llm_retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            started = False
            try:
                stream = self._client.chat.completions.create(
                    model=self._s.llm_model, messages=messages, stream=True, timeout=remaining,
                    temperature=self._s.llm_temperature, max_tokens=self._s.llm_max_tokens,
                )
                for chunk in stream:
                    if time.monotonic() > deadline:
                        raise LLMUnavailable("the LLM exceeded the time budget while streaming")
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        started = True
                        yield delta
                return
            except retryable as exc:
                if started:
                    raise LLMUnavailable(f"the LLM stream broke: {type(exc).__name__}") from exc
                logger.warning("llm attempt=%d failed: %s", attempt + 1, type(exc).__name__)
                time.sleep(min(0.5 * 2**attempt, max(0.0, deadline - time.monotonic())))
            except self._openai.APIStatusError as exc:
                raise LLMUnavailable(f"the LLM refused the request: HTTP {exc.status_code}") from exc
        raise LLMUnavailable("the LLM did not answer within the time budget")


class Generator:
    """Writes a fluent answer from numbered clauses and keeps only what the guard accepts."""

    def __init__(self, settings: Settings, client: LLMClient | None = None) -> None:
        self._system = load_prompt(settings.prompts_dir, "system.zh.md")
        self._template = load_prompt(settings.prompts_dir, "answer.zh.md")
        self._client = client or LLMClient(settings)

    def messages(self, question: str, citations: list[Citation]) -> list[dict]:
        clauses = "\n".join(f"[{c.n}] 《{c.title}》{c.ref}：{c.context + ' ' if c.context else ''}{c.text}" for c in citations)
        return [{"role": "system", "content": self._system},
                {"role": "user", "content": self._template.format(clauses=clauses, question=question)}]

    def stream(self, question: str, extractive: Answer, candidates: list[Citation]) -> Iterator[str | Answer]:
        """Text deltas that passed the guard, then the final ``Answer``.

        Args:
            extractive: the extractive answer (found=True), shown if generation does not hold up.
            candidates: the numbered clauses given to the model.
        """
        clauses = {c.n: f"{c.context} {c.text}" for c in candidates}
        kept: list[str] = []
        problems: list[str] = []
        buffer = ""
        try:
            for delta in self._client.stream(self.messages(question, candidates)):
                buffer += delta
                done, buffer = split_sentences(buffer, final=False)
                for sentence in done:
                    if self._check(sentence, clauses, problems):
                        kept.append(sentence)
                        yield sentence
            for sentence in split_sentences(buffer)[0]:
                if self._check(sentence, clauses, problems):
                    kept.append(sentence)
                    yield sentence
        except LLMUnavailable as exc:
            logger.warning("llm unavailable: %s", exc)
            problems.append(str(exc))
        text = "".join(kept).strip()
        if not text:
            logger.info("guard fallback to the extractive answer: %s", "; ".join(problems))
            yield extractive.answer
            yield extractive.model_copy(update={"guard": Guard(intervened=True, action="fallback", problems=problems)})
            return
        cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})
        guard = Guard(intervened=bool(problems), action="stripped" if problems else "none", problems=problems)
        if problems:
            logger.info("guard stripped: %s", "; ".join(problems))
        yield extractive.model_copy(update={
            "answer": text, "mode": "generative", "guard": guard,
            "citations": [c for c in candidates if c.n in cited],
        })

    @staticmethod
    def _check(sentence: str, clauses: dict[int, str], problems: list[str]) -> bool:
        """Whether to show ``sentence``; what is wrong with it goes to ``problems``."""
        if sentence.strip().startswith("未找到"):
            problems.append("the LLM found no answer in the clauses")
            return False
        found, _ = check_sentence(sentence, clauses)
        problems.extend(f"{p}: {sentence.strip()[:40]}" for p in found)
        return not found
