"""Report speed on a large log (not a test): fills a question log with a day of questions, then
times ``policy-bot report``'s build and HTML rendering for a 3-hour session and for the whole day.

    python benchmarks/report_speed.py [--rows 38490] [--database-url URL] [--html report.html]

Every distinct question of the shipped eval sets is answered once by the real pipeline; the log
is those answers (citations, closest clauses, found or not) repeated at random times over a day,
with a 👎 and a comment on 1 % of them. Default store: a fresh SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.config import get_settings
from bot.evaluation import load_gold
from bot.pipeline import PolicyBot
from bot.usage import report
from bot.usage.questionlog import answer_row, new_answer_id
from bot.usage.store import Store

EVAL = Path(__file__).resolve().parent.parent / "eval"
COMMENTS = ["没说周末开不开", "引用的不是这个文件", "想知道具体金额", "答非所问", None]


def fill(store: Store, n: int, day: datetime, seed: int = 7) -> None:
    """``n`` logged answers over ``day`` (UTC), 1 % of them rated 👎."""
    settings = get_settings()
    bot = PolicyBot(settings)
    questions = sorted({g.question for p in sorted(EVAL.glob("*.jsonl")) for g in load_gold(p) if not g.history})
    answers = [bot.ask(q) for q in questions]
    rng = random.Random(seed)
    weights = [rng.paretovariate(1.2) for _ in answers]  # a few questions asked very often, as in a hall
    rows, feedback = [], []
    for a in rng.choices(answers, weights, k=n):
        t = day + timedelta(seconds=rng.uniform(0, 86_400))
        rows.append(answer_row(a, new_answer_id(), f"web:{rng.randrange(1000):04d}", "chat", t))
        if rng.random() < 0.01:
            feedback.append({"answer_id": rows[-1]["id"], "time": t + timedelta(seconds=30), "client": rows[-1]["client"],
                             "rating": "down", "comment": rng.choice(COMMENTS)})
    for i in range(0, len(rows), 5000):
        store.insert_answers(rows[i:i + 5000])
    store.insert_feedback(feedback)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=38_490)
    ap.add_argument("--database-url")
    ap.add_argument("--html", type=Path, help="also write the session's report here")
    args = ap.parse_args()
    store = Store(args.database_url or f"sqlite:///{tempfile.mkdtemp()}/usage.sqlite3")
    store.migrate()
    day = datetime(2026, 11, 30, tzinfo=timezone.utc)
    if store.count() < args.rows:
        t0 = time.perf_counter()
        fill(store, args.rows, day)
        print(f"filled {store.count()} rows in {time.perf_counter() - t0:.1f} s")
    settings = get_settings()
    names = report.ClauseNames.from_build(settings.index_dir)
    for label, since, until in (("session 01:00-04:00 UTC", day + timedelta(hours=1), day + timedelta(hours=4)),
                                ("whole day", day, day + timedelta(days=1))):
        t0 = time.perf_counter()
        data = report.build(store, since, until, names=names, tz=settings.timezone)
        page = report.html_page(data)
        t1 = time.perf_counter()
        report.markdown(data)
        print(f"{label}: {data['questions']} questions, build + html {t1 - t0:.2f} s (markdown {time.perf_counter() - t1:.2f} s), "
              f"{len(page) // 1024} KiB")
        if args.html and label.startswith("session"):
            args.html.write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()
