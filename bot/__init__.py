"""policy-bot: cited answers over Chinese community-service policy documents.

One subpackage per stage, imports pointing down the stages only:

- ``bot.corpus``: documents -> clauses (catalogue, clause parser, adding a document);
- ``bot.index``: clauses -> indexes (jieba tokens, embeddings, bm25s + FAISS or Milvus, atomic builds);
- ``bot.answer``: question -> grounded answer (what is asked, hybrid search, evidence, learned
  ranking, refusal, extractive or LLM answer, caches);
- ``bot.pipeline`` (``PolicyBot``) assembles them; ``bot.evaluation`` scores it on gold sets;
- ``bot.usage`` (question log, report, labels) and ``bot.training`` (quizzes, handouts) build on
  them; ``bot.api`` and ``bot.cli`` are the two ways in.

``config``, ``models``, ``text``, ``files``, ``logs`` and ``metrics`` are the shared basics at the
bottom. The public names load lazily, so ``import bot.text`` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Answer", "Citation", "Filters", "PolicyBot", "evaluate"]


def __getattr__(name: str):
    if name in ("Answer", "Citation", "Filters"):
        from bot import models

        return getattr(models, name)
    if name == "PolicyBot":
        from bot.pipeline import PolicyBot

        return PolicyBot
    if name == "evaluate":
        from bot.evaluation import evaluate

        return evaluate
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
