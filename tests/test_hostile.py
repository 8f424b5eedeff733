"""What a client without a key, a forged id or a bad byte can do (issue 23): each test one attack,
against a real uvicorn server, SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import base64
import socket
import time

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from bot.metrics import LOG_DROPPED
from bot.usage.questionlog import QuestionLog, new_answer_id
from bot.usage.store import Store, now
from tests.conftest import LiveServer, log_row
from tests.conftest import logged_answer as _answer

USER = {"Authorization": "Bearer user-key"}
ADMIN = {"Authorization": "Bearer admin-secret"}
QUESTION = "社区综合服务设施每天开放多长时间？"


def _old_id() -> str:
    """An answer id issued long ago (2001), so feedback on it is looked up in the store."""
    return f"{1_000_000_000_000:012x}" + new_answer_id()[12:]


@pytest.fixture(scope="module")
def guarded(settings, bot, tmp_path_factory):
    """A server with an API key, an admin key, a short wait bound (an uncached question behind five or more others is
    shed) and a short body deadline."""
    from bot.api import create_app

    s = settings.model_copy(update={
        "api_key": SecretStr("user-key"), "admin_key": SecretStr("admin-secret"), "max_wait_s": 0.1, "body_timeout": 2.0,
        "database_url": f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'usage.sqlite3'}", "feedback_rate": "5/minute"})
    server = LiveServer(create_app(s, bot=bot))
    yield server
    server.stop()


def _slow_body(server: LiveServer, path: str = "/v1/ask", key: str | None = None) -> socket.socket:
    """A connection that sent its head and one byte of a 1,000-byte body, then goes quiet."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: 1000\r\n\r\n{{".encode())
    return sock


