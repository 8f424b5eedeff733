"""Evaluation against a gold question set (JSON Lines; the format is a public contract).

Each row: ``{"id", "question", "answerable", "keywords": [[alt, ...], ...], "evidence": [...],
"tags"?: [...]}``. A clause is relevant when its text contains any evidence string; an answer is
correct when every keyword group has an alternative in the answer text (both after
full/half-width and space normalisation).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, ValidationError, model_validator

from bot.answer.retrieval import Hit
from bot.models import Answer, Clause
from bot.text import char_bigrams, normalize

METRIC_KEYS = (
    "n", "n_answerable", "hit_at_1", "hit_at_3", "hit_at_5", "mrr", "answer_accuracy",
    "citation_precision", "citation_recall", "refusal_accuracy", "false_refusal_rate",
    "lexical_share", "latency_p50_ms", "latency_p95_ms",
)


class GoldQuestion(BaseModel, extra="forbid"):
    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answerable: bool
    keywords: list[list[str]] = []
    evidence: list[str] = []
    tags: list[str] = []
    choice: str | None = Field(None, pattern=r"^[A-E]{1,5}$",
                               description='Multiple-choice rows: the correct option letter, or letters in order ("BD") when several are right')
    history: list[str] = Field([], description="Earlier user turns of the conversation, oldest first (follow-up rows)")
    resolved: str | None = Field(None, description="The question a follow-up should be understood as (scored by resolution_accuracy)")

    @model_validator(mode="after")
    def _consistent(self) -> GoldQuestion:
        if self.answerable and not self.evidence:
            raise ValueError("answerable rows need at least one evidence string")
        if not self.answerable and (self.keywords or self.evidence):
            raise ValueError("unanswerable rows must have empty keywords and evidence")
        if any(not group or not all(a.strip() for a in group) for group in self.keywords):
            raise ValueError("every keyword group needs at least one non-empty alternative")
        if self.choice and "".join(sorted(set(self.choice))) != self.choice:
            raise ValueError("choice letters must be distinct and in order, e.g. BD")
        return self


class GoldSetError(ValueError):
    """A gold file that does not follow the format; the message names the line."""


def load_gold(path: Path) -> list[GoldQuestion]:
    """Read and strictly validate a gold file: any malformed row raises with its line number."""
    rows, seen = [], set()
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if isinstance(raw, dict) and raw.get("answerable", False) is None:
                raise GoldSetError(f"{path}:{lineno}: row {raw.get('id')!r} is not labelled yet: set answerable "
                                   "(true/false) and, if true, keywords and evidence (rows from `policy-bot report --gold-candidates`)")
            row = GoldQuestion.model_validate(raw)
        except json.JSONDecodeError as exc:
            raise GoldSetError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "row"
            raise GoldSetError(f"{path}:{lineno}: {where}: {first['msg']}") from exc
        if row.id in seen:
            raise GoldSetError(f"{path}:{lineno}: duplicate id {row.id!r}")
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise GoldSetError(f"{path}: no questions")
    return rows


def is_relevant(clause_text: str, evidence: Iterable[str]) -> bool:
    text = normalize(clause_text)
    return any(normalize(e) in text for e in evidence)


def answer_correct(answer: str, keywords: list[list[str]]) -> bool:
    text = normalize(answer)
    return all(any(normalize(a) in text for a in group) for group in keywords)


def score_question(gold: GoldQuestion, answer: Answer, hits: list[Hit]) -> dict:
    """Per-question outcome, with a failure reason a person can act on."""
    row = {"id": gold.id, "question": gold.question, "tags": gold.tags, "answerable": gold.answerable,
           "found": answer.found, "refusal_reason": answer.reason, "latency_ms": answer.latency_ms,
           "cited": [c.clause_id for c in answer.citations], "answer": answer.answer,
           "mode": answer.mode, "retrieval": answer.retrieval, "guard": answer.guard.action if answer.guard else None,
           "choice": answer.choice, "gold_choice": gold.choice,
           "resolved_question": answer.resolved_question, "resolution_ok": _resolution_ok(gold, answer)}
    if not gold.answerable:
        row.update(rank=None, correct=None, relevant_citations=0, failure=None if not answer.found else "answered_unanswerable")
        return row
    rank = next((i for i, h in enumerate(hits, 1) if is_relevant(_clause_text(h.clause), gold.evidence)), None)
    relevant = sum(is_relevant(c.text + c.context, gold.evidence) for c in answer.citations)
    correct = answer.found and answer_correct(answer.answer, gold.keywords)
    failure = None
    if not answer.found:
        failure = f"false_refusal:{answer.reason}" + ("" if rank else " (retrieval_miss)")
    elif not relevant:
        failure = "irrelevant_citations" + ("" if rank else " (retrieval_miss)")
    elif not correct:
        failure = "keywords_missing"
    row.update(rank=rank, correct=correct, relevant_citations=relevant, failure=failure)
    return row


def _resolution_ok(gold: GoldQuestion, answer: Answer) -> bool | None:
    """For rows that give the expected resolved question: the character bigrams of the question the
    bot searched overlap the expected one's by at least 0.7 (Jaccard): wording may differ a little,
    but a missing change ("农村") or a leftover of the old topic ("城市") fails."""
    if gold.resolved is None:
        return None
    expected, got = char_bigrams(gold.resolved), char_bigrams(answer.resolved_question or answer.question)
    return bool(expected) and len(expected & got) / len(expected | got) >= 0.7


def _clause_text(clause: Clause) -> str:
    return clause.text + clause.context


def summarize(rows: list[dict]) -> dict:
    """The metrics (``METRIC_KEYS``) over per-question rows."""
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    ranks = [r["rank"] for r in ans]
    cited = sum(len(r["cited"]) for r in ans if r["found"])
    lat = np.array([r["latency_ms"] for r in rows]) if rows else np.zeros(1)

    def share(k: int) -> float | None:
        return _ratio(sum(1 for x in ranks if x and x <= k), len(ans))

    return {
        "n": len(rows),
        "n_answerable": len(ans),
        "hit_at_1": share(1),
        "hit_at_3": share(3),
        "hit_at_5": share(5),
        "mrr": _ratio(sum(1 / x for x in ranks if x), len(ans)),
        "answer_accuracy": _ratio(sum(bool(r["correct"]) for r in ans), len(ans)),
        "citation_precision": _ratio(sum(r["relevant_citations"] for r in ans if r["found"]), cited),
        "citation_recall": _ratio(sum(r["relevant_citations"] > 0 for r in ans), len(ans)),
        "refusal_accuracy": _ratio(sum(not r["found"] for r in una), len(una)),
        "false_refusal_rate": _ratio(sum(not r["found"] for r in ans), len(ans)),
        # Answered from BM25 alone, the query never embedded (the lexical gate).
        "lexical_share": _ratio(sum(r.get("retrieval") == "lexical" for r in rows), len(rows)),
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "latency_p95_ms": round(float(np.percentile(lat, 95)), 2),
    } | _guard_metrics(rows) | _choice_metrics(rows) | _resolution_metrics(rows)


def _guard_metrics(rows: list[dict]) -> dict:
    """In generative mode: how often the guard intervened, and how often the LLM's text was shown."""
    guarded = [r for r in rows if r.get("guard")]
    if not guarded:
        return {}
    return {
        "guard_intervention_rate": _ratio(sum(r["guard"] != "none" for r in guarded), len(guarded)),
        "guard_fallback_rate": _ratio(sum(r["guard"] == "fallback" for r in guarded), len(guarded)),
        "generative_rate": _ratio(sum(r["mode"] == "generative" for r in guarded), len(guarded)),
    }


