"""policy-bot: cited answers over Chinese community-service policy documents.

Data flow, one module each: corpus (documents) -> chunking (clauses) -> indexing, with backends
(bm25s + FAISS in the build folder, or Milvus) and postings (corpus tables) -> query (what is asked) and conversation (follow-ups) -> retrieval (hybrid) -> evidence, rerank,
selection, choices -> refusal -> render (grounded, extractive) or generation + grounding (LLM)
-> pipeline (``PolicyBot``) -> cli / api; questionlog, store and report learn from use.

The public names load lazily, so ``import bot.text`` stays light.
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
