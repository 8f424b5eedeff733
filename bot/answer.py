"""Grounded extractive answers: pick the clauses that answer, quote their sentences verbatim.

No LLM: every figure in an answer is copied from a cited clause, so it cannot be wrong by
generation. The signals computed here (coverage of the question's words, unknown words, figures,
the question's own numbers) feed the refusal decision in ``bot.refusal``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.config import Settings
from bot.models import Citation, Clause, Document
from bot.retrieval import Hit
from bot.grounding import normalize_figures
from bot.text import normalize, sentence_spans
from bot.tokenizer import ChineseTokenizer

NOT_FOUND = "未在语料中找到能回答这个问题的条款。可以换个说法，或查阅原文。"

_MULTI_QUESTION = re.compile(r"分别|哪些|哪几|各是|各为|都有|都是|包括|几项|几个方面")
_FIGURE = re.compile(
    r"\d|[一二三四五六七八九十百千两]+[个项名户条块张次级类支所家人日天年岁时]|[一二三四五六七八九十]+分之"
    r"|过半数|半数|百分之|全覆盖|每天|每年|每季度|每月|年底|年末"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_FIGURE_VALUE = re.compile(r"\d+(?:\.\d+)?(?:%|‰|人|户|年|日|平方米|名|个)?")
# A question asks for a figure, date or deadline when it contains one of these.
_FIGURE_QUESTION = re.compile(r"多少|几|比例|百分|比率|覆盖率|目标值|基础值|数量|面积|多长|多久|哪一?年|什么时候|何时|时限|期限|之前|前完成|率")
_DIFFERENT_RULES = "注：以上文件的规定不完全相同，已分别列出并注明出处，请按事项适用的文件（国家、省、市）把握。"


def is_figure_question(question: str) -> bool:
    return bool(_FIGURE_QUESTION.search(question))
# Item and row numbers ("3.", "7 |") are structure, not figures.
_NUMBERING = re.compile(r"^\s*\d{1,2}\s*[.．|]")



@dataclass
class Evidence:
    """A hit with the answer-level signals computed for the question."""

    hit: Hit
    coverage: float
    has_figure: bool
    numbers_ok: bool
    words: list[str]
    unknown: list[str]


class Answerer:
    """Turns retrieval hits into an answer or a refusal."""

    def __init__(
        self, settings: Settings, tokenizer: ChineseTokenizer, documents: dict[str, Document], clauses: list[Clause]
    ) -> None:
        self._s, self._tok, self._docs = settings, tokenizer, documents
        # Built once: every question compares against these, so they are not re-normalised per hit.
        self._haystack = {c.id: self._clause_norm(c) for c in clauses}
        self._haystacks = list(self._haystack.values())
        self._corpus = "\n".join(self._haystacks)
        self._idf: dict[str, float] = {}
        self._names = {d.id: [normalize(a) for a in (d.title, *d.aliases)] for d in documents.values()}

    def _weight(self, word: str) -> float:
        """IDF of ``word`` over clauses: "灾害信息员" (one clause) outweighs "配" (many)."""
        if word not in self._idf:
            df = sum(word in h for h in self._haystacks)
            self._idf[word] = math.log(1 + len(self._haystacks) / (1 + df))
        return self._idf[word]

    def _known(self, word: str) -> bool:
        """Whether the corpus uses ``word``, its official synonym, or every part of it (人口比例)."""
        if word in self._corpus or any(normalize(o) in self._corpus for o in self._alternatives(word)):
            return True
        parts = [p for p in self._tok.tokens(word) if len(p) > 1 and p != word]
        return bool(parts) and all(p in self._corpus for p in parts)

    def _alternatives(self, word: str) -> list[str]:
        return [o for c, off in self._tok.synonyms if c == word for o in off.split()]

    def _matches(self, word: str, haystack: str) -> bool:
        """``word`` or one of its official synonyms occurs in ``haystack``."""
        return word in haystack or any(normalize(a) in haystack for a in self._alternatives(word))

    def _clause_norm(self, clause: Clause) -> str:
        """What a clause can be matched on: its document's title and date, section, header, text."""
        doc = self._docs[clause.doc_id]
        return normalize(" ".join((doc.title, doc.issued, clause.section, clause.context, clause.text)))

    def routed_documents(self, question: str) -> set[str]:
        """Documents the question names by one of their aliases (the longest match wins:
        "河南省志愿服务条例" picks the provincial one, "志愿服务条例" the national one)."""
        q = normalize(question)
        best: dict[str, int] = {}
        for doc_id, names in self._names.items():
            n = max((len(a) for a in names if a in q), default=0)
            if n:
                best[doc_id] = n
        top = max(best.values(), default=0)
        return {d for d, n in best.items() if n == top}

    def _coverage(self, words: list[str], haystack: str) -> float:
        """IDF-weighted share of question words found in the clause; a word missing verbatim earns
        full credit for its official synonym, or half the share of its character bigrams present."""
        if not words:
            return 0.0
        total = weights = 0.0
        for w in words:
            weight = self._weight(w)
            weights += weight
            if self._matches(w, haystack):
                total += weight
                continue
            grams = [w[i : i + 2] for i in range(len(w) - 1)]
            if grams:
                total += weight * sum(g in haystack for g in grams) / len(grams) * 0.5
        return total / weights

    def evidence(self, question: str, hits: list[Hit]) -> list[Evidence]:
        words = list(dict.fromkeys(self._tok.words(question)))
        numbers = _NUMBER.findall(normalize(question))
        unknown = [w for w in words if len(w) > 1 and not self._known(w)]
        out = []
        for h in hits:
            hay = self._haystack[h.clause.id]
            body = h.clause.text.split("|", 2)[-1] if h.clause.kind == "table_row" else _NUMBERING.sub("", h.clause.text)
            out.append(
                Evidence(
                    hit=h,
                    coverage=self._coverage(words, hay),
                    has_figure=bool(_FIGURE.search(normalize(body))),
                    numbers_ok=all(n in hay for n in numbers),
                    words=words,
                    unknown=unknown,
                )
            )
        return out

    def rerank(self, evidence: list[Evidence], routed: set[str] = frozenset()) -> list[Evidence]:
        """Reorder fused candidates by fused score (scaled to the best) plus ``coverage_weight`` x
        coverage of the question's words: among clauses that share the topic, the one that holds
        what is asked ("任期", "几人") comes first, whichever document it is in. Clauses of a
        document the question names get ``route_weight`` on top, and the primary document (the
        plan, what most questions are about) ``primary_weight``."""
        if not evidence:
            return evidence
        top = max(e.hit.score for e in evidence) or 1.0
        w, r, p = self._s.coverage_weight, self._s.route_weight, self._s.primary_weight
        return sorted(evidence, key=lambda e: -(e.hit.score / top + w * e.coverage
                                                + (r if e.hit.clause.doc_id in routed else 0.0)
                                                + (p if e.hit.clause.doc_id == self._s.primary_doc else 0.0)))

    def select(self, question: str, evidence: list[Evidence]) -> list[Evidence]:
        """The clauses to quote: the best-supported one, plus others as strong when the question asks
        for several things."""
        if not evidence:
            return []
        # ``evidence`` comes re-ranked (fused score + coverage + document priors): trust that order.
        ranked = list(enumerate(evidence))
        best = ranked[0][1]
        multi = bool(_MULTI_QUESTION.search(question))
        limit = self._s.max_answer_clauses if multi else 2
        margin = self._s.multi_margin if multi else self._s.single_margin
        chosen = [best]
        covered = self._covered(best)
        for _, ev in ranked[1:]:
            if len(chosen) >= limit:
                break
            if not ev.numbers_ok:
                continue
            close = ev.coverage >= max(self._s.min_coverage, best.coverage - margin)
            # A 分别/哪些 question may need a clause for each of its parts: take one that covers
            # question words the chosen clauses leave out.
            adds = multi and ev.coverage >= self._s.min_coverage and bool(self._covered(ev) - covered)
            if close or adds:
                chosen.append(ev)
                covered |= self._covered(ev)
        if is_figure_question(question):
            self._add_other_documents(chosen, evidence, best)
        return chosen

    def _add_other_documents(self, chosen: list[Evidence], evidence: list[Evidence], best: Evidence) -> None:
        """A figure question answered by one document also gets the nearly as strong clause of each
        other document that gives a figure: when the plan and a law (or a national law and its
        Henan measures) both set one, the answer shows both with their sources."""
        docs = {e.hit.clause.doc_id for e in chosen}
        for ev in evidence:
            if len(chosen) >= self._s.max_answer_clauses:
                return
            doc = ev.hit.clause.doc_id
            if doc not in docs and ev.has_figure and ev.numbers_ok and ev.coverage >= best.coverage - self._s.single_margin:
                chosen.append(ev)
                docs.add(doc)

    def _covered(self, ev: Evidence) -> set[str]:
        hay = self._haystack[ev.hit.clause.id]
        return {w for w in ev.words if self._matches(w, hay)}

    def _quote(self, question: str, clause: Clause) -> str:
        """The clause's sentences that carry the question's words (the whole row for a table)."""
        spans = sentence_spans(clause.text)
        if len(spans) <= 2:
            return clause.text
        words = self._tok.words(question)
        scored = [(sum(normalize(w) in normalize(clause.text[s:e]) for w in words), s, e) for s, e in spans]
        top = max(sc for sc, _, _ in scored)
        keep = [(s, e) for sc, s, e in scored if sc == top and sc > 0][:2] or [spans[0]]
        return "……".join(clause.text[s:e] for s, e in keep)

    @staticmethod
    def _table_row(clause: Clause) -> str:
        """An indicator row read with its header: 指标 X；2020年 基础值 Y；…"""
        header = [c.strip() for c in clause.context.split("|")]
        cells = [c.strip() for c in clause.text.split("|")]
        return "；".join(f"{h} {v}" for h, v in zip(header[1:], cells[1:]))

    def compose(self, question: str, chosen: list[Evidence]) -> tuple[str, list[Citation]]:
        lines, citations, figures = [], [], {}
        for n, ev in enumerate(chosen, 1):
            c, doc = ev.hit.clause, self._docs[ev.hit.clause.doc_id]
            quote = self._table_row(c) if c.kind == "table_row" else f"“{self._quote(question, c)}”"
            number = f"（{doc.doc_number}）" if doc.doc_number else ""
            lines.append(f"《{doc.title}》{number}{c.ref}：{quote}[{n}]")
            citations.append(self.citation(n, ev.hit))
            figures.setdefault(doc.id, set()).update(_FIGURE_VALUE.findall(normalize_figures(quote)))
        if len(figures) > 1 and is_figure_question(question) and len({frozenset(v) for v in figures.values()}) > 1:
            lines.append(_DIFFERENT_RULES)
        return "\n".join(lines), citations

    def citation(self, n: int, hit: Hit) -> Citation:
        """``hit`` as citation number ``n``."""
        c, doc = hit.clause, self._docs[hit.clause.doc_id]
        return Citation(n=n, doc_id=c.doc_id, title=doc.title, doc_number=doc.doc_number, level=doc.level, section=c.section,
                        ref=c.ref, clause_id=c.id, text=c.text, context=c.context, score=round(hit.score, 6))