def _choice_metrics(rows: list[dict]) -> dict:
    """Multiple-choice rows: how often the answer names the correct option."""
    mc = [r for r in rows if r.get("gold_choice")]
    return {"choice_accuracy": _ratio(sum(r["choice"] == r["gold_choice"] for r in mc), len(mc))} if mc else {}


def _resolution_metrics(rows: list[dict]) -> dict:
    """Follow-up rows that say how they should be understood: how often the bot understood them so."""
    scored = [r for r in rows if r.get("resolution_ok") is not None]
    return {"resolution_accuracy": _ratio(sum(r["resolution_ok"] for r in scored), len(scored))} if scored else {}


def _ratio(num: float, den: int) -> float | None:
    return round(num / den, 4) if den else None


def evaluate(
    gold: list[GoldQuestion], run: Callable[[str, list[str]], tuple[Answer, list[Hit]]], progress: Callable | None = None
) -> dict:
    """Run every question (with its conversation ``history``) through ``run`` and score it.

    Returns:
        ``METRIC_KEYS`` plus ``questions`` (per-question rows) and ``by_tag`` (metrics per tag).
    """
    items = progress(gold) if progress else gold
    rows = [score_question(g, *run(g.question, g.history)) for g in items]
    report = summarize(rows) | {"questions": rows}
    tags = sorted({t for r in rows for t in r["tags"]})
    report["by_tag"] = {t: summarize([r for r in rows if t in r["tags"]]) for t in tags}
    return report


def report_keys(report: dict) -> list[str]:
    """The metric keys of ``report``: ``METRIC_KEYS``, plus the guard metrics in generative mode."""
    return [*METRIC_KEYS, *(k for k in report if k.startswith(("guard_", "generative_", "choice_", "resolution_")))]


def write_reports(report: dict, out: Path, title: str) -> None:
    """``report.json`` (everything) and ``report.md`` (readable summary and failures) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = [f"# {title}", "", "| metric | overall | " + " | ".join(report["by_tag"]) + " |",
             "|---|---|" + "---|" * len(report["by_tag"])]
    for k in report_keys(report):
        cells = [format_metric(report[k])] + [format_metric(m.get(k)) for m in report["by_tag"].values()]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    failures = [r for r in report["questions"] if r["failure"]]
    lines += ["", f"## Failures ({len(failures)})", "", "| id | question | failure | rank | cited |", "|---|---|---|---|---|"]
    for r in failures:
        lines.append(f"| {r['id']} | {r['question']} | {r['failure']} | {r['rank'] or '-'} | {', '.join(r['cited']) or '-'} |")
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def format_metric(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
