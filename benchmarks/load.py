"""Service load benchmark (not a test): /v1/ask against /healthz on the same server, one run.

    python benchmarks/load.py [--clients 50] [--seconds 15] [--workers 1]

Starts ``policy-bot serve`` on a free 127.0.0.1 port, then for each endpoint runs ``--clients``
concurrent clients (asyncio + httpx) for ``--seconds``, and prints requests/s, p50/p95 latency,
errors, and the /v1/ask : /healthz throughput ratio. Bounded in time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(workers: int | None, env: dict | None = None):
    """``policy-bot serve`` on a free 127.0.0.1 port (``workers`` None: its default, one per core);
    yields (base URL, server process)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), *(["--workers", str(workers)] if workers else [])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ | (env or {}))
    try:
        # Every worker loads the index itself and answers 503 until it has: ready when 20 probes in a
        # row, each on a new connection (so to whichever worker accepts it), say so.
        ready = 0
        for _ in range(1200):
            try:
                ready = ready + 1 if httpx.get(base + "/readyz").status_code == 200 else 0
            except httpx.TransportError:
                ready = 0
            if ready == 20:
                break
            time.sleep(0.1 if ready == 0 else 0.01)
        else:
            raise SystemExit("server did not start")
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def questions() -> list[str]:
    return [json.loads(line)["question"] for line in (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()]


async def timed(request) -> tuple[float, bool]:
    """Await one request; its latency in ms and whether it returned 200 (transport errors fail)."""
    t0 = time.perf_counter()
    try:
        ok = (await request).status_code == 200
    except httpx.HTTPError:
        ok = False
    return (time.perf_counter() - t0) * 1000, ok


def summary(latencies: list[float], failures: int, elapsed: float) -> dict:
    lat = np.array(latencies)
    return {"requests": len(lat), "errors": failures, "rps": len(lat) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)), "max_ms": float(lat.max())}


async def drive(url: str, method: str, bodies: list | None, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker(seed: int) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                request = client.get(url) if method == "GET" else client.post(url, json={"question": rng.choice(bodies)})
                ms, ok = await timed(request)
                latencies.append(ms)
                errors += not ok

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return summary(latencies, errors, elapsed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--no-cache", action="store_true", help="disable the answer cache (every request does the full work)")
    args = ap.parse_args()
    pool = questions()
    with serve(args.workers, {"POLICYBOT_ANSWER_CACHE_SIZE": "0"} if args.no_cache else None) as (base, _):
        asyncio.run(drive(base + "/v1/ask", "POST", pool, 4, 2))  # warm-up
        health = asyncio.run(drive(base + "/healthz", "GET", None, args.clients, args.seconds))
        ask = asyncio.run(drive(base + "/v1/ask", "POST", pool, args.clients, args.seconds))
    print(f"{args.clients} clients, {args.seconds:.0f} s per endpoint, {args.workers} worker(s), {os.cpu_count()} cores, "
          f"answer cache {'off' if args.no_cache else 'on'}, {len(pool)} distinct questions")
    for name, r in (("/healthz", health), ("/v1/ask", ask)):
        print(f"{name:<9} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
              f"{r['requests']} requests, {r['errors']} errors")
    print(f"throughput ratio /v1/ask : /healthz = {ask['rps'] / health['rps']:.2f}")


if __name__ == "__main__":
    main()
