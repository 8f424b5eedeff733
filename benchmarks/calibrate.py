"""Fit the refusal model on the dev split and write ``bot/data/refusal.json``.

    python benchmarks/calibrate.py [--dev eval/dev.jsonl]

Only the dev split is used (never eval/gold.jsonl). Rows a hard rule already decides are left out
of the fit. The threshold maximises refusal accuracy on dev within a false-refusal budget (default 5 %).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bot.evaluation import load_gold
from bot.pipeline import PolicyBot
from bot.refusal import FEATURES, RefusalModel, features, fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dev", type=Path, nargs="+", default=[Path("eval/dev.jsonl"), Path("eval/real-dev.jsonl")])
    ap.add_argument("--out", type=Path, default=Path("bot/data/refusal.json"))
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--max-false-refusal", type=float, default=0.02, help="false-refusal budget on dev (small: a small dev set makes a loose budget overfit)")
    args = ap.parse_args()

    bot = PolicyBot(refusal=RefusalModel.always_answer())
    rows = []
    # The serving decision path itself: with a model that never refuses, only hard rules decide.
    for g in (g for path in args.dev for g in load_gold(path)):
        d = bot.decide(g.question)
        best = d.chosen[0] if d.chosen else None
        rows.append((g.answerable, d.reason, features(d.query, best, d.evidence) if best else None))

    soft = [(y, x) for y, hard, x in rows if hard is None]
    x = np.stack([x for _, x in soft])
    y = np.array([float(a) for a, _ in soft])
    mean, std, w, b = fit(x, y, l2=args.l2)
    model = RefusalModel(mean, std, w, b, 0.5, {})
    probs = np.array([model.probability(v) for v in x])

    n_ans = sum(a for a, _, _ in rows)
    n_una = len(rows) - n_ans
    hard_refused_ans = sum(a and h is not None for a, h, _ in rows)
    hard_refused_una = sum((not a) and h is not None for a, h, _ in rows)
    rates = {}
    for t in np.round(np.arange(0.05, 0.96, 0.01), 2):
        refused_ans = hard_refused_ans + int(((probs < t) & (y == 1)).sum())
        refused_una = hard_refused_una + int(((probs < t) & (y == 0)).sum())
        rates[float(t)] = (refused_una / n_una, refused_ans / n_ans)
    # Best refusal accuracy among thresholds whose false-refusal rate stays within the budget
    # (the lowest false-refusal rate if none does); the middle of that plateau, since a small
    # dev set makes its edges noisy.
    feasible = {t: r for t, r in rates.items() if r[1] <= args.max_false_refusal} or {
        t: r for t, r in rates.items() if r[1] == min(x[1] for x in rates.values())}
    top = max(r[0] for r in feasible.values())
    plateau = [t for t, r in feasible.items() if r[0] >= top - 1e-9]
    best_t = float(np.round(np.median(plateau), 2))
    print(f"refusal accuracy {top:.3f} for thresholds {min(plateau):.2f}..{max(plateau):.2f}")
    refused_ans = hard_refused_ans + int(((probs < best_t) & (y == 1)).sum())
    refused_una = hard_refused_una + int(((probs < best_t) & (y == 0)).sum())
    model.threshold = best_t
    model.meta = {
        "fitted_on": [str(p) for p in args.dev], "rows": len(rows), "soft_rows": len(soft), "l2": args.l2,
        "dev_refusal_accuracy": round(refused_una / n_una, 4), "dev_false_refusal_rate": round(refused_ans / n_ans, 4),
    }
    args.out.write_text(model.to_json() + "\n", encoding="utf-8")
    print(f"fitted on {len(soft)} of {len(rows)} dev rows ({len(rows) - len(soft)} decided by hard rules)")
    for name, weight in zip(FEATURES, w):
        print(f"  {name:<15} {weight:+.3f}")
    print(f"threshold {best_t:.2f}: dev refusal accuracy {model.meta['dev_refusal_accuracy']:.3f}, "
          f"false-refusal rate {model.meta['dev_false_refusal_rate']:.3f} -> {args.out}")


if __name__ == "__main__":
    main()
