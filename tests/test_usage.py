"""Learning from use: the question log, feedback, admin API, metrics and report — on SQLite and on
a real PostgreSQL server (127.0.0.1:5432, a throwaway database per test run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from bot.evaluation import GoldSetError, load_gold
from bot.metrics import LOG_DROPPED
from bot.usage import report as usage
from bot.usage.questionlog import QuestionLog, new_answer_id
from bot.usage.store import Store, now
from tests.conftest import LiveServer
from tests.conftest import log_row as _row
from tests.conftest import logged_answer as _answer


def test_migrations_are_idempotent(store):
    store.migrate()
    store.migrate()
    assert store.count() == 0


def test_questions_page_newest_first_with_a_cursor(store):
    rows = [_row(f"问题{i}", found=i % 2 == 0, minutes_ago=i) for i in range(7)]
    store.insert_answers(rows)
    seen, cursor = [], None
    while True:
        items, cursor = store.questions(limit=3, cursor=cursor)
        seen += [i["question"] for i in items]
        if cursor is None:
            break
    assert seen == [f"问题{i}" for i in range(7)]
    unanswered, _ = store.questions(found=False, limit=50)
    assert [i["question"] for i in unanswered] == ["问题1", "问题3", "问题5"]
    recent, _ = store.questions(since=now() - timedelta(minutes=2, seconds=30), limit=50)
    assert [i["question"] for i in recent] == ["问题0", "问题1", "问题2"]


def test_feedback_is_joined_to_its_answer_and_purged_with_it(store):
    old, new = _row("旧问题", minutes_ago=60 * 24 * 200), _row("新问题", found=False)
    store.insert_answers([old, new])
    store.insert_feedback([{"answer_id": new["id"], "time": now(), "client": "web:abc", "rating": "down", "comment": "不对"},
                           {"answer_id": old["id"], "time": now(), "client": "web:abc", "rating": "up", "comment": None}])
    items, _ = store.feedback_items(rating="down")
    assert [(i["question"], i["comment"]) for i in items] == [("新问题", "不对")]
    assert store.purge(now() - timedelta(days=180)) == 1
    assert [i["question"] for i in store.questions()[0]] == ["新问题"]
    assert [i["rating"] for i in store.feedback_items()[0]] == ["down"]


def test_the_log_writes_off_the_request_path_in_batches(store):
    log = QuestionLog(store, interval=0.05)
    for i in range(25):
        log.record(_answer(f"问题{i}"), new_answer_id(), "web:abc", "ask")
    assert log.flush()
    assert store.count() == 25
    log.close()


def test_an_unreachable_store_drops_rows_quickly_and_writing_resumes(tmp_path):
    missing = tmp_path / "later"
    log = QuestionLog(Store(f"sqlite:///{missing / 'usage.sqlite3'}", timeout=0.2), interval=0.05)
    dropped = LOG_DROPPED._value.get()
    t0 = time.perf_counter()
    for i in range(20):
        log.record(_answer(f"问题{i}"), new_answer_id(), "web:abc", "ask")
    assert time.perf_counter() - t0 < 0.5  # recording never waits for the database
    log.flush()
    assert LOG_DROPPED._value.get() >= dropped + 20
    missing.mkdir()  # the database comes back
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log.record(_answer("恢复后"), new_answer_id(), "web:abc", "ask")
        log.flush()
        if log.store.count() if missing.joinpath("usage.sqlite3").exists() else 0:
            break
        time.sleep(0.3)
    assert log.store.count() >= 1
    log.close()


def test_the_report_shows_days_citations_unanswered_groups_and_down_votes(store, tmp_path):
    rows = [_row("社区工作者每年培训多少学时？", found=False), _row("社区工作者培训学时是多少？", found=False),
            _row("广场舞音量多少分贝？", found=False), _row(), _row()]
    store.insert_answers(rows)
    store.insert_feedback([{"answer_id": rows[3]["id"], "time": now(), "client": "x", "rating": "down", "comment": "引错了"}])
    data = usage.build(store, now() - timedelta(days=7))
    assert data["questions"] == 5 and data["found_rate"] == 0.4
    assert data["unanswered_groups"][0]["count"] == 2  # the two wordings of the 学时 question, counted as one
    assert data["top_clauses"][0] == ("xc-plan:s2.c4.i1", 2)
    md, page = usage.markdown(data), usage.html_page(data)
    assert "引错了" in md and "data:image/svg+xml" in page and "http://" not in page.replace("http://www.w3.org", "")
    assert usage.csv_rows(data).splitlines()[0].startswith("time,question")
    path = tmp_path / "candidates.jsonl"
    path.write_text(usage.gold_candidates(data), encoding="utf-8")
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first["answerable"] is None and first["tags"] == ["from-log"]
    with pytest.raises(GoldSetError, match="not labelled yet"):
        load_gold(path)


@pytest.fixture(scope="module")
def logged(tmp_path_factory, settings, bot):
    """A server with the question log on SQLite and an admin key."""
    from bot.api import create_app

    s = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path_factory.mktemp('log') / 'usage.sqlite3'}",
                                    "admin_key": SecretStr("admin-secret"), "api_key": SecretStr("user-key")})
    server = LiveServer(create_app(s, bot=bot))
    yield server
    server.stop()


USER = {"Authorization": "Bearer user-key"}
ADMIN = {"Authorization": "Bearer admin-secret"}


def test_answers_get_an_id_and_feedback_is_recorded(logged):
    a = httpx.post(logged.url + "/v1/ask", json={"question": "社区综合服务设施每天开放多长时间？"}, headers=USER).json()
    assert a["id"]
    r = httpx.post(logged.url + "/v1/feedback", json={"answer_id": a["id"], "rating": "down", "comment": "想知道周末"}, headers=USER)
    assert r.status_code == 201
    for _ in range(40):
        items = httpx.get(logged.url + "/v1/admin/feedback", headers=ADMIN).json()["items"]
        if items:
            break
        time.sleep(0.25)
    assert items[0]["answer_id"] == a["id"] and items[0]["comment"] == "想知道周末" and items[0]["rating"] == "down"


@pytest.mark.parametrize(("body", "status"), [
    ({"answer_id": "0" * 32, "rating": "up"}, 404),
    ({"answer_id": "x", "rating": "meh"}, 422),
    ({"rating": "up"}, 422),
])
def test_bad_feedback_gets_a_clear_error(logged, body, status):
    r = httpx.post(logged.url + "/v1/feedback", json=body, headers=USER)
    assert r.status_code == status and r.json()["error"]["code"]


def test_the_admin_api_needs_the_admin_key(logged):
    assert httpx.get(logged.url + "/v1/admin/questions").status_code == 401
    assert httpx.get(logged.url + "/v1/admin/questions", headers=USER).status_code == 403
    httpx.post(logged.url + "/v1/ask", json={"question": "许昌市今年的低保标准是多少？"}, headers=USER)
    for _ in range(40):
        page = httpx.get(logged.url + "/v1/admin/questions", params={"found": "false", "limit": 5}, headers=ADMIN).json()
        if page["items"]:
            break
        time.sleep(0.25)
    item = page["items"][0]
    assert {"id", "time", "question", "found", "reason"} <= set(item) and item["found"] is False
    assert "user-key" not in json.dumps(page) and item["client"].startswith("key:")


def test_metrics_are_exposed_in_prometheus_format(logged):
    httpx.post(logged.url + "/v1/ask", json={"question": "社区党建工作联席会议制度由谁牵头？"}, headers=USER)
    text = httpx.get(logged.url + "/metrics").text
    for name in ("policybot_requests_total", "policybot_request_seconds_bucket", "policybot_answers_total",
                 "policybot_answer_cache_hits_total", "policybot_log_queue_depth", "policybot_log_rows_dropped_total",
                 "policybot_llm_calls_total"):
        assert name in text, name


def test_logging_off_stores_nothing(settings, bot, tmp_path):
    from bot.api import create_app

    s = settings.model_copy(update={"question_log": False, "database_url": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    server = LiveServer(create_app(s, bot=bot))
    try:
        a = httpx.post(server.url + "/v1/ask", json={"question": "社区党建工作联席会议制度由谁牵头？"}).json()
        assert a["id"] is None and not (tmp_path / "x.sqlite3").exists()
    finally:
        server.stop()


def _serve(env: dict, workers: int = 2):
    from benchmarks.load import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", str(workers)],
                            env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def test_two_workers_log_every_answer_once_to_postgresql_even_while_writes_fail(settings, bot, pg_database):
    import concurrent.futures

    store = Store(pg_database)
    store.migrate()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM feedback")
        conn.exec_driver_sql("DELETE FROM answers")
    env = {"POLICYBOT_INDEX_DIR": str(settings.index_dir), "POLICYBOT_CORPUS_DIR": str(settings.corpus_dir),
           "POLICYBOT_DATABASE_URL": pg_database, "POLICYBOT_RELOAD_INTERVAL": "0"}
    proc, url = _serve(env)
    questions = [g.question for g in load_gold(settings.corpus_dir.parent / "eval" / "gold.jsonl")][:60]
    try:
        with httpx.Client(timeout=60) as c, concurrent.futures.ThreadPoolExecutor(6) as pool:
            first = list(pool.map(lambda q: c.post(url + "/v1/ask", json={"question": q}), questions))
            assert all(r.status_code == 200 for r in first)
            ids = {r.json()["id"] for r in first}
            deadline = time.monotonic() + 20
            while store.count() < 60 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert store.count() == 60 and len(ids) == 60
            with store.engine.connect() as conn:
                logged = {r[0] for r in conn.exec_driver_sql("SELECT id FROM answers")}
            assert logged == ids  # none lost, none duplicated

            with store.engine.begin() as conn:  # the store stops taking writes mid-load
                conn.exec_driver_sql("ALTER TABLE answers RENAME TO answers_away")
            during = list(pool.map(lambda q: c.post(url + "/v1/ask", json={"question": q}), questions[:30]))
            assert all(r.status_code == 200 and r.json()["found"] is not None for r in during)
            time.sleep(1.5)
            dropped = sum(float(line.split()[-1]) for line in c.get(url + "/metrics").text.splitlines()
                          if line.startswith("policybot_log_rows_dropped_total"))
            assert dropped > 0  # (one worker's view; each worker counts its own)
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE answers_away RENAME TO answers")
            after = list(pool.map(lambda q: c.post(url + "/v1/ask", json={"question": q}), questions[:20]))
            deadline = time.monotonic() + 20
            while store.count() < 80 and time.monotonic() < deadline:
                time.sleep(0.3)
            with store.engine.connect() as conn:
                logged = {r[0] for r in conn.exec_driver_sql("SELECT id FROM answers")}
            assert {r.json()["id"] for r in after} <= logged  # logging resumed after the store came back
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        store.engine.dispose()


def test_cli_report_and_purge(settings, bot, tmp_path, pg_database):
    env = os.environ | {"POLICYBOT_INDEX_DIR": str(settings.index_dir), "POLICYBOT_CORPUS_DIR": str(settings.corpus_dir),
                        "POLICYBOT_DATABASE_URL": pg_database}
    out = subprocess.run([sys.executable, "-m", "bot", "report", "--since", "30d", "--until", "2099-01-01T00:00", "--format", "html", "--out", str(tmp_path / "r.html"),
                          "--gold-candidates", str(tmp_path / "c.jsonl")], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "data:image/svg+xml" in (tmp_path / "r.html").read_text(encoding="utf-8")
    purge = subprocess.run([sys.executable, "-m", "bot", "log", "purge", "--before", "2000-01-01"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert purge.returncode == 0 and "deleted 0 answers" in purge.stdout


@pytest.mark.parametrize("question", ["=HYPERLINK(\"http://x\",\"点我\")", "+cmd|' /C calc'!A0", "-1+1", "@SUM(1)", "\t=1", "\r=1"])
def test_report_csv_never_writes_a_live_formula(store, question):
    import csv
    import io

    store.insert_answers([_row(question, found=False)])
    rows = list(csv.reader(io.StringIO(usage.csv_rows(usage.build(store, now() - timedelta(days=1))))))
    cell = rows[1][1]
    assert cell == "'" + question  # shown as the text the user typed


def _grouped_by_reference(questions: list[str], threshold: float = 0.4) -> list[list[str]]:
    """The plain greedy grouping: each question against every group's first question."""
    from bot.text import char_bigrams

    groups: list[tuple[set[str], list[str]]] = []
    for q in questions:
        grams = char_bigrams(q)
        for head, members in groups:
            if grams and len(grams & head) / len(grams | head) >= threshold:
                members.append(q)
                break
        else:
            groups.append((grams, [q]))
    return sorted((m for _, m in groups), key=len, reverse=True)