def _response_head(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except (TimeoutError, ConnectionResetError):
        return b""


# 1. Admission: the key is checked before the body is read; only a read body counts as waiting for an answer.

def test_keyless_slow_bodies_do_not_shed_authenticated_asks(guarded):
    drips = [_slow_body(guarded) for _ in range(40)]  # were they counted, an ask would expect 40 answers' time, far over 0.1 s
    try:
        with httpx.Client(timeout=30) as c:
            codes = [c.post(guarded.url + "/v1/ask", json={"question": QUESTION}, headers=USER).status_code for _ in range(5)]
        assert codes == [200] * 5
    finally:
        for sock in drips:
            sock.close()


def _closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_request_without_the_key_is_refused_before_its_body_is_read_and_closed(guarded):
    sock = _slow_body(guarded)
    try:
        assert _response_head(sock, 5.0).startswith(b"HTTP/1.1 401")
        assert _closed_by_server(sock, 5.0)  # not kept open to read the dripping body
    finally:
        sock.close()


def test_authenticated_slow_bodies_get_408_without_taking_an_answer_slot(guarded):
    drips = [_slow_body(guarded, key="user-key") for _ in range(12)]  # were they counted, far over 0.1 s of wait
    try:
        with httpx.Client(timeout=30) as c:
            codes = [c.post(guarded.url + "/v1/ask", json={"question": QUESTION}, headers=USER).status_code for _ in range(3)]
        assert codes == [200] * 3
        assert all(_response_head(sock, 10.0).startswith(b"HTTP/1.1 408") and _closed_by_server(sock, 5.0) for sock in drips)
    finally:
        for sock in drips:
            sock.close()


# 8. Request heads are bounded in size and in number of lines.

def test_a_megabyte_header_is_refused_and_the_connection_closed(guarded):
    sock = socket.create_connection(("127.0.0.1", guarded.port))
    try:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection while the header was still coming
        head = _response_head(sock, 5.0)
        assert head == b"" or head.startswith(b"HTTP/1.1 400")  # refused, or cut off mid-header
    finally:
        sock.close()


def test_a_request_with_hundreds_of_headers_is_431(guarded):
    headers = {f"X-H{i}": "1" for i in range(300)}
    r = httpx.get(guarded.url + "/healthz", headers=headers)
    assert r.status_code == 431 and r.json()["error"]["code"] == "too_many_headers"


# 2. A forged feedback id holds no thread.

def test_feedback_on_an_unknown_answer_is_404_without_waiting(guarded):
    with httpx.Client(timeout=30) as c:
        t0 = time.perf_counter()
        codes = [c.post(guarded.url + "/v1/feedback", json={"answer_id": _old_id(), "rating": "up"},
                        headers=USER | {"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(4)]
        elapsed = time.perf_counter() - t0
    assert codes == [404] * 4
    assert elapsed < 3.0  # four lookups; the server used to sleep 1 s on each


# 4. Bad bytes: refused at the API, and never lose a batch's other rows.

def test_a_control_character_in_a_comment_is_422(guarded):
    r = httpx.post(guarded.url + "/v1/feedback", json={"answer_id": _old_id(), "rating": "down", "comment": "不对\u0000"}, headers=USER)
    assert r.status_code == 422 and r.json()["error"]["param"] == "comment"


def test_a_nul_in_a_question_does_not_lose_the_batch(store):
    log = QuestionLog(store, interval=0.2)
    for i in range(10):
        log.record(_answer(f"问题{i}"), new_answer_id(), "web:abc", "ask")
    log.record(_answer("带\u0000的问题"), new_answer_id(), "web:abc", "ask")
    assert log.flush()
    assert store.count() == 11
    log.close()


def test_a_row_the_database_refuses_is_dropped_alone_and_counted_once(store):
    taken = new_answer_id()
    log = QuestionLog(store, interval=0.2)
    log.record(_answer("第一次"), taken, "web:abc", "ask")
    assert log.flush()
    dropped = LOG_DROPPED._value.get()
    for i in range(9):
        log.record(_answer(f"问题{i}"), new_answer_id(), "web:abc", "ask")
    log.record(_answer("同一个编号"), taken, "web:abc", "ask")  # refused: the id is taken
    assert log.flush()
    assert store.count() == 10 and LOG_DROPPED._value.get() == dropped + 1
    log.close()


# 10 (feedback). Rate-limited per client address, one row per answer and client.

def test_feedback_beyond_the_rate_is_429_with_retry_after(guarded):
    client = USER | {"X-Forwarded-For": "10.1.1.1"}  # one address (uvicorn trusts the header from 127.0.0.1)
    a = httpx.post(guarded.url + "/v1/ask", json={"question": QUESTION}, headers=USER).json()
    codes = [httpx.post(guarded.url + "/v1/feedback", json={"answer_id": a["id"], "rating": "up", "comment": "x" * 2000},
                        headers=client).status_code for _ in range(8)]
    assert codes == [201] * 5 + [429] * 3
    r = httpx.post(guarded.url + "/v1/feedback", json={"answer_id": a["id"], "rating": "up"}, headers=client)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_a_clients_later_rating_of_an_answer_replaces_the_earlier_one(store):
    row = log_row(QUESTION)
    store.insert_answers([row])
    for rating in ("up", "down", "up", "down"):
        store.insert_feedback([{"answer_id": row["id"], "time": now(), "client": "web:abc", "rating": rating, "comment": rating}])
    store.insert_feedback([{"answer_id": row["id"], "time": now(), "client": "web:other", "rating": "up", "comment": None}])
    items, _ = store.feedback_items()
    assert sorted((i["rating"], i["comment"]) for i in items) == [("down", "down"), ("up", None)]


def test_feedback_on_another_workers_fresh_answer_is_kept_until_its_row_arrives(store):
    log = QuestionLog(store, interval=0.1, grace=10)
    answer_id = new_answer_id()  # issued by "another worker": not recorded through this log
    assert log.recently_issued(answer_id)
    log.record_feedback({"answer_id": answer_id, "time": now(), "client": "web:abc", "rating": "down", "comment": None})
    log.flush()
    store.insert_answers([log_row(QUESTION, answer_id=answer_id)])
    deadline = time.monotonic() + 10
    while not store.feedback_items()[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [i["answer_id"] for i in store.feedback_items()[0]] == [answer_id]
    log.close()


def test_an_oversized_admin_cursor_is_400(guarded):
    cursor = base64.urlsafe_b64encode(b"2020-01-01T00:00:00+00:00|" + b"9" * 40).decode()
    r = httpx.get(guarded.url + "/v1/admin/feedback", params={"cursor": cursor}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"


# 3. A locked or slow log store: answers go on, feedback and admin reads get 503 at once.

@pytest.fixture()
def on_postgresql(settings, bot, pg_database):
    from bot.api import create_app

    store = Store(pg_database)
    store.migrate()
    s = settings.model_copy(update={"database_url": pg_database, "admin_key": SecretStr("admin-secret")})
    server = LiveServer(create_app(s, bot=bot))
    yield server, store
    server.stop()
    store.engine.dispose()


def test_a_locked_log_table_gives_503_with_retry_after_and_answers_go_on(on_postgresql, pg_database):
    server, store = on_postgresql
    known = _old_id()
    store.insert_answers([log_row(QUESTION, minutes_ago=24 * 60, answer_id=known)])
    lock = psycopg.connect(pg_database.replace("postgresql+psycopg", "postgresql"))
    try:
        lock.execute("LOCK TABLE answers IN ACCESS EXCLUSIVE MODE")  # held until rollback
        with httpx.Client(timeout=10) as c:
            assert c.post(server.url + "/v1/ask", json={"question": QUESTION}).status_code == 200
            feedback = c.post(server.url + "/v1/feedback", json={"answer_id": known, "rating": "up"})
            admin = c.get(server.url + "/v1/admin/questions", headers=ADMIN)
        assert feedback.status_code == 503 and feedback.headers["retry-after"]
        assert admin.status_code == 503 and admin.json()["error"]["code"] == "store_unavailable"
    finally:
        lock.rollback()
        lock.close()
    with httpx.Client(timeout=10) as c:
        for _ in range(50):  # the writer resumes by itself
            r = c.post(server.url + "/v1/feedback", json={"answer_id": known, "rating": "up"})
            if r.status_code == 201:
                break
            time.sleep(0.2)
    assert r.status_code == 201


# 10 (metrics). Open by default (a Prometheus inside the network); behind the admin key on request.

def test_metrics_can_be_put_behind_the_admin_key(settings, bot):
    from bot.api import create_app

    s = settings.model_copy(update={"admin_key": SecretStr("admin-secret"), "metrics_public": False, "question_log": False})
    server = LiveServer(create_app(s, bot=bot))
    try:
        assert httpx.get(server.url + "/metrics").status_code == 401
        assert httpx.get(server.url + "/metrics", headers=USER).status_code == 403
        assert "policybot_requests_total" in httpx.get(server.url + "/metrics", headers=ADMIN).text
    finally:
        server.stop()


def test_metrics_are_open_by_default(guarded):
    assert httpx.get(guarded.url + "/metrics").status_code == 200
