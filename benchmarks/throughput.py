"""Throughput and burst benchmark (not a test), driven by wrk so the load driver takes little of
the cores; every figure comes from one run of this script.

    python benchmarks/throughput.py [--workers 2] [--seconds 15] [--clients 64] [--users 1000]

1. Ratios to /healthz on ``serve --workers N``: /v1/ask uncached (answer cache off: every request
   does the whole work; the lexical gate on, as served, and off, every question embedded) and
   /v1/ask cached (50 questions every worker has answered), each for ``--seconds`` with
   ``--clients`` connections.
2. A hall's burst on a fresh server: ``--users`` users arrive within 5 s, each asks 3 questions
   1-3 s apart, drawn from a pool of 300; latency of every answer, failures, time to drain.

Each wrk run reports its own CPU seconds beside the server's, so the driver's share is visible.
Loopback only; needs Debian's ``wrk``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import tempfile
import time

from load import ROOT, serve

_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"non2xx\\": %d, \\"timeouts\\": %d, \\"connect_errors\\": %d, "
    .. "\\"read_errors\\": %d, \\"seconds\\": %.2f, \\"p50_ms\\": %.1f, \\"p95_ms\\": %.1f, \\"p99_ms\\": %.1f, \\"max_ms\\": %.1f}\\n",
    summary.requests, summary.errors.status, summary.errors.timeout, summary.errors.connect, summary.errors.read,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def _ask_bodies(questions: list[str]) -> str:
    """Lua: POST /v1/ask, and a table ``bodies`` of one JSON body per question."""
    rows = ",\n".join("[==[" + json.dumps({"question": q}, ensure_ascii=False) + "]==]" for q in questions)
    return f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nlocal bodies = {{\n{rows}\n}}\n'


def bodies_lua(questions: list[str]) -> str:
    """POST /v1/ask with a body picked at random from ``questions``."""
    return (_ask_bodies(questions) + "math.randomseed(os.time())\n"
            "request = function() return wrk.format(nil, nil, nil, bodies[math.random(#bodies)]) end\n" + _DONE)


def sequence_lua(questions: list[str]) -> str:
    """POST /v1/ask with each of ``questions`` once, in order (then from the start again)."""
    return (_ask_bodies(questions) + "local i = 0\n"
            "request = function() i = i % #bodies + 1; return wrk.format(nil, nil, nil, bodies[i]) end\n" + _DONE)


def burst_lua(questions: list[str], users: int, arrival_ms: int = 5000) -> str:
    """wrk opens one connection per user and calls delay() before every request: the first
    ``users`` delays spread the arrivals over ``arrival_ms``, the next 2 x ``users`` are the 1-3 s
    gaps between a user's questions; after 3 x ``users`` requests every connection idles."""
    return bodies_lua(questions).replace(_DONE, "") + f"""
local calls = 0
delay = function()
  calls = calls + 1
  if calls <= {users} then return math.random(0, {arrival_ms}) end
  if calls <= {3 * users} then return math.random(1000, 3000) end
  return 3600000
end
""" + _DONE


