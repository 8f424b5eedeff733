"""The usage report: what was asked, what went unanswered, which answers users marked wrong, and
gold-set candidates from the log so real questions flow into ``policy-bot eval`` once labelled.

``build`` gathers the numbers; ``html_page`` and ``markdown`` render them through the Jinja2
templates in ``bot/usage/templates`` (charts drawn by matplotlib), ``csv_rows`` lists every question.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import math
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.text import char_bigrams, normalize
from bot.usage.store import Store, as_utc

TEMPLATES = Path(str(resources.files("bot.usage").joinpath("templates")))
STYLESHEET = TEMPLATES / "report.css"  # inlined in the offline report, served at /static/report.css
_FILLER = re.compile(r"[\s\W_]+|[吗呢啊呀吧嘛哦]+(?=\W|$)")
_HOURLY_UP_TO = timedelta(days=2)  # longer windows are charted per day


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


def question_form(question: str) -> str:
    """What stays of a question once width, case, spacing, punctuation and end particles (吗, 呢 …)
    are set aside: "社区服务中心几点开门？" and "社区服务中心 几点开门呢" have the same form."""
    return _FILLER.sub("", normalize(question)) or normalize(question)


def group_questions(rows: Iterable[dict], merge: Callable[[list[str]], list[list[str]]] = group_similar,
                    most: int = 1000) -> list[dict]:
    """Logged answers grouped by question, most asked first: first by the form of the question
    (``question_form``, linear), then the ``most`` most asked forms are merged by ``merge`` (which
    groups wordings by meaning, e.g. ``group_similar``) applied to one wording of each.

    Returns:
        ``[{"question": the most common wording, "count", "found": answers found, "related":
        [clause ids shown as closest, most often first], "ids": [answer ids]}]``.
    """
    forms: dict[str, dict] = {}
    for r in rows:
        g = forms.setdefault(question_form(r["question"]), {"wordings": Counter(), "found": 0, "related": Counter(), "ids": []})
        g["wordings"][r["question"]] += 1
        g["found"] += bool(r["found"])
        g["related"].update(c["clause_id"] for c in r.get("related") or [])
        g["ids"].append(r["id"])
    ranked = sorted(forms.values(), key=lambda g: -sum(g["wordings"].values()))
    head = {g["wordings"].most_common(1)[0][0]: g for g in ranked[:most]}
    groups = [[head[q] for q in members] for members in merge(list(head))] + [[g] for g in ranked[most:]]
    out = []
    for members in groups:
        wordings, related = sum((g["wordings"] for g in members), Counter()), sum((g["related"] for g in members), Counter())
        out.append({"question": wordings.most_common(1)[0][0], "count": sum(wordings.values()),
                    "found": sum(g["found"] for g in members), "related": [c for c, _ in related.most_common(3)],
                    "ids": [i for g in members for i in g["ids"]]})
    return sorted(out, key=lambda g: -g["count"])


@dataclass(frozen=True)
class ClauseName:
    """How a clause is shown to a person: its document's title, its section ref, its first words."""

    title: str
    ref: str
    words: str
    doc_id: str = ""

    def __str__(self) -> str:
        return f"《{self.title}》{self.ref}：{self.words}" if self.ref else f"《{self.title}》"


