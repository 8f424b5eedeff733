"""Writing the answer: verbatim quotes with ``[n]`` markers, each with its document, 文号 and
section; figures are never rephrased, so none can be wrong by writing."""

from __future__ import annotations

from bot.answer.evidence import Evidence
from bot.answer.figures import answers_unit, figure_values, table_row
from bot.answer.query import Query
from bot.answer.retrieval import Hit
from bot.index.tokenizer import ChineseTokenizer
from bot.models import Citation, Clause, Document
from bot.text import normalize, sentence_spans

NOT_FOUND = "未在语料中找到能回答这个问题的条款。可以换个说法，或查阅原文。"
# The documents leave the asked figure to another body: not found, but the clause that says so is cited.
DELEGATED = "文件没有规定具体数额/标准，而是交由有关机关制定："
_DIFFERENT_RULES = "注：以上文件的规定不完全相同，已分别列出并注明出处，请按事项适用的文件（国家、省、市）把握。"


class Renderer:
    """Turns chosen evidence into the answer text and its numbered citations."""

    def __init__(self, tokenizer: ChineseTokenizer, documents: dict[str, Document], whole_chars: int) -> None:
        self._tok, self._docs, self._whole_chars = tokenizer, documents, whole_chars

    def _quote(self, query: Query, clause: Clause) -> str:
        """The clause's sentences that carry the ask's words or their official synonyms, and for a
        figure question a figure of the asked kind ("一届干几年" → "每届任期五年", not the sentence on
        who elects); the whole clause when it is short (``whole_chars``) or has two sentences at most."""
        spans = sentence_spans(clause.text)
        if len(spans) <= 2 or len(clause.text) <= self._whole_chars:
            return clause.text
        words = self._tok.words(query.ask or query.topic)

        def score(sentence: str) -> float:
            t = normalize(sentence)
            hits = sum(any(normalize(f) in t for f in (w, *self._tok.official(w))) for w in words)
            figure = query.asked_unit is not None and answers_unit(sentence, query.asked_unit)
            return hits + 0.5 * figure

        scored = [(score(clause.text[s:e]), s, e) for s, e in spans]
        top = max(sc for sc, _, _ in scored)
        keep = [(s, e) for sc, s, e in scored if sc == top and sc > 0][:2] or [spans[0]]
        return "……".join(clause.text[s:e] for s, e in keep)

    def compose(self, query: Query, chosen: list[Evidence], lead: str = "") -> tuple[str, list[Citation]]:
        """Answer text (an optional ``lead`` line first) and citations for ``chosen``."""
        lines, citations, figures = ([lead] if lead else []), [], {}
        for n, ev in enumerate(chosen, 1):
            c, doc = ev.hit.clause, self._docs[ev.hit.clause.doc_id]
            quote = table_row(c) if c.kind == "table_row" else f"“{self._quote(query, c)}”"
            number = f"（{doc.doc_number}）" if doc.doc_number else ""
            mark = "（用户添加，未经核实）" if doc.added_by_user else ""
            lines.append(f"《{doc.title}》{number}{mark}{c.ref}：{quote}[{n}]")
            citations.append(self.citation(n, ev.hit))
            figures.setdefault(doc.id, set()).update(figure_values(quote))
        stated = [frozenset(v) for v in figures.values() if v]  # documents that state a figure at all
        if len(stated) > 1 and query.is_figure and len(set(stated)) > 1:
            lines.append(_DIFFERENT_RULES)
        return "\n".join(lines), citations

    def citation(self, n: int, hit: Hit) -> Citation:
        """``hit`` as citation number ``n``."""
        c, doc = hit.clause, self._docs[hit.clause.doc_id]
        return Citation(n=n, doc_id=c.doc_id, title=doc.title, doc_number=doc.doc_number, level=doc.level,
                        source=doc.source, added_by_user=doc.added_by_user, section=c.section,
                        ref=c.ref, clause_id=c.id, text=c.text, context=c.context, score=round(hit.score, 6))
