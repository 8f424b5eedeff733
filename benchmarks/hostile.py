"""Hostile-client benchmark (not a test): the "Done means" figures of issue 23, in one run.

    python benchmarks/hostile.py [--drips 300] [--asks 100] [--forged 200] [--lock-seconds 15]

Starts ``policy-bot serve`` (1 worker, an API key and an admin key, the question log on a throwaway
PostgreSQL database at 127.0.0.1:5432) on a free 127.0.0.1 port, then:

1. ``--drips`` connections without a key each send a request head and drip its body at 1 byte/s
   (reconnecting when the server closes them), while ``--asks`` authenticated /v1/ask run 10 at a
   time: their status codes and latency.
2. ``--forged`` concurrent POST /v1/feedback with forged answer ids (each from its own forwarded
   address, so the per-client rate limit does not hide the cost of the lookup), while one client
   times a cached ask over and over: its latency.
3. The ``answers`` table locked (ACCESS EXCLUSIVE) for ``--lock-seconds`` while asks (cached and
   not), feedback on a stored answer and an admin read are timed: latency and status codes.
4. 20 keyless connections each sending an unfinished 50 MB header: the server's memory before and
   after, and how much each could send before the server closed it.

Prints one JSON object. Bounded in time; loopback only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import numpy as np
import psycopg
from load import questions, serve
from overload import rss_mb

USER = {"Authorization": "Bearer bench-user"}
ADMIN = {"Authorization": "Bearer bench-admin"}
CACHED = "社区综合服务设施每天开放多长时间？"


def stats(ms: list[float]) -> dict:
    a = np.array(ms)
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(a.max()), 1)}


def timed_post(client: httpx.Client, url: str, **kw) -> tuple[float, int]:
    t0 = time.perf_counter()
    try:
        status = client.post(url, **kw).status_code
    except httpx.HTTPError:
        status = 0
    return (time.perf_counter() - t0) * 1000, status


class Drips:
    """``n`` keyless connections dripping a request body at 1 byte/s, reconnecting when closed."""

    def __init__(self, port: int, n: int) -> None:
        self.port, self.n, self.reconnects = port, n, 0
        self._stop = threading.Event()
        self._socks = [self._open() for _ in range(n)]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        return sock

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for i, sock in enumerate(self._socks):
                try:
                    sock.sendall(b" ")
                except OSError:
                    sock.close()
                    try:
                        self._socks[i] = self._open()
                        self.reconnects += 1
                    except OSError:
                        pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self._socks:
            sock.close()


def slow_bodies(base: str, port: int, drips: int, asks: int) -> dict:
    qs = questions()
    dripping = Drips(port, drips)
    time.sleep(2.0)  # every drip connected and into its body
    with httpx.Client(timeout=60) as c, concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda q: timed_post(c, base + "/v1/ask", json={"question": q}, headers=USER), qs[:asks]))
    dripping.stop()
    codes = [s for _, s in results]
    return {"drips": drips, "drip_reconnects": dripping.reconnects, "asks": asks, "ok": codes.count(200),
            "codes": sorted(set(codes)), **stats([ms for ms, _ in results])}


def cached_ask_during(base: str, flood: Callable[[httpx.Client, int], int], n: int) -> tuple[list[float], dict, float]:
    """A cached ask timed over and over while ``n`` concurrent ``flood`` requests run: its latencies,
    the flood's status codes and how long the flood took."""
    stop = threading.Event()
    during: list[float] = []

    def probe() -> None:
        with httpx.Client(timeout=60) as c:
            while not stop.is_set():
                during.append(timed_post(c, base + "/v1/ask", json={"question": CACHED}, headers=USER)[0])

    prober = threading.Thread(target=probe)
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=n)) as c, concurrent.futures.ThreadPoolExecutor(n) as pool:
        prober.start()
        t0 = time.perf_counter()
        codes = list(pool.map(lambda i: flood(c, i), range(n)))
        elapsed = time.perf_counter() - t0
        stop.set()
        prober.join()
    return during, {str(k): codes.count(k) for k in sorted(set(codes))}, round(elapsed, 2)


def forged_feedback(base: str, forged: int) -> dict:
    with httpx.Client(timeout=60) as c:
        c.post(base + "/v1/ask", json={"question": CACHED}, headers=USER)  # now cached
        baseline = [timed_post(c, base + "/v1/ask", json={"question": CACHED}, headers=USER)[0] for _ in range(20)]
    forge = lambda c, i: timed_post(c, base + "/v1/feedback", json={"answer_id": secrets.token_hex(16), "rating": "up"},  # noqa: E731
                                    headers=USER | {"X-Forwarded-For": f"10.{i // 250}.{i % 250}.1"})[1]
    health = lambda c, i: c.get(base + "/healthz").status_code  # noqa: E731 - the control: as many requests, no log work
    control, _, control_seconds = cached_ask_during(base, health, forged)
    during, codes, elapsed = cached_ask_during(base, forge, forged)
    return {"forged": forged, "feedback_codes": codes, "forged_seconds": elapsed, "cached_ask_before": stats(baseline),
            "cached_ask_during_as_many_healthz": stats(control), "healthz_seconds": control_seconds,
            "cached_ask_during_forged": stats(during)}