class ClauseNames:
    """Readable names for the clause and document ids the log stores.

    Args:
        documents: document id -> title.
        clauses: clause dicts or models with ``id``, ``doc_id``, ``ref`` and ``text``.
        words: characters of the clause text shown.
    """

    def __init__(self, documents: dict[str, str], clauses: Iterable, words: int = 24) -> None:
        self.documents, self._words = documents, words
        self._clauses: dict[str, tuple[str, str, str]] = {}  # id -> (doc_id, ref, text)
        for c in clauses:
            get = c.get if isinstance(c, dict) else lambda k, c=c: getattr(c, k)
            self._clauses[get("id")] = (get("doc_id"), get("ref"), get("text"))

    @classmethod
    def from_index(cls, index) -> ClauseNames:
        """From a loaded index (the server's)."""
        return cls({d.id: d.title for d in index.documents.values()}, index.clauses)

    @classmethod
    def from_build(cls, index_dir: Path, corpus_dir: Path | None = None) -> ClauseNames:
        """From the live build's files (no model loaded); with no build yet, documents are named from
        the catalog in ``corpus_dir`` and clauses by their document only."""
        from bot.files import current_build  # not bot.index.build: no search engine to import for a report

        build = current_build(index_dir)
        if build is None or not (build / "clauses.jsonl").exists():
            from bot.corpus.catalog import load_catalog

            try:
                return cls({d.id: d.title for d in load_catalog(corpus_dir)} if corpus_dir else {}, [])
            except (OSError, ValueError):
                return cls({}, [])
        documents = json.loads((build / "documents.json").read_text(encoding="utf-8"))
        with open(build / "clauses.jsonl", encoding="utf-8") as fh:
            return cls({d["id"]: d["title"] for d in documents}, (json.loads(line) for line in fh))

    def document(self, doc_id: str) -> str:
        return self.documents.get(doc_id, "已不在语料中的文件")

    def clause(self, clause_id: str) -> ClauseName:
        """The clause's name; one no longer in the index is named by its document only."""
        if clause_id in self._clauses:
            doc_id, ref, text = self._clauses[clause_id]
            words = text[: self._words] + ("……" if len(text) > self._words else "")
            return ClauseName(self.document(doc_id), ref, words, doc_id)
        doc_id = clause_id.split(":", 1)[0]
        return ClauseName(self.document(doc_id), "", "", doc_id)

    def text(self, clause_id: str) -> str | None:
        """The clause's full text; None when it is not in the index."""
        found = self._clauses.get(clause_id)
        return found[2] if found else None


def build(store: Store, since: datetime, until: datetime | None = None, names: ClauseNames | None = None,
          tz: str = "UTC") -> dict:
    """The report's content as plain data (rendered by ``markdown``, ``html_page`` or ``csv_rows``).

    Args:
        store: the question log.
        since, until: the window, ``[since, until)``; ``until`` defaults to now.
        names: readable clause names (default: none known, documents named by id).
        tz: the time zone times are shown in (buckets are hours of that zone for windows up to two days).
    """
    until = until or datetime.now(timezone.utc)
    zone = ZoneInfo(tz)
    rows = store.answers_since(since, until)
    down, _ = store.feedback_items(since=since, rating="down", limit=500)
    down = [f for f in down if as_utc(datetime.fromisoformat(f["time"])) < until]
    hourly = until - since <= _HOURLY_UP_TO
    label = "%m-%d %H:00" if hourly else "%Y-%m-%d"
    # A session is charted hour by hour over its window; a longer window from its first question (it
    # may start years before), either up to its end or now.
    first = since if hourly or not rows else max(since, as_utc(datetime.fromisoformat(rows[0]["time"])))
    end = min(until, datetime.now(timezone.utc))
    buckets: dict[str, list[int]] = {k: [0, 0] for k in _steps(first.astimezone(zone), end.astimezone(zone), hourly, label)}
    clauses, docs = Counter(), Counter()
    for r in rows:
        local = datetime.fromisoformat(r["time"]).astimezone(zone)
        b = buckets.setdefault(local.strftime(label), [0, 0])
        b[0] += 1
        b[1] += r["found"]
        clauses.update(c["clause_id"] for c in r["citations"])
        docs.update({c["doc_id"] for c in r["citations"] + r.get("related", [])})
    groups = group_questions(rows)
    unanswered = group_questions(r for r in rows if not r["found"])
    return {
        "since": since.astimezone(zone).isoformat(timespec="minutes"), "until": until.astimezone(zone).isoformat(timespec="minutes"),
        "timezone": tz, "per": "hour" if hourly else "day", "questions": len(rows),
        "found_rate": round(sum(r["found"] for r in rows) / len(rows), 4) if rows else None,
        "per_bucket": [{"label": k, "questions": n, "found": f} for k, (n, f) in sorted(buckets.items())],
        "top_clauses": clauses.most_common(10), "top_documents": docs.most_common(10),
        "groups": groups[:30], "distinct_questions": len(groups),
        "unanswered_groups": unanswered, "down": down, "rows": rows,
        "names": names or ClauseNames({}, []),
    }