def test_report_grouping_equals_comparing_with_every_group():
    import random

    rng = random.Random(7)
    words = ["社区", "工作者", "培训", "学时", "每年", "多少", "服务", "设施", "开放", "时间", "农村", "城市", "标准", "要求", "补贴"]
    questions = ["".join(rng.sample(words, rng.randint(1, 5))) + "？" for _ in range(600)] + ["？", "a", ""]
    assert usage.group_similar(questions) == _grouped_by_reference(questions)


def test_report_grouping_of_twelve_thousand_distinct_questions_is_near_linear():
    import random

    rng = random.Random(11)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    questions = ["".join(rng.choices(alphabet, k=rng.randint(6, 20))) + "？" for _ in range(12_000)]
    t0 = time.perf_counter()
    groups = usage.group_similar(questions)
    assert time.perf_counter() - t0 < 20  # the quadratic grouping took 65 s; this takes well under 1 s
    assert sum(map(len, groups)) == 12_000


def test_serve_gives_each_worker_its_share_of_the_cores_for_every_thread_pool(settings, bot, tmp_path):
    # Two workers whose encoder, FAISS and BLAS pools each took every core would contend for them.
    from bot.cli.serving import default_workers

    env = {"POLICYBOT_INDEX_DIR": str(settings.index_dir), "POLICYBOT_CORPUS_DIR": str(settings.corpus_dir),
           "POLICYBOT_DATABASE_URL": f"sqlite:///{tmp_path}/log.sqlite3", "POLICYBOT_RELOAD_INTERVAL": "0"}
    with pytest.MonkeyPatch.context() as mp:  # as on a machine where nobody set them
        for k in ("OMP_NUM_THREADS", "POLICYBOT_EMBED_THREADS"):
            mp.delenv(k, raising=False)
        proc, _ = _serve(env)
    try:
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        environs = [dict(kv.split("=", 1) for kv in open(f"/proc/{pid}/environ").read().split("\0") if "=" in kv)
                    for pid in workers]
        share = str(max(1, default_workers() // 2))
        served = [e for e in environs if "POLICYBOT_INDEX_DIR" in e]
        assert served and all(e.get("OMP_NUM_THREADS") == share and e.get("POLICYBOT_EMBED_THREADS") == share for e in served)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_stores_of_one_process_can_migrate_at_the_same_time(tmp_path):
    # Alembic's running migration lives in module globals: unserialised, concurrent upgrades raise
    # KeyError('config') in one of them (seen from the question-log writer's thread).
    from concurrent.futures import ThreadPoolExecutor

    from bot.usage.store import Store

    stores = [Store(f"sqlite:///{tmp_path / f'usage{i}.sqlite3'}") for i in range(8)]
    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            assert [f.exception() for f in [pool.submit(s.migrate) for s in stores]] == [None] * len(stores)
