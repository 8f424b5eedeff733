"""Labels flow back: what admins said about logged answers, as rows of the eval contract.

A label says an answer was correct, wrong (and which clause answers the question), or that the
question is not in the documents. ``export_rows`` turns each labelled question into a gold row
(``bot.evaluation.GoldQuestion``): ``policy-bot eval`` scores it, ``benchmarks/calibrate.py --extra``
fits on it. A question the bot got wrong is tagged ``regression``: re-asking it after a rebuild shows
whether it is fixed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bot.evaluation import GoldQuestion
from bot.usage.report import ClauseNames, question_form

logger = logging.getLogger(__name__)


def gold_row(label: dict, names: ClauseNames) -> GoldQuestion | None:
    """One labelled answer (``Store.labelled`` item) as a gold row; None when its clause is no
    longer in the index.

    The evidence is the text of the right clause (the cited ones, for a correct answer); the
    keywords are that clause's document title and section ref, which an extractive answer quoting
    it always carries (``《title》…ref：``).
    """
    question = label["resolved_question"] or label["question"]
    verdict, found = label["verdict"], label["found"]
    wrong_then = verdict == "wrong" or (verdict == "not_in_documents" and found)
    tags = ["from-log", f"label:{verdict}"] + (["regression"] if wrong_then else [])
    base = {"id": f"label-{label['answer_id']}", "question": question, "tags": tags}
    if verdict == "not_in_documents" or (verdict == "correct" and not found):
        return GoldQuestion(answerable=False, **base)
    right = [label["clause_id"]] if verdict == "wrong" else [c["clause_id"] for c in label["citations"]]
    texts = [names.text(c) for c in right]
    if not right or None in texts:
        return None
    first = names.clause(right[0])
    base["tags"].append(f"doc:{first.doc_id}")
    return GoldQuestion(answerable=True, evidence=texts, keywords=[[first.title], [first.ref]], **base)


def export_rows(labelled: list[dict], names: ClauseNames) -> tuple[list[GoldQuestion], int]:
    """Gold rows for labelled answers, one per question (its newest label; ``labelled`` is oldest
    first), and how many were skipped because their clause is no longer in the index."""
    latest: dict[str, dict] = {}
    for label in labelled:
        latest[question_form(label["resolved_question"] or label["question"])] = label
    rows, skipped = [], 0
    for label in latest.values():
        row = gold_row(label, names)
        if row is None:
            skipped += 1
            logger.warning("label on answer %s skipped: its clause is not in the index", label["answer_id"])
        else:
            rows.append(row)
    return rows, skipped


def write_rows(rows: list[GoldQuestion], out: Path) -> None:
    """JSON Lines in the eval contract (fields at their defaults left out)."""
    out.write_text("".join(json.dumps(r.model_dump(exclude_defaults=True), ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
