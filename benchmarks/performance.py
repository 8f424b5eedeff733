"""Core performance figures (not a test), measured in one run on this machine:

- index build of the corpus after the model is loaded, cold (empty embedding cache) and cached;
- ``ask`` latency in-process on a warm index (p50/p95 over the gold questions);
- resident memory after answering;
- CLI start-up to first answer with a built index (a fresh process).

    python benchmarks/performance.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.evaluation import load_gold
from bot.index.build import build_index
from bot.index.embedding import load_embedder
from bot.pipeline import PolicyBot


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=Path(tmp) / "indexes", answer_cache_size=0)  # measure the real work
        t0 = time.perf_counter()
        embedder = load_embedder(settings)
        print(f"model load            {time.perf_counter() - t0:7.2f} s  ({embedder.model_name})")
        t0 = time.perf_counter()
        build_index(settings, embedder)
        print(f"index build, cold     {time.perf_counter() - t0:7.2f} s")
        t0 = time.perf_counter()
        build_index(settings, embedder)
        print(f"index build, cached   {time.perf_counter() - t0:7.2f} s")

        bot = PolicyBot(settings, embedder=embedder)
        questions = [g.question for g in load_gold(root / "eval" / "gold.jsonl")]
        for q in questions[:5]:
            bot.ask(q)
        lat = []
        for q in questions:
            t0 = time.perf_counter()
            bot.ask(q)
            lat.append((time.perf_counter() - t0) * 1000)
        print(f"ask in-process        p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms ({len(lat)} questions)")
        print(f"resident memory (max) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:7.0f} MB")

        env = os.environ | {"POLICYBOT_INDEX_DIR": str(settings.index_dir)}
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bot", "ask", "--json", questions[0]], capture_output=True, env=env, check=True)
        found = json.loads(out.stdout)["found"]
        print(f"CLI start to answer   {time.perf_counter() - t0:7.2f} s  (found={found})")


if __name__ == "__main__":
    main()