def ask_loop(base: str, seconds: float, first: int, known: str) -> tuple[list, list, list]:
    """For ``seconds``: an ask (cached, and uncached: questions ``first``, ``first + 2`` …, so that two
    loops with first 0 and 1 ask alike questions), a feedback post on ``known`` and an admin read."""
    qs = questions()
    asks, feedback, admin = [], [], []
    t_end = time.perf_counter() + seconds
    with httpx.Client(timeout=60) as c:
        i = 0
        while time.perf_counter() < t_end:
            asks.append(timed_post(c, base + "/v1/ask", json={"question": CACHED if i % 2 else qs[(first + 2 * i) % len(qs)]}, headers=USER))
            feedback.append(timed_post(c, base + "/v1/feedback", json={"answer_id": known, "rating": "up"},
                                       headers=USER | {"X-Forwarded-For": f"10.9.{first % 250}.{i % 250}"}))
            t0 = time.perf_counter()
            status = c.get(base + "/v1/admin/questions", headers=ADMIN).status_code
            admin.append(((time.perf_counter() - t0) * 1000, status))
            i += 1
            time.sleep(0.2)
    return asks, feedback, admin


def summarise(asks: list, feedback: list, admin: list) -> dict:
    codes = lambda rows: {str(k): [s for _, s in rows].count(k) for k in sorted({s for _, s in rows})}  # noqa: E731
    return {"asks_cached": stats([ms for ms, _ in asks[1::2]]), "asks_uncached": stats([ms for ms, _ in asks[::2]]),
            "ask_codes": codes(asks), "feedback": stats([ms for ms, _ in feedback]), "feedback_codes": codes(feedback),
            "admin": stats([ms for ms, _ in admin]), "admin_codes": codes(admin)}


def locked_table(base: str, dsn: str, seconds: float) -> dict:
    known = f"{1_000_000_000_000:012x}" + secrets.token_hex(10)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO answers (id, time, client, route, question, found, mode, citations, latency_ms) "
                     "VALUES (%s, now() - interval '1 day', 'bench', 'ask', %s, true, 'extractive', '[]', 1)", (known, CACHED))
    unlocked = summarise(*ask_loop(base, seconds, 120, known))  # the control: the same loop, table free
    lock = psycopg.connect(dsn)
    lock.execute("LOCK TABLE answers IN ACCESS EXCLUSIVE MODE")
    try:
        locked = summarise(*ask_loop(base, seconds - 1, 121, known))
    finally:
        lock.rollback()
        lock.close()
    return {"lock_seconds": seconds, "unlocked": unlocked, "locked": locked}


def big_heads(port: int, pid: int, connections: int, megabytes: int) -> dict:
    """``connections`` clients each sending an unfinished header of up to ``megabytes`` MB, without a key."""
    before = rss_mb(pid)
    sent = []

    def send() -> None:
        total = 0
        with socket.create_connection(("127.0.0.1", port)) as sock:
            try:
                sock.sendall(b"GET /v1/documents HTTP/1.1\r\nHost: x\r\nX-Big: ")
                chunk = b"a" * 65536
                while total < megabytes << 20:
                    sock.sendall(chunk)
                    total += len(chunk)
            except OSError:
                pass  # closed by the server
        sent.append(total)

    threads = [threading.Thread(target=send) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"connections": connections, "rss_mb_before": before, "rss_mb_after": rss_mb(pid),
            "max_bytes_sent_before_close": max(sent)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--drips", type=int, default=300)
    ap.add_argument("--asks", type=int, default=100)
    ap.add_argument("--forged", type=int, default=200)
    ap.add_argument("--lock-seconds", type=float, default=15)
    args = ap.parse_args()
    name = f"policybot_bench_{uuid.uuid4().hex[:8]}"
    admin_dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    env = {"POLICYBOT_API_KEY": "bench-user", "POLICYBOT_ADMIN_KEY": "bench-admin", "POLICYBOT_RELOAD_INTERVAL": "0",
           "POLICYBOT_DATABASE_URL": dsn.replace("postgresql://", "postgresql+psycopg://")}
    report = {}
    try:
        with serve(1, env) as (base, server):
            port = int(base.rsplit(":", 1)[1])
            report["slow_bodies"] = slow_bodies(base, port, args.drips, args.asks)
            report["forged_feedback"] = forged_feedback(base, args.forged)
            report["locked_table"] = locked_table(base, dsn, args.lock_seconds)
            report["big_heads"] = big_heads(port, server.pid, 20, 50)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
