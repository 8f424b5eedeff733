"""Writing the answer: verbatim quotes with ``[n]`` markers, each with its document, 文号 and
section; figures are never rephrased, so none can be wrong by writing."""

from __future__ import annotations

import re

from bot.answer.evidence import Evidence, Matcher
from bot.answer.figures import answers_unit, figure_values, table_row
from bot.answer.query import Query
from bot.answer.retrieval import Hit
from bot.corpus.chunking import item_lines, named_in
from bot.models import Citation, Clause, Document
from bot.text import normalize, sentence_spans

NOT_FOUND = "未在语料中找到能回答这个问题的条款。可以换个说法，或查阅原文。"
# The documents leave the asked figure to another body: not found, but the clause that says so is cited.
DELEGATED = "文件没有规定具体数额/标准，而是交由有关机关制定："
# A quote's second sentence: one that carries at least this share of the best one's score.
SECOND_SENTENCE = 0.5
# What a figure of the asked kind adds to a sentence's score (its word coverage is at most 1).
FIGURE_CREDIT = 0.25
# An item's or a paragraph's title sentence: a numbering, then a short phrase with no comma ("（四）统筹发挥社会力量协同作用。").
_TITLE = re.compile(r"^\s*(?:\d+[.．、]|[（(][一二三四五六七八九十]+[）)])[^，,；;：:]{2,24}。$")
_DIFFERENT_RULES = "注：以上文件的规定不完全相同，已分别列出并注明出处，请按事项适用的文件（国家、省、市）把握。"


class Renderer:
    """Turns chosen evidence into the answer text and its numbered citations."""

    def __init__(self, matcher: Matcher, documents: dict[str, Document], whole_chars: int) -> None:
        self._matcher, self._docs, self._whole_chars = matcher, documents, whole_chars

    def _quote(self, query: Query, clause: Clause) -> str:
        """The clause's sentence (``_units``) that best carries the ask's words (IDF-weighted, official
        synonyms and shared character bigrams counted: ``Matcher.coverage``; a sentence that names
        provisions by number counts what they say), with the next best when it scores at least
        ``SECOND_SENTENCE`` of it, and for a figure question a figure of the asked kind ("一届干几年" →
        "每届任期五年", not the sentence on who elects); of two penalties of different conducts, only
        the one on the question's. An item's title ("2.持续开展城乡社区减负增效。") leads the quote but is
        never all of it: it names the subject, the sentences after it say what is required. The whole
        clause when it is short (``whole_chars``) or has two sentences at most."""
        spans = _units(clause)
        if len(spans) <= 2 or len(clause.text) <= self._whole_chars:
            return clause.text
        ask, topic = self._matcher.words(query.ask or query.topic), self._matcher.words(query.topic)
        title = spans[0] if _TITLE.match(clause.text[spans[0][0]:spans[0][1]]) else None
        body = [sp for sp in spans if sp != title]
        # A sentence that names provisions by number ("违反本条例第十七条规定的，…罚款") says what they say.
        named = {sp: named_in(clause.text[sp[0]:sp[1]], clause.refers) for sp in body}

        def score(sp: tuple[int, int]) -> float:
            sentence = clause.text[sp[0]:sp[1]]
            figure = query.asked_unit is not None and answers_unit(sentence, query.asked_unit)
            t = normalize(" ".join([sentence, *named[sp]]))
            return (self._matcher.coverage(ask, t) + self._matcher.coverage(topic, t)) / 2 + FIGURE_CREDIT * figure

        scored = sorted(((score((s, e)), s, e) for s, e in body), key=lambda t: -t[0])
        top = scored[0][0]
        keep = [(s, e) for sc, s, e in scored[:2] if sc >= SECOND_SENTENCE * top and sc > 0] or [body[0]]
        if len(keep) == 2 and not query.is_list and all(named[sp] for sp in keep):
            del keep[1]  # two penalties of different conducts named by number: the best one answers
        keep.sort()
        return "……".join(clause.text[s:e] for s, e in ([title] if title else []) + keep)

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


def _units(clause: Clause) -> list[tuple[int, int]]:
    """What a quote is made of: the clause's sentences, except that the sentences of a numbered item
    of an article are one unit ("（三）违反…的，责令驶离；拒不驶离…的，处以二百元罚款；": its conduct and its
    penalty are one statement). A plan's "（一）title。sentence。" paragraphs stay sentences."""
    spans = sentence_spans(clause.text)
    if clause.kind != "article":
        return spans
    items = item_lines(clause.text)
    units: list[tuple[int, int]] = []
    for s, e in spans:
        item = next(((a, b) for a, b in items if a <= s < b), None)
        if item and units and units[-1][1] > item[0]:  # the unit before ends inside this item: one unit
            units[-1] = (units[-1][0], e)
        else:
            units.append((s, e))
    return units
