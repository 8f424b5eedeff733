"""Overload benchmark (not a test): long questions from many clients, liveness measured beside them.

    python benchmarks/overload.py [--clients 50] [--seconds 20] [--chars 500]

Starts ``policy-bot serve`` (answer cache off, so every request is answered anew) on a free
127.0.0.1 port; ``wrk`` (Debian package, a C load driver that leaves the cores to the server)
sends ``--clients`` connections of ``--chars``-character questions to /v1/ask while a second
``wrk`` with 2 connections measures /healthz. Prints both latency distributions, status codes,
and the server's resident memory before and after. Bounded in time; loopback only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile

from load import ROOT, serve

_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"non2xx\\": %d, \\"timeouts\\": %d, \\"p50_ms\\": %.1f, \\"p99_ms\\": %.1f, \\"max_ms\\": %.1f}\\n",
    summary.requests, summary.errors.status, summary.errors.timeout, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def post_lua(body: str) -> str:
    return f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body}]]\n' + _DONE


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its worker processes."""
    out = subprocess.run(["ps", "--ppid", str(pid), "-p", str(pid), "-o", "rss="], capture_output=True, text=True).stdout
    return round(sum(int(x) for x in out.split()) / 1024, 1)


def wrk(url: str, lua: str, connections: int, seconds: int) -> subprocess.Popen:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(lua)
    script.close()
    return subprocess.Popen(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "60s",
                             "-s", script.name, url], stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    return json.loads(re.search(r"^JSON (.*)$", out, re.M).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--chars", type=int, default=500)
    args = ap.parse_args()
    text = "".join((ROOT / "corpus" / "docs" / "henan-property-regs.txt").read_text(encoding="utf-8").split())
    question = text[4000 : 4000 + args.chars - 5] + "怎么规定？"
    body = json.dumps({"question": question}, ensure_ascii=False)
    with serve(1, env={"POLICYBOT_ANSWER_CACHE_SIZE": "0"}) as (base, server):
        before = rss_mb(server.pid)
        ask = wrk(base + "/v1/ask", post_lua(body), args.clients, args.seconds)
        health = wrk(base + "/healthz", _DONE, 2, args.seconds)
        ask_r, health_r = result(ask), result(health)
        after = rss_mb(server.pid)
    print(json.dumps({"clients": args.clients, "chars": len(question), "ask": ask_r, "healthz": health_r,
                      "rss_mb_before": before, "rss_mb_after": after}, ensure_ascii=False))


if __name__ == "__main__":
    main()
