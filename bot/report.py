"""The usage report: what was asked, what went unanswered, which answers users marked wrong, and
gold-set candidates from the log so real questions flow into ``policy-bot eval`` once labelled."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections import Counter, defaultdict
from datetime import datetime

from bot.store import Store
from bot.text import char_bigrams


def group_similar(questions: list[str], threshold: float = 0.4) -> list[list[str]]:
    """Greedy groups of questions whose character bigrams overlap (Jaccard) at least ``threshold``,
    largest group first: "社区工作者每年培训多少学时" and "社区工作者培训学时要求" land together.

    Each question joins the earliest group whose first question is similar enough. Only groups
    sharing one of the question's rarest bigrams are compared (prefix filtering, Bayardo et al.,
    "Scaling up all pairs similarity search", WWW 2007): two sets with Jaccard >= t share one of
    the first ``|x| - ceil(t|x|) + 1`` tokens of each in a fixed global order, so the result is the
    same as comparing with every group, in near-linear time instead of quadratic.
    """
    grams = [char_bigrams(q) for q in questions]
    df = Counter(g for gs in grams for g in gs)
    heads: list[set[str]] = []
    members: list[list[str]] = []
    by_prefix: dict[str, list[int]] = defaultdict(list)  # bigram -> groups whose head has it in its prefix
    for q, gs in zip(questions, grams):
        prefix = sorted(gs, key=lambda g: (df[g], g))[: len(gs) - math.ceil(threshold * len(gs)) + 1] if gs else []
        candidates = sorted({i for g in prefix for i in by_prefix.get(g, ())})
        match = next((i for i in candidates if len(gs & heads[i]) / len(gs | heads[i]) >= threshold), None)
        if match is None:
            heads.append(gs)
            members.append([q])
            for g in prefix:
                by_prefix[g].append(len(heads) - 1)
        else:
            members[match].append(q)
    return sorted(members, key=len, reverse=True)


def build(store: Store, since: datetime) -> dict:
    """The report's content as plain data (rendered by ``markdown``, ``html_page`` or ``csv_rows``)."""
    rows = store.answers_since(since)
    down, _ = store.feedback_items(since=since, rating="down", limit=500)
    days: dict[str, list[int]] = {}
    clauses, docs = Counter(), Counter()
    for r in rows:
        day = days.setdefault(r["time"][:10], [0, 0])
        day[0] += 1
        day[1] += r["found"]
        for c in r["citations"]:
            clauses[c["clause_id"]] += 1
            docs[c["doc_id"]] += 1
    unanswered = [r["question"] for r in rows if not r["found"]]
    return {
        "since": since.isoformat(), "questions": len(rows),
        "found_rate": round(sum(r["found"] for r in rows) / len(rows), 4) if rows else None,
        "per_day": [{"day": d, "questions": n, "found": f} for d, (n, f) in sorted(days.items())],
        "top_clauses": clauses.most_common(10), "top_documents": docs.most_common(10),
        "unanswered_groups": group_similar(unanswered),
        "down": down, "rows": rows,
    }


def markdown(report: dict) -> str:
    lines = [f"# policy-bot 使用报告（自 {report['since'][:10]} 起）", "",
             f"提问 {report['questions']} 次，找到答案的比例 {_pct(report['found_rate'])}。", "", "## 每天提问数", "",
             "| 日期 | 提问 | 找到答案 |", "|---|---|---|"]
    lines += [f"| {d['day']} | {d['questions']} | {d['found']} |" for d in report["per_day"]]
    lines += ["", "## 引用最多的条款", ""] + [f"- {c}：{n} 次" for c, n in report["top_clauses"]]
    lines += ["", "## 引用最多的文件", ""] + [f"- {d}：{n} 次" for d, n in report["top_documents"]]
    lines += ["", "## 未找到答案的问题（相近的归为一组）", ""]
    for group in report["unanswered_groups"]:
        lines.append(f"- （{len(group)}）" + "；".join(group[:5]) + ("……" if len(group) > 5 else ""))
    lines += ["", "## 被标记为错误（👎）的回答", ""]
    for f in report["down"]:
        cited = ", ".join(c["clause_id"] for c in f["citations"]) or "未引用"
        lines.append(f"- {f['question']} → {cited}" + (f"；意见：{f['comment']}" if f["comment"] else ""))
    return "\n".join(lines) + "\n"


def html_page(report: dict) -> str:
    """A self-contained page: the per-day chart is inline SVG, nothing is loaded from anywhere."""
    days = report["per_day"]
    top = max((d["questions"] for d in days), default=1) or 1
    bars = []
    for i, d in enumerate(days):
        h, hf = 120 * d["questions"] / top, 120 * d["found"] / top
        x = 40 + i * 28
        bars.append(f'<rect x="{x}" y="{140 - h:.1f}" width="20" height="{h:.1f}" fill="#d0d7de"><title>{d["day"]}: {d["questions"]}</title></rect>'
                    f'<rect x="{x}" y="{140 - hf:.1f}" width="20" height="{hf:.1f}" fill="#1f883d"><title>{d["day"]}: {d["found"]} 找到</title></rect>'
                    f'<text x="{x}" y="155" font-size="9">{d["day"][5:]}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{60 + 28 * len(days)}" height="165" role="img" '
           f'aria-label="每天提问数（灰）与找到答案数（绿）">{"".join(bars)}</svg>')
    body = html.escape(markdown(report)).replace("\n", "<br>\n")
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>policy-bot 使用报告</title></head>'
            f"<body><h1>policy-bot 使用报告</h1><figure>{svg}<figcaption>每天提问数（灰）与找到答案数（绿）</figcaption></figure>"
            f"<div>{body}</div></body></html>\n")


# A cell starting with one of these is a formula to Excel, LibreOffice or Google Sheets
# (OWASP, "CSV Injection"): such cells are written with a leading apostrophe, shown as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: object) -> object:
    """``value`` as a spreadsheet shows it as text: a string starting like a formula gets a leading '."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def csv_rows(report: dict) -> str:
    """One row per logged answer; user text can never become a live formula (``_csv_safe``)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["time", "question", "resolved_question", "found", "reason", "cited", "latency_ms"])
    for r in report["rows"]:
        w.writerow([_csv_safe(v) for v in (r["time"], r["question"], r["resolved_question"] or "", r["found"], r["reason"] or "",
                                           " ".join(c["clause_id"] for c in r["citations"]), r["latency_ms"])])
    return buf.getvalue()


def gold_candidates(report: dict) -> str:
    """Unanswered and 👎 questions as eval rows with ``answerable`` left null for a person to fill."""
    seen, out = set(), []
    for q in [r["question"] for r in report["rows"] if not r["found"]] + [f["question"] for f in report["down"]]:
        if q in seen:
            continue
        seen.add(q)
        out.append({"id": f"log{len(out) + 1:04d}", "question": q, "answerable": None, "keywords": [], "evidence": [],
                    "tags": ["from-log"]})
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"
