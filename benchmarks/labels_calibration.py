"""Do labels from the log change the calibration? (not a test; writes no shipped model)

    python benchmarks/labels_calibration.py [--gold eval/real-test.jsonl] [--keep DIR]

A stand-in for a trainer's day: every stand-alone question of ``--gold`` is asked through the
pipeline and logged in a fresh question log; each is labelled the way a trainer would from the
row's gold evidence (the answer was correct; wrong, and the right clause is the one holding the
evidence; or not in the documents), through ``Store.set_label``. ``policy-bot labels export``'s
rows are split by topic (``topic:`` tags) into two halves. The refusal model and lexical gate are
refitted by ``benchmarks/calibrate.py`` on the dev splits plus one half (``--extra``) into a
temporary folder, and scored on the other half (its exported rows, and its original gold rows)
beside the shipped models and a refit on the dev splits alone; then the halves swap.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bot.config import get_settings
from bot.evaluation import answer_correct, is_relevant, load_gold
from bot.pipeline import PolicyBot
from bot.usage.labels import export_rows, write_rows
from bot.usage.questionlog import answer_row, new_answer_id
from bot.usage.report import ClauseNames
from bot.usage.store import Store, now

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("n", "hit_at_1", "answer_accuracy", "refusal_accuracy", "false_refusal_rate")


def label_day(bot: PolicyBot, gold: list, store: Store) -> None:
    """Ask, log and label every question as a trainer holding the gold row would."""
    for g in gold:
        answer = bot.ask(g.question)
        aid = new_answer_id()
        store.insert_answers([answer_row(answer, aid, "web:bench", "chat", now())])
        if not g.answerable:
            store.set_label(aid, "correct" if not answer.found else "not_in_documents", None, "key:bench", "benchmark")
        elif answer.found and answer_correct(answer.answer, g.keywords) and any(
                is_relevant(c.text + c.context, g.evidence) for c in answer.citations):
            store.set_label(aid, "correct", None, "key:bench", "benchmark")
        else:
            right = next((c for c in bot.index.clauses if is_relevant(c.text + c.context, g.evidence)), None)
            if right is not None:
                store.set_label(aid, "wrong", right.id, "key:bench", "benchmark")


def evaluate(gold: Path, models: Path | None) -> dict:
    env = dict(os.environ)
    if models:
        # Every file the refit wrote (the adapter and the question memory only when it wrote them).
        fitted = {"RANKER_MODEL": "ranker.json", "REFUSAL_MODEL": "refusal.json", "GATE_MODEL": "gate.json",
                  "QUERY_ADAPTER_MODEL": "adapter.npz", "QUESTION_MEMORY_MODEL": "memory.npz"}
        env |= {f"POLICYBOT_{name}": str(models / file) for name, file in fitted.items() if (models / file).is_file()}
    out = subprocess.run([sys.executable, "-m", "bot", "eval", "--gold", str(gold), "--json"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    return {k: report[k] for k in METRICS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gold", type=Path, default=ROOT / "eval" / "real-test.jsonl")
    ap.add_argument("--keep", type=Path, help="keep the exported rows and refitted models here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    gold = [g for g in load_gold(args.gold) if not g.history]
    bot = PolicyBot(get_settings())
    store = Store(f"sqlite:///{work / 'usage.sqlite3'}")
    store.migrate()
    label_day(bot, gold, store)
    rows, skipped = export_rows(store.labelled(), ClauseNames.from_index(bot.index))
    topic = {g.question: next((t for t in g.tags if t.startswith("topic:")), g.id) for g in gold}
    topics = sorted(set(topic.values()))
    half = {t: i % 2 for i, t in enumerate(topics)}
    print(f"{len(rows)} labelled questions exported ({sum('regression' in r.tags for r in rows)} regression, {skipped} skipped); "
          f"{len(topics)} topics split in two")
    control = work / "models-control"  # the same refit without the labels: what the labels alone change
    subprocess.run([sys.executable, "benchmarks/calibrate.py", "--out", str(control)], cwd=ROOT, check=True, capture_output=True, text=True)
    for side in (0, 1):
        train, test = work / f"labels-{side}.jsonl", work / f"held-out-{side}.jsonl"
        write_rows([r for r in rows if half[topic[r.question]] == side], train)
        write_rows([r for r in rows if half[topic[r.question]] != side], test)
        original = work / f"held-out-gold-{side}.jsonl"
        original.write_text("".join(g.model_dump_json(exclude_defaults=True) + "\n" for g in gold if half[topic[g.question]] != side),
                            encoding="utf-8")
        models = work / f"models-{side}"
        subprocess.run([sys.executable, "benchmarks/calibrate.py", "--extra", str(train), "--out", str(models)], cwd=ROOT,
                       check=True, capture_output=True, text=True)
        for name, path in (("exported rows", test), ("original gold rows", original)):
            shipped, before, after = evaluate(path, None), evaluate(path, control), evaluate(path, models)
            print(f"fit on half {side}, held-out half's {name}: shipped models | refit on dev | refit on dev + labels")
            for k in METRICS:
                print(f"  {k:20s} {shipped[k]!s:>8} | {before[k]!s:>8} | {after[k]!s:>8}")


if __name__ == "__main__":
    main()
