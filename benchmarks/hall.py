"""A hall on the defaults (not a test): plain ``policy-bot serve``, no settings, driven by wrk.

    python benchmarks/hall.py [--users 1000 5000] [--questions 550]

For each ``--users`` count, on a fresh server: the users arrive within 5 s (one connection each),
each asks 3 questions 1-3 s apart drawn from ``--questions`` distinct questions of the shipped
sets, while a second wrk (2 connections) probes /healthz beside them every ``--healthz-every-ms``
per connection, as a load balancer's or a monitor's health check does (0: as fast as it can, which
takes CPU from the answers). Reports answered, shed
(503, and how many of those carried Retry-After), other statuses, latency of every request, the
/healthz latency, and whether the server still answers afterwards. Loopback only; needs ``wrk``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time

import httpx
from load import serve
from throughput import _DONE, burst_lua, question_pool, run_wrk, server_cpu_s

# Status counts of every response, read from the one wrk thread when it is done.
_COUNTS = """
ok, shed, retry_after, other = 0, 0, 0, 0
response = function(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 503 then
    shed = shed + 1
    if headers["retry-after"] or headers["Retry-After"] then retry_after = retry_after + 1 end
  else other = other + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
"""


def hall_lua(questions: list[str], users: int) -> str:
    done = """
done = function(summary, latency, requests)
  local t = threads[1]
  io.write(string.format("COUNTS {\\"ok\\": %d, \\"shed\\": %d, \\"retry_after\\": %d, \\"other\\": %d}\\n",
    t:get("ok"), t:get("shed"), t:get("retry_after"), t:get("other")))
""" + _DONE.split("\n", 2)[2]
    return burst_lua(questions, users).replace(_DONE, "") + _COUNTS + done


def _fresh_state(tmp: str) -> dict[str, str]:
    """A new question log and answer store in ``tmp``: plain serve keeps its workers' answers in the
    index folder, where an earlier run's would answer this run's questions from cache."""
    return {"POLICYBOT_DATABASE_URL": f"sqlite:///{tmp}/usage.sqlite3", "POLICYBOT_CACHE_URL": f"sqlite:///{tmp}/answers.sqlite"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--questions", type=int, default=550)
    ap.add_argument("--healthz-every-ms", type=int, default=50, help="pause between one connection's probes (0: none)")
    args = ap.parse_args()
    pool = question_pool()[: args.questions]
    results = []
    for users in args.users:
        with tempfile.TemporaryDirectory() as tmp, serve(None, _fresh_state(tmp)) as (base, server):
            health: dict = {}
            seconds = 5 + 3 * 3 + 6
            # /healthz beside the burst, for as long as it lasts.
            probe = f"delay = function() return {args.healthz_every_ms} end\n" + _DONE if args.healthz_every_ms else _DONE
            beside = threading.Thread(target=lambda: health.update(run_wrk(base + "/healthz", probe, 2, seconds, timeout=10)))
            cpu0, t0 = server_cpu_s(server.pid), time.perf_counter()
            beside.start()
            lines: list[str] = []
            r = run_wrk(base + "/v1/ask", hall_lua(pool, users), users, seconds, timeout=30, lines=lines)
            beside.join()
            counts = json.loads(next(line for line in lines if line.startswith("COUNTS ")).removeprefix("COUNTS "))
            after = httpx.post(base + "/v1/ask", json={"question": pool[0]}, timeout=30).status_code
            results.append({"users": users, "distinct_questions": len(pool), "expected_requests": 3 * users,
                            "answered": counts["ok"], "shed_503": counts["shed"], "shed_with_retry_after": counts["retry_after"],
                            "other_status": counts["other"], "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "p99_ms": r["p99_ms"],
                            "max_ms": r["max_ms"], "timeouts": r["timeouts"], "connect_errors": r["connect_errors"],
                            "wall_s": round(time.perf_counter() - t0, 1), "server_cpu_s": server_cpu_s(server.pid) - cpu0,
                            "healthz_p50_ms": health.get("p50_ms"), "healthz_p99_ms": health.get("p99_ms"),
                            "healthz_max_ms": health.get("max_ms"), "healthz_requests": health.get("requests"),
                            "healthz_non2xx": health.get("non2xx"), "healthz_every_ms": args.healthz_every_ms,
                            "ask_after_status": after,
                            "workers": len(subprocess.run(["pgrep", "-P", str(server.pid), "-f", "spawn_main"], capture_output=True,
                                                          text=True).stdout.split())})
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
