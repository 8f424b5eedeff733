"""Retrieval benchmark (not a test): BM25-only, dense-only and hybrid on one question set, one run.

    python benchmarks/retrieval.py --gold eval/gold.jsonl

Prints hit@1 / hit@5 / MRR and per-query latency (p50/p95 of retrieval alone) for each mode, and
the hybrid-vs-BM25 latency ratio, all measured in the same process on the same warm index.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bot.answer.retrieval import FusionMode, RetrievalMode
from bot.evaluation import is_relevant, load_gold
from bot.pipeline import PolicyBot


def run(bot: PolicyBot, gold, k: int = 5) -> dict:
    ranks, lat = [], []
    for g in gold:
        t0 = time.perf_counter()
        hits = bot.retriever.search(g.question, k)
        lat.append((time.perf_counter() - t0) * 1000)
        ranks.append(next((i for i, h in enumerate(hits, 1) if is_relevant(h.clause.text + h.clause.context, g.evidence)), None))
    n = len(ranks)
    return {
        "hit@1": sum(1 for r in ranks if r == 1) / n,
        "hit@5": sum(1 for r in ranks if r) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gold", type=Path, default=Path("eval/gold.jsonl"))
    ap.add_argument("--tag", help="only questions with this tag (e.g. paraphrase)")
    args = ap.parse_args()
    gold = [g for g in load_gold(args.gold) if g.answerable and (not args.tag or args.tag in g.tags)]
    base = PolicyBot()
    variants = {
        "bm25": (RetrievalMode.BM25, FusionMode.RRF),
        "dense": (RetrievalMode.DENSE, FusionMode.RRF),
        "hybrid-rrf": (RetrievalMode.HYBRID, FusionMode.RRF),
        "hybrid-relative": (RetrievalMode.HYBRID, FusionMode.RELATIVE),
    }
    print(f"{args.gold} ({len(gold)} answerable questions{', tag ' + args.tag if args.tag else ''}); embedder {base.embedder.model_name}")
    print(f"{'mode':<16} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'p50 ms':>7} {'p95 ms':>7}")
    results = {}
    for name, (retrieval, fusion) in variants.items():
        bot = PolicyBot(base.settings, retrieval=retrieval, fusion=fusion, embedder=base.embedder)
        run(bot, gold[:5])  # warm-up
        r = results[name] = run(bot, gold)
        print(f"{name:<16} {r['hit@1']:6.3f} {r['hit@5']:6.3f} {r['mrr']:6.3f} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f}")
    print(f"latency ratio hybrid-relative/bm25 (p50): {results['hybrid-relative']['p50_ms'] / results['bm25']['p50_ms']:.2f}")


if __name__ == "__main__":
    main()
