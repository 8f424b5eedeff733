"""Damaged indexes, hostile input and careless uploads: the bot answers correctly or says why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.corpus.ingest import IngestError, add_document
from bot.index.build import IndexDamaged, build_index, current_build, load_index
from bot.index.builds import is_fresh
from bot.pipeline import PolicyBot
from tests.conftest import LiveServer


def _cut_last_lines(path, n=5):
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-n]), encoding="utf-8")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "clauses.jsonl lines removed": lambda b: _cut_last_lines(b / "clauses.jsonl"),
    "clauses.jsonl emptied": lambda b: (b / "clauses.jsonl").write_text("", encoding="utf-8"),
    "manifest.json cut": lambda b: _truncate(b / "manifest.json"),
    "manifest.json deleted": lambda b: (b / "manifest.json").unlink(),
    "dense.faiss cut": lambda b: _truncate(b / "dense.faiss"),
    "dense.faiss byte flipped": lambda b: _flip(b / "dense.faiss"),
    "dense.faiss deleted": lambda b: (b / "dense.faiss").unlink(),
    "bm25 vocabulary cut": lambda b: _truncate(b / "bm25" / "vocab.index.json"),
    "bm25 scores flipped": lambda b: _flip(b / "bm25" / "data.csc.index.npy"),
    "bm25 folder deleted": lambda b: shutil.rmtree(b / "bm25"),
    "documents.json cut": lambda b: _truncate(b / "documents.json"),
    "CURRENT names a missing build": lambda b: (b.parent.parent / "CURRENT").write_text("nope", encoding="utf-8"),
    "CURRENT is binary": lambda b: (b.parent.parent / "CURRENT").write_bytes(b"\xff\xfe\x00"),
}


@pytest.fixture()
def built(corpus_copy, embedder):
    build_index(corpus_copy, embedder)
    return corpus_copy


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_live_build_is_detected_and_rebuilt_before_answering(built, embedder, damage):
    live = current_build(built.index_dir)
    DAMAGES[damage](live)
    assert not is_fresh(built, embedder.model_name)
    bot = PolicyBot(built, embedder=embedder)  # what `ask` and `serve` do: ensure_index repairs it
    assert bot.ask("社区党建工作联席会议制度由谁牵头？").found
    assert is_fresh(built, embedder.model_name)


@pytest.mark.parametrize("damage", ["clauses.jsonl lines removed", "dense.faiss byte flipped", "bm25 vocabulary cut"])
def test_loading_a_damaged_build_names_the_repair(built, damage):
    live = current_build(built.index_dir)
    DAMAGES[damage](live)
    with pytest.raises(IndexDamaged, match="policy-bot index --force"):
        load_index(live)


def test_index_force_rebuilds_over_a_cut_manifest(built):
    _truncate(current_build(built.index_dir) / "manifest.json")
    env = os.environ | {"POLICYBOT_INDEX_DIR": str(built.index_dir), "POLICYBOT_CORPUS_DIR": str(built.corpus_dir)}
    out = subprocess.run([sys.executable, "-m", "bot", "index", "--force"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    load_index(current_build(built.index_dir))


def test_a_build_killed_midway_leaves_no_folder_behind_after_the_next_build(built, embedder):
    abandoned = built.index_dir / "builds" / ".tmp-20200101T000000000000-deadbeef-999999999"
    abandoned.mkdir()
    build_index(built, embedder)
    assert not abandoned.exists()


def test_a_server_without_a_usable_index_stays_up_and_says_why(tmp_path):
    from bot.api import create_app

    settings = Settings(corpus_dir=tmp_path / "no-corpus", index_dir=tmp_path / "indexes")
    server = LiveServer(create_app(settings), ready_path="/healthz")
    try:
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and "run `policy-bot index`" in ready.json()["error"]
        ask = httpx.post(server.url + "/v1/ask", json={"question": "社区服务设施开放时间"})
        assert ask.status_code == 503 and ask.json()["error"]["code"] == "not_ready"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        yield c


# Lone surrogates written as JSON escapes: valid JSON, not valid text.
@pytest.mark.parametrize(("path", "body"), [
    ("/v1/ask", '{"question": "社区\\ud800服务"}'),
    ("/v1/search", '{"query": "\\udfff"}'),
    ("/v1/ask", '{"question": "社区服务", "filters": {"doc": ["\\ud800"]}}'),
    ("/v1/chat/completions", '{"model": "policy-bot", "messages": [{"role": "user", "content": "\\ud800"}]}'),
    ("/v1/chat/completions", '{"model": "policy-bot", "stream": true, "messages": [{"role": "user", "content": "\\ud800"}]}'),
    ("/v1/chat/completions", '{"model": "policy-bot", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}'),
])
def test_hostile_text_gets_a_4xx_json_error_not_a_500(client, path, body):
    r = client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"]


def test_a_bad_filter_names_the_filters_parameter(client):
    r = client.post("/v1/ask", json={"question": "社区服务", "filters": {"doc": ["no-such-doc"]}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "filters"


def test_the_page_is_served_with_security_headers(client):
    r = client.get("/")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_api_key_is_a_startup_error(key):
    with pytest.raises(ValidationError, match="empty"):
        Settings(api_key=key)


def test_cli_with_invalid_bytes_in_the_question_exits_2_with_a_json_error(bot, settings):
    env = os.environ | {"POLICYBOT_INDEX_DIR": str(settings.index_dir), "POLICYBOT_CORPUS_DIR": str(settings.corpus_dir)}
    out = subprocess.run([sys.executable.encode(), b"-m", b"bot", b"ask", b"--json", b"\xff\xfe\xe7\xa4\xbe"],
                         capture_output=True, env=env, timeout=120)
    assert out.returncode == 2
    assert json.loads(out.stdout) == {"error": "question is not valid UTF-8 text"}


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.txt", b"", "no usable text"),
    ("spaces.txt", b"   \n\t\n", "no usable text"),
    ("nul.txt", "规定\x00\x00".encode(), "no usable text"),
    ("junk.docx", b"PK\x03\x04 not really a zip", "cannot be read"),
    ("big.txt", "社区".encode() * 3_000, "limit"),
])
def test_unusable_files_are_refused_with_one_line(corpus_copy, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        add_document(corpus_copy.corpus_dir, path, max_bytes=5_000)


def test_a_bad_date_is_refused(corpus_copy, tmp_path):
    path = tmp_path / "rules.txt"
    path.write_text("第一条 社区应当开展服务。\n", encoding="utf-8")
    with pytest.raises(IngestError, match="YYYY-MM-DD"):
        add_document(corpus_copy.corpus_dir, path, issued="2024-13-45")


def test_a_running_server_picks_up_a_new_build_without_a_restart(built, embedder):
    from bot.api import create_app

    fast = built.model_copy(update={"reload_interval": 0.2})
    server = LiveServer(create_app(fast, bot=PolicyBot(fast, embedder=embedder)))
    try:
        before = httpx.get(server.url + "/readyz").json()["build"]
        new = build_index(fast, embedder).name
        assert new != before
        import time

        for _ in range(100):
            if httpx.get(server.url + "/readyz").json()["build"] == new:
                break
            time.sleep(0.1)
        assert httpx.get(server.url + "/readyz").json()["build"] == new
        assert httpx.post(server.url + "/v1/ask", json={"question": "社区党建工作联席会议制度由谁牵头？"}).json()["found"]
    finally:
        server.stop()


def test_a_burst_whose_expected_wait_exceeds_the_bound_is_shed_with_retry_after(built, embedder):
    import concurrent.futures

    from bot.api import create_app

    # A bound of a millisecond: any request behind another expects to wait longer.
    tight = built.model_copy(update={"max_wait_s": 0.001, "answer_cache_size": 0})
    server = LiveServer(create_app(tight, bot=PolicyBot(tight, embedder=embedder)))
    long_question = "社区综合服务设施开放时间和服务内容有哪些规定" * 10
    try:
        with httpx.Client(timeout=30) as c, concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: c.post(server.url + "/v1/ask", json={"question": long_question}), range(16)))
            health = c.get(server.url + "/healthz")
        codes = {r.status_code for r in results}
        assert codes <= {200, 503} and 503 in codes and 200 in codes
        shed = next(r for r in results if r.status_code == 503)
        assert int(shed.headers["retry-after"]) >= 1 and shed.json()["error"]["code"] == "overloaded"
        assert health.status_code == 200
    finally:
        server.stop()


def test_a_chunked_body_over_the_limit_is_413(client):
    def chunks():
        for _ in range(100):
            yield b"x" * 1000

    r = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_user_added_documents_are_quoted_with_their_provenance(corpus_copy, embedder, tmp_path):
    path = tmp_path / "notice.txt"
    path.write_text("社区工作者月薪规定\n第一条 社区工作者月薪5万元。\n", encoding="utf-8")
    doc = add_document(corpus_copy.corpus_dir, path, doc_id="user-notice")
    assert doc.added_by_user and doc.level == "未核实" and doc.status == "未核实"
    bot = PolicyBot(corpus_copy, embedder=embedder)
    from bot.models import Filters

    a = bot.ask("社区工作者月薪多少？", filters=Filters(doc=["user-notice"]))
    assert a.found and a.citations[0].added_by_user and "用户添加，未经核实" in a.answer


def test_a_text_of_heading_shaped_lines_keeps_its_lines_as_clauses():
    from bot.corpus.chunking import parse_clauses
    from bot.models import Document

    doc = Document(id="d", title="通知", issuer="x", issued="2024-01-01", level="市", source="t", file="d.txt")
    text = "(一)一句话。\n(二)另一句话。\n"
    assert [c.text for c in parse_clauses(doc, text)] == ["(一)一句话。", "(二)另一句话。"]


def test_a_build_killed_with_sigkill_leaves_the_live_build_serving(built, embedder):
    import signal
    import time

    live = current_build(built.index_dir)
    env = os.environ | {"POLICYBOT_INDEX_DIR": str(built.index_dir), "POLICYBOT_CORPUS_DIR": str(built.corpus_dir)}
    (built.index_dir / "cache").rename(built.index_dir / "cache-away")  # force a slow build: nothing cached
    proc = subprocess.Popen([sys.executable, "-m", "bot", "index", "--force"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):  # wait until the build has started writing
        if any((built.index_dir / "builds").glob(".tmp-*")):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert current_build(built.index_dir) == live
    load_index(live)
    (built.index_dir / "cache-away").rename(built.index_dir / "cache")
    build_index(built, embedder)
    assert not list((built.index_dir / "builds").glob(".tmp-*"))


def _serving(settings: Settings, embedder=None) -> LiveServer:
    """A server as a worker starts it (it loads the index itself); ready or not, it answers /healthz."""
    import time

    from bot.api import create_app

    server = LiveServer(create_app(settings, bot=PolicyBot(settings, embedder=embedder) if embedder else None), ready_path="/healthz")
    deadline = time.monotonic() + 120
    while httpx.get(server.url + "/readyz").json()["status"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.2)
    return server


def test_a_wrongly_shaped_manifest_does_not_stop_the_build_watcher(built, embedder):
    import time

    fast = built.model_copy(update={"reload_interval": 0.1})
    server = _serving(fast, embedder)
    try:
        bad = built.index_dir / "builds" / "29990101T000000000000-badbad00"
        bad.mkdir()
        (bad / "manifest.json").write_text('{"files": [], "n_clauses": 0}', encoding="utf-8")
        (built.index_dir / "CURRENT").write_text(bad.name, encoding="utf-8")
        time.sleep(1.0)  # several watch intervals over the bad build
        new = build_index(built, embedder).name
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/readyz").json()["build"] != new and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(server.url + "/readyz").json()["build"] == new
    finally:
        server.stop()


def test_a_worker_serves_the_last_intact_build_and_never_builds(built, embedder):
    good = current_build(built.index_dir)
    damaged = build_index(built, embedder)
    _flip(damaged / "dense.faiss")
    server = _serving(built)  # no pipeline handed over: the worker loads one itself
    try:
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["build"] == good.name
        assert httpx.post(server.url + "/v1/ask", json={"question": "社区党建工作联席会议制度由谁牵头？"}).json()["found"]
    finally:
        server.stop()
    assert {p.name for p in (built.index_dir / "builds").iterdir()} == {good.name, damaged.name}


def test_a_worker_with_no_intact_build_is_not_ready_and_builds_nothing(built):
    live = current_build(built.index_dir)
    _flip(live / "dense.faiss")
    server = _serving(built)
    try:
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and "policy-bot index" in ready.json()["error"]
    finally:
        server.stop()
    assert [p.name for p in (built.index_dir / "builds").iterdir()] == [live.name]


def test_clean_up_keeps_an_intact_build_rather_than_a_damaged_one(built, embedder):
    good = current_build(built.index_dir)
    damaged = build_index(built, embedder)
    _flip(damaged / "dense.faiss")
    new = build_index(built, embedder)
    assert {p.name for p in (built.index_dir / "builds").iterdir()} == {good.name, new.name}


@pytest.mark.parametrize("pointer", ["../../elsewhere", "absolute"])
def test_current_must_name_a_folder_inside_builds(built, pointer):
    elsewhere = built.index_dir.parent / "elsewhere"  # an intact build, outside builds/
    shutil.copytree(current_build(built.index_dir), elsewhere)
    (built.index_dir / "CURRENT").write_text(str(elsewhere) if pointer == "absolute" else pointer, encoding="utf-8")
    assert current_build(built.index_dir) is None


def test_a_zip_bomb_docx_is_refused_before_it_is_unzipped(corpus_copy, tmp_path):
    import zipfile

    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * 60_000_000)  # 60 MB of zeros, ~60 KB zipped
    assert path.stat().st_size < 200_000
    with pytest.raises(IngestError, match="would unzip to 60,000,"):
        add_document(corpus_copy.corpus_dir, path, max_unzipped_bytes=50_000_000)


def test_the_same_text_under_another_id_is_refused(corpus_copy, tmp_path):
    path = tmp_path / "notice.txt"
    path.write_text("社区议事规则\n第一条 社区议事会每月召开一次。\n", encoding="utf-8")
    add_document(corpus_copy.corpus_dir, path, doc_id="notice-a")
    path.write_text("社区议事规则\r\n\r\n第一条  社区议事会每月召开一次。\r\n", encoding="utf-8")  # same words, other spacing
    with pytest.raises(IngestError, match="same text as 'notice-a'"):
        add_document(corpus_copy.corpus_dir, path, doc_id="notice-b")


@pytest.mark.parametrize(("args", "message"), [
    (["--id", "x" * 300], "--id 'xxx"),
    (["--id", "../escape"], "--id '../escape'"),
    (["--level", "县"], "--level '县'"),
    (["--status", "有效"], "--status '有效'"),
])
def test_bad_add_options_are_one_line_errors(corpus_copy, tmp_path, monkeypatch, args, message):
    from typer.testing import CliRunner

    from bot import config
    from bot.cli import app

    path = tmp_path / "rules.txt"
    path.write_text("第一条 社区应当开展服务。\n", encoding="utf-8")
    monkeypatch.setenv("POLICYBOT_CORPUS_DIR", str(corpus_copy.corpus_dir))
    config.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["add", str(path), *args])
    finally:
        config.get_settings.cache_clear()
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + message) and "pydantic" not in result.output


def test_a_policybot_variable_that_names_no_setting_is_ignored_with_a_warning(monkeypatch, caplog):
    from bot import config

    monkeypatch.setenv("POLICYBOT_MAX_INFLIGHT", "1000")  # removed by issue 24: admission is by expected wait
    monkeypatch.setenv("POLICYBOT_TOP_K", "4")
    config.get_settings.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="bot.config"):
            settings = config.get_settings()
    finally:
        config.get_settings.cache_clear()
    assert settings.top_k == 4
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.config"]
    assert len(warnings) == 1 and "POLICYBOT_MAX_INFLIGHT" in warnings[0] and "POLICYBOT_TOP_K" not in warnings[0]
