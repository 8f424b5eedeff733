"""Training-session load test (not a unit test): 1,000 concurrent users on 127.0.0.1.

    python benchmarks/session_load.py [--users 1000] [--questions 3] [--workers 1 2]

Each simulated trainee arrives during a ramp-up, asks ``--questions`` questions from the gold
pool with think time between them (uniform 2-8 s), then leaves. Reports success rate, latency
p50/p95, throughput and the server's peak resident memory (all worker processes), per worker
count. Bounded: every request has a 30 s timeout and the run stops after ``--deadline`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import time
from pathlib import Path

import httpx
from load import questions, serve, summary, timed


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            pass
    return total / 1024


async def session(base: str, users: int, per_user: int, ramp: float, deadline: float, pid: int) -> dict:
    pool = questions()
    latencies, failures = [], 0
    peak = 0.0
    stop = time.perf_counter() + deadline
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def trainee(i: int) -> None:
            nonlocal failures
            rng = random.Random(i)
            await asyncio.sleep(rng.uniform(0, ramp))
            for _ in range(per_user):
                if time.perf_counter() > stop:
                    return
                ms, ok = await timed(client.post(base + "/v1/ask", json={"question": rng.choice(pool)}))
                latencies.append(ms)
                failures += not ok
                await asyncio.sleep(rng.uniform(2, 8))

        async def sample_memory() -> None:
            nonlocal peak
            while time.perf_counter() < stop:
                peak = max(peak, tree_rss_mb(pid))
                await asyncio.sleep(1)

        start = time.perf_counter()
        sampler = asyncio.create_task(sample_memory())
        await asyncio.gather(*(trainee(i) for i in range(users)))
        elapsed = time.perf_counter() - start
        sampler.cancel()
    return summary(latencies, failures, elapsed) | {"rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--ramp", type=float, default=20.0)
    ap.add_argument("--deadline", type=float, default=120.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4 * args.users), hard), hard))
    print(f"{args.users} users x {args.questions} questions, think 2-8 s, ramp {args.ramp:.0f} s, "
          f"answer cache {'off' if args.no_cache else 'on'}")
    print(f"{'workers':>7} {'requests':>8} {'failed':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'server RSS MB':>13}")
    for w in args.workers:
        with serve(w, {"POLICYBOT_ANSWER_CACHE_SIZE": "0"} if args.no_cache else None) as (base, server):
            r = asyncio.run(session(base, args.users, args.questions, args.ramp, args.deadline, server.pid))
        print(f"{w:>7} {r['requests']:>8} {r['errors']:>6} {r['rps']:>7.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
              f"{r['max_ms']:>8.1f} {r['rss_mb']:>13.0f}", flush=True)


if __name__ == "__main__":
    main()
