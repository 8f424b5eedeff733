"""Question-log overhead (not a test): /v1/ask throughput with the log on vs off, one run.

    python benchmarks/logging_overhead.py [--seconds 8] [--rounds 3] [--clients 16] [--database-url URL]

Starts ``policy-bot serve`` twice (log on, then off; answer cache on, so the answers themselves
are cheap and any cost of logging shows), drives each with ``wrk`` cycling through the gold
questions, and prints requests/s of both and their ratio. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import json

from load import questions, serve
from overload import _DONE, result, wrk


def cycling_lua(bodies: list[str]) -> str:
    items = ",\n".join(f"[[{b}]]" for b in bodies)
    return ("bodies = {\n" + items + "\n}\ni = 0\n"
            "request = function()\n  i = i % #bodies + 1\n"
            '  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])\nend\n' + _DONE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--database-url", default=None, help="default: the SQLite file in the index folder")
    args = ap.parse_args()
    bodies = [json.dumps({"question": q}, ensure_ascii=False) for q in questions()[:200]]
    lua = cycling_lua(bodies)
    runs = {"log_on": [], "log_off": []}
    envs = {"log_on": {"POLICYBOT_QUESTION_LOG": "true"} | ({"POLICYBOT_DATABASE_URL": args.database_url} if args.database_url else {}),
            "log_off": {"POLICYBOT_QUESTION_LOG": "false"}}
    # Alternate on/off/on/off… so drift of the machine hits both alike; compare medians.
    for _ in range(args.rounds):
        for name, env in envs.items():
            with serve(1, env=env) as (base, _):
                wrk(base + "/v1/ask", lua, args.clients, 2).communicate()  # warm the answer cache
                r = result(wrk(base + "/v1/ask", lua, args.clients, args.seconds))
            runs[name].append(round(r["requests"] / args.seconds, 1))
    out = {name: {"rps": rps, "median_rps": sorted(rps)[len(rps) // 2]} for name, rps in runs.items()}
    out["ratio_on_off"] = round(out["log_on"]["median_rps"] / out["log_off"]["median_rps"], 3)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
