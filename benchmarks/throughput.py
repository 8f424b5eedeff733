"""Throughput and burst benchmark (not a test), driven by wrk so the load driver takes little of
the cores; every figure comes from one run of this script.

    python benchmarks/throughput.py [--workers 2] [--seconds 15] [--clients 64] [--users 1000]

1. Ratios to /healthz on ``serve --workers N``: /v1/ask uncached (answer cache off: every request
   does the whole work; the lexical gate on, as served, and off, every question embedded) and
   /v1/ask cached (50 questions every worker has answered), each for ``--seconds`` with
   ``--clients`` connections; the uncached runs ask every question of the pool (some hundreds)
   exactly once.
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
import signal
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


def once_lua(questions: list[str]) -> str:
    """POST /v1/ask with each of ``questions`` exactly once; a connection with nothing left to ask
    waits. At the last answer the thread stops and prints ``ALL_ANSWERED``, on which ``run_wrk``
    interrupts wrk, so that its duration runs from the first request to the last answer (one wrk
    thread)."""
    # wrk (4.1) calls request() once when a thread starts and never sends that one: body n goes
    # out on call n + 1. A connection the server closes while it waits is reopened with a request
    # at once, without delay(): past the pool that is a GET /healthz, not counted as an answer.
    return _ask_bodies(questions) + f"""local calls = 0
answered = 0
delay = function() return calls <= #bodies and 0 or 3600000 end
request = function()
  calls = calls + 1
  if calls <= #bodies + 1 then return wrk.format(nil, nil, nil, bodies[math.max(calls - 1, 1)]) end
  return wrk.format("GET", "/healthz", {{}}, nil)
end
response = function(status, headers, body)
  if status == 200 and body == '{{"status":"ok"}}' then return end
  if status ~= 200 then io.write("NON2XX " .. status .. " " .. body:sub(1, 300):gsub("\\n", " ") .. "\\n") end
  answered = answered + 1
  if answered == #bodies then io.write("{ALL_ANSWERED}\\n"); io.flush(); wrk.thread:stop() end
end
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
""" + _DONE.replace("summary.requests,", 'threads[1]:get("answered"),')


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


# wrk's -d for the uncached runs; they end at the pool's last answer, long before it.
UNCACHED_LIMIT_S = 300
ALL_ANSWERED = "ALL_ANSWERED"
# Warm-up questions outside the pool.
WARM_UP = ["社区工作者的薪酬待遇怎么定？", "村委会换届选举怎么组织？", "社区养老服务有哪些要求？", "志愿者注册要什么条件？"]


def run_wrk(url: str, lua: str, connections: int, seconds: float, timeout: int = 30, until: str | None = None,
            lines: list[str] | None = None) -> dict:
    """One wrk run; its summary plus the CPU seconds wrk itself used. ``until``: a line the script
    prints when it is done, on which wrk is interrupted (it then reports and exits at once);
    ``lines``: filled with everything wrk printed."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, encoding="utf-8") as fh:
        fh.write(lua)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with subprocess.Popen(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", f"{timeout}s",
                           "-s", fh.name, url], stdout=subprocess.PIPE, text=True) as proc:
        lines = [] if lines is None else lines
        for line in proc.stdout:
            lines.append(line)
            if until and line.strip() == until:
                proc.send_signal(signal.SIGINT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(fh.name)
    if proc.returncode:
        raise RuntimeError(f"wrk exited with {proc.returncode}: {''.join(lines)[-500:]}")
    r = json.loads(re.search(r"^JSON (.*)$", "".join(lines), re.M).group(1))
    if errors := [line.removeprefix("NON2XX ").strip() for line in lines if line.startswith("NON2XX ")]:
        r["non2xx_seen"] = errors
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


def run_uncached(args: argparse.Namespace, pool: list[str], env: dict) -> dict:
    """/v1/ask with each question of ``pool`` exactly once, on a fresh server (the query-embedding
    and BM25 caches key on the topic a question is reduced to, so a repeat would be partly cached);
    timed from the first request to the last answer."""
    with serve(args.workers, env) as (base, server):
        run_wrk(base + "/v1/ask", sequence_lua(WARM_UP), 2, 2)
        cpu0 = server_cpu_s(server.pid)
        r = run_wrk(base + "/v1/ask", once_lua(pool), args.clients, UNCACHED_LIMIT_S, until=ALL_ANSWERED)
        r["server_cpu_s"] = server_cpu_s(server.pid) - cpu0
    return r


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
    uncached = quiet | {"POLICYBOT_ANSWER_CACHE_SIZE": "0"}
    with serve(args.workers, uncached) as (base, _):
        report["healthz"] = run_wrk(base + "/healthz", _DONE, args.clients, args.seconds)
    report["ask_uncached"] = run_uncached(args, pool, uncached)
    # The same, every question embedded (the lexical gate off): what the gate saves.
    report["ask_uncached_no_gate"] = run_uncached(args, pool, uncached | {"POLICYBOT_LEXICAL_GATE": "false"})
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