def run_wrk(url: str, lua: str, connections: int, seconds: float, timeout: int = 30) -> dict:
    """One wrk run; its summary plus the CPU seconds wrk itself used."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, encoding="utf-8") as fh:
        fh.write(lua)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", f"{timeout}s",
                          "-s", fh.name, url], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(fh.name)
    r = json.loads(re.search(r"^JSON (.*)$", out, re.M).group(1))
    r["rps"] = round(r["requests"] / r["seconds"], 1)
    r["driver_cpu_s"] = round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2)
    return r


def server_cpu_s(pid: int) -> float:
    """CPU seconds of the server and its workers so far."""
    out = subprocess.run(["ps", "--ppid", str(pid), "-p", str(pid), "-o", "times="], capture_output=True, text=True).stdout
    return float(sum(int(x) for x in out.split()))


def question_pool() -> list[str]:
    """Every distinct question of the shipped sets (some hundreds), in a fixed shuffled order."""
    seen: dict[str, None] = {}
    for name in ("gold", "dev", "real-dev", "real-test", "conv-dev", "conv-test"):
        for line in (ROOT / "eval" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            seen[json.loads(line)["question"]] = None
    pool = list(seen)
    random.Random(5).shuffle(pool)
    return pool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--cache-url", help="share answers between the workers through this Redis (its policybot keys are cleared first)")
    args = ap.parse_args()
    pool = question_pool()
    report: dict = {"workers": args.workers, "cores": os.cpu_count(), "clients": args.clients, "seconds": args.seconds,
                    "distinct_questions": len(pool)}
    quiet = {"POLICYBOT_QUESTION_LOG": "false"}
    # Uncached: the answer cache off, so every request does the whole work (embedding included).
    with serve(args.workers, quiet | {"POLICYBOT_ANSWER_CACHE_SIZE": "0"}) as (base, server):
        warm = ["社区工作者的薪酬待遇怎么定？", "村委会换届选举怎么组织？", "社区养老服务有哪些要求？", "志愿者注册要什么条件？"]
        run_wrk(base + "/v1/ask", sequence_lua(warm), 2, 2)  # warm-up on questions outside the pool
        cpu0 = server_cpu_s(server.pid)
        report["healthz"] = run_wrk(base + "/healthz", _DONE, args.clients, args.seconds)
        # Each question once, so that no cache helps (the query-embedding cache keys on the topic a
        # question is reduced to, so variants of one question would share it): a shorter run.
        seconds = min(args.seconds, 3)
        report["ask_uncached"] = run_wrk(base + "/v1/ask", sequence_lua(pool), args.clients, seconds)
        report["ask_uncached"]["repeats"] = max(0, report["ask_uncached"]["requests"] - len(pool))
        report["server_cpu_s"] = server_cpu_s(server.pid) - cpu0
    # The same, every question embedded (the lexical gate off): what the gate saves.
    with serve(args.workers, quiet | {"POLICYBOT_ANSWER_CACHE_SIZE": "0", "POLICYBOT_LEXICAL_GATE": "false"}) as (base, _):
        run_wrk(base + "/v1/ask", sequence_lua(warm), 2, 2)
        report["ask_uncached_no_gate"] = run_wrk(base + "/v1/ask", sequence_lua(pool), args.clients, seconds)
        report["ask_uncached_no_gate"]["repeats"] = max(0, report["ask_uncached_no_gate"]["requests"] - len(pool))
    # Cached: 50 questions that every worker has answered once.
    with serve(args.workers, quiet) as (base, server):
        run_wrk(base + "/v1/ask", sequence_lua(pool[:50]), 8, 4)
        report["ask_cached"] = run_wrk(base + "/v1/ask", bodies_lua(pool[:50]), args.clients, args.seconds)
    for name in ("ask_cached", "ask_uncached", "ask_uncached_no_gate"):
        report[f"ratio_{name}"] = round(report[name]["rps"] / report["healthz"]["rps"], 3)
    burst_pool = pool[:300]
    # A hall's setting: a worker may hold a request of every user rather than turn any away.
    report["burst_max_inflight"], report["burst_cache_url"] = args.users, args.cache_url
    hall = {"POLICYBOT_MAX_INFLIGHT": str(args.users)}
    if args.cache_url:
        import redis

        client = redis.Redis.from_url(args.cache_url)
        for key in client.scan_iter("policybot:answer:*"):
            client.delete(key)
        hall["POLICYBOT_CACHE_URL"] = args.cache_url
    with serve(args.workers, quiet | hall) as (base, server):
        cpu0 = server_cpu_s(server.pid)
        t0 = time.perf_counter()
        report["burst"] = run_wrk(base + "/v1/ask", burst_lua(burst_pool, args.users), args.users, 5 + 3 * 3 + 6, timeout=30)
        report["burst"]["wall_s"] = round(time.perf_counter() - t0, 1)
        report["burst"]["server_cpu_s"] = server_cpu_s(server.pid) - cpu0
        report["burst"]["expected_requests"] = 3 * args.users
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