def _steps(start: datetime, end: datetime, hourly: bool, label: str, most: int = 400) -> list[str]:
    """The labels of every hour (or day) in the window, so quiet ones show as empty, not missing."""
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    t = start.replace(minute=0, second=0, microsecond=0) if hourly else start.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while t < end and len(out) < most:
        out.append(t.strftime(label))
        t += step
    return out


def markdown(report: dict) -> str:
    """The report as Markdown (for chat tools and e-mail)."""
    return template("report.md.j2").render(r=report, pct=_pct)


def html_page(report: dict, stylesheet: str | None = None) -> str:
    """The report as one HTML page: tables, headings and charts (inline SVG images drawn by
    matplotlib), nothing loaded from elsewhere. ``stylesheet``: link this URL instead of inlining
    the styles (the server's pages allow no inline styles)."""
    css = None if stylesheet else STYLESHEET.read_text(encoding="utf-8")
    return template("report.html.j2").render(r=report, pct=_pct, charts=charts(report), css=css, stylesheet=stylesheet)


@lru_cache(maxsize=None)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("bot.usage", "templates"), autoescape=select_autoescape(["html.j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = lambda v: " ".join(str(v).split()).replace("|", "\\|")  # one Markdown table cell
    return env


def template(name: str):
    """A template of bot/usage/templates (HTML ones autoescaped)."""
    return _environment().get_template(name)


def charts(report: dict) -> dict[str, str]:
    """``activity`` (questions and found-rate per hour or day) and ``documents`` (documents asked
    about) as ``data:image/svg+xml`` URIs; empty when there is nothing to draw."""
    out = {}
    buckets = report["per_bucket"]
    if buckets:
        fig = _figure(max(6.0, min(12.0, 0.35 * len(buckets) + 3)), 3.0)
        ax = fig.subplots()
        x = range(len(buckets))
        ax.bar(x, [b["questions"] for b in buckets], color="#d0d7de", label="提问")
        ax.bar(x, [b["found"] for b in buckets], color="#1f883d", width=0.5, label="找到答案")
        every = -(-len(buckets) // 16)  # at most 16 labels
        ticks = list(x)[::every]
        ax.set_xticks(ticks, [(b["label"][-5:] if report["per"] == "hour" else b["label"][5:]) for b in buckets[::every]],
                      rotation=45 if len(ticks) > 8 else 0, ha="right" if len(ticks) > 8 else "center", fontsize=8)
        ax.set_ylabel("提问数")
        rate = ax.twinx()
        rate.plot(list(x), [100 * b["found"] / b["questions"] if b["questions"] else float("nan") for b in buckets],
                  color="#b4232a", marker="o", label="找到答案的比例")
        rate.set_ylim(0, 105)
        rate.set_ylabel("找到答案（%）")
        handles = ax.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8, frameon=False, ncols=3,
                  bbox_to_anchor=(0, 1.16))
        out["activity"] = _svg(fig)
    documents = report["top_documents"]
    if documents:
        names = report["names"]
        fig = _figure(8.0, 0.4 * len(documents) + 0.8)
        ax = fig.subplots()
        labels = [_short(names.document(d)) for d, _ in documents][::-1]
        ax.barh(labels, [n for _, n in documents][::-1], color="#b4232a")
        ax.set_xlabel("回答引用或列为相关的次数")
        ax.tick_params(axis="y", labelsize=8)
        out["documents"] = _svg(fig)
    return out


def _figure(width: float, height: float):
    from matplotlib import rcParams
    from matplotlib.figure import Figure

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # a machine without CJK fonts still draws
    rcParams["font.family"] = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "DejaVu Sans"]
    rcParams["svg.fonttype"] = "none"  # text stays text: the browser draws it with its own fonts
    rcParams["axes.spines.top"] = False
    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig) -> str:
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue().encode()).decode()


def _short(title: str, n: int = 22) -> str:
    return title if len(title) <= n else title[: n - 1] + "…"


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
