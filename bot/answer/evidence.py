"""Evidence signals: how well each retrieved clause covers what a question asks.

Coverage weighs the question's topic words by how rare they are in the corpus (IDF), credits
official synonyms of colloquial words, and notes the words the corpus never uses. These signals
drive re-ranking, clause selection and the refusal decision.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from bot.answer.calibrated import sigmoid
from bot.answer.figures import answers_unit, delegates
from bot.answer.query import Query
from bot.answer.retrieval import Hit
from bot.index.clausestore import positions_of
from bot.index.postings import Postings, matching_text
from bot.index.tokenizer import ChineseTokenizer, Group, contrast_pairs
from bot.models import Clause, Document
from bot.text import normalize

# A clause "has a figure" when it states a number, a share, a frequency or a deadline. A Chinese
# numeral counts before a measure ("二十平方米", "一万元"), not before 届 or 分 ("十九届", "十分").
_FIGURE = re.compile(
    r"\d|[一二三四五六七八九十百千万两]+(?:[个项名户条块张次级类支所家人日天年岁周时米刻元倍]|平方米|分贝|分钟|学时|课时)"
    r"|[一二三四五六七八九十]+分之|过半数|半数|百分之|全覆盖|每天|每年|每季度|每月|年底|年末"
)
# A when-question is answered by a day an event sets as well as by a date ("在选举结果公布之日").
_EVENT_DAY = re.compile(r"之日|当日|当天|同日|次日")
# A calendar year ("2023年", "2025年底") dates a clause; it answers a when-question, not a how-much one.
_YEAR = re.compile(r"(?:19|20)\d\d年(?:底|末)?")
_ASKED_YEAR = re.compile(r"(?:19|20)\d\d")
# Item, row and article numbers ("3.", "7 |", "第四十一条", "（七）") are structure, not figures.
_NUMBERING = re.compile(r"^\s*(?:\d{1,2}\s*[.．|]|第[一二三四五六七八九十百零〇\d]+条|[（(][一二三四五六七八九十]+[)）])")
# A clause that names several things: items apart from any parenthesis ("3个左右县(市、区)" names
# none), several titles, or an open list ("活动场所等"); a table row holds several figures.
_PARENTHESIS = re.compile(r"[（(][^（）()]*[)）]")
_ITEMS = re.compile(r"、[^、。；;]+、|[；;]|《[^》]+》[^《]*《|(?<![相平同均对高中初])等(?![于额级])")


class ClauseFacts(NamedTuple):
    """What a clause states whatever is asked (``Matcher.clause_facts``)."""

    figure: bool  # a figure other than a calendar year
    dated: bool  # a figure, a date or a day an event sets
    delegates: bool  # leaves a figure to someone else ("标准由省辖市人民政府制定")
    lists: bool  # names several things
    unit_text: str  # the text its units are read from


@dataclass
class Evidence:
    """A hit with the answer-level signals computed for the question."""

    hit: Hit
    coverage: float
    has_figure: bool
    unit_ok: bool
    numbers_ok: bool
    words: list[str]
    unknown: list[str]
    years_ok: bool = True
    ask_coverage: float = 0.0
    contrast: bool = False
    delegates: bool = False
    lists: bool = False  # the clause names several things (what a 哪些/哪几个 ask wants)
    outside: bool = False  # the ask is about a place the clause's document does not govern (``outside``)
    rank_score: float = 0.0  # the ranker's score: two candidates' difference is the logit of P(the first is better)

    @property
    def rank_p(self) -> float:
        """The ranker's P(answers): the sigmoid of its score."""
        return sigmoid(self.rank_score)


# Where a document's rules stop. Written by hand: no library knows which places a Chinese policy
# document governs; the catalog lists them (``Document.jurisdiction``) and jieba tags place names.
_ADMINISTRATIVE = ("省", "市", "县")  # the kinds of place a question may be about; 老城区 and 新区 are tagged as places too


def _stem(place: str) -> str:
    return place[:-1] if len(place) > 2 and place[-1] in "省市县区" else place


def outside(doc: Document, asked_places: list[str], places: list[str]) -> bool:
    """Whether the ask is about another jurisdiction than ``doc``'s: it names a province, or a city or
    county where the document lists places of that kind (郑州市 against 许昌's list), not among them,
    and the question names none of the document's own places (许昌, 禹州市). National documents
    (no list) govern everywhere."""
    if not doc.jurisdiction:
        return False
    own = {_stem(p) for p in doc.jurisdiction}
    if any(_stem(p) in own for p in places):
        return False
    kinds = {"省"} | {p[-1] for p in doc.jurisdiction}
    return any(len(p) > 2 and p[-1] in _ADMINISTRATIVE and p[-1] in kinds for p in asked_places)


def _names(text: str, group: Group) -> bool:
    """Whether ``text`` names ``group`` in any of its forms."""
    return any(w in text for w in group)


class Matcher:
    """Word matching against the corpus: IDF weights, synonyms, coverage, document names.

    Built once per loaded index; every clause's matching text is normalised once here.
    """

    def __init__(self, tokenizer: ChineseTokenizer, documents: dict[str, Document], clauses: Sequence[Clause],
                 postings: Postings) -> None:
        self._tok, self.documents, self._postings = tokenizer, documents, postings
        # Worked out when a question first looks at a clause, not held for every clause.
        positions = positions_of(clauses)
        self.haystack = _Texts(clauses, positions, lambda c: matching_text(c, documents[c.doc_id]))
        # What a clause itself says (no document title: "城乡社区服务体系建设规划" names both groups).
        self._own = _Texts(clauses, positions, lambda c: normalize(c.context + c.text))
        self._haystacks = self.haystack
        # Words outside the build's table are counted once; bounded, since questions can make up any.
        self._count = functools.lru_cache(maxsize=65_536)(functools.partial(postings.count, haystacks=self._haystacks))
        self._facts: dict[str, ClauseFacts] = {}
        self._contrasts = contrast_pairs()
        self._units: dict[tuple[str, str], bool] = {}
        # Document names by their first two characters: a question is checked only against the
        # names that could start somewhere in it, not against every document's.
        self._names: dict[str, list[tuple[str, str]]] = {}
        for d in documents.values():
            for name in {normalize(a) for a in (d.title, *d.aliases)}:
                self._names.setdefault(name[:2], []).append((name, d.id))

    def df(self, word: str) -> int:
        """How many clauses contain ``word`` (as a substring of their matching text): the build's
        table for corpus words, counted once (``Postings.count``) for any other."""
        n = self._postings.word_df.get(word)
        return self._count(word) if n is None else n

    def in_corpus(self, word: str) -> bool:
        return self.df(word) > 0

    def weight(self, word: str) -> float:
        """IDF of ``word`` over clauses: "灾害信息员" (one clause) outweighs "配" (many)."""
        return math.log(1 + len(self._haystacks) / (1 + self.df(word)))

    def alternatives(self, word: str) -> list[str]:
        return self._tok.official(word)

    def matches(self, word: str, haystack: str) -> bool:
        """``word`` or one of its official synonyms occurs in ``haystack``."""
        return word in haystack or any(normalize(a) in haystack for a in self.alternatives(word))

    def known(self, word: str) -> bool:
        """Whether the corpus uses ``word``, its official synonym, or every part of it (人口比例)."""
        if self.in_corpus(word) or any(self.in_corpus(normalize(a)) for a in self.alternatives(word)):
            return True
        parts = [p for p in self._tok.tokens(word) if len(p) > 1 and p != word]
        return bool(parts) and all(self.in_corpus(p) for p in parts)

    def coverage(self, words: list[str], haystack: str) -> float:
        """IDF-weighted share of question words found in the clause; a word missing verbatim earns
        full credit for its official synonym, or half the share of its character bigrams present."""
        if not words:
            return 0.0
        total = weights = 0.0
        for w in words:
            weight = self.weight(w)
            weights += weight
            if self.matches(w, haystack):
                total += weight
                continue
            grams = [w[i : i + 2] for i in range(len(w) - 1)]
            if grams:
                total += weight * sum(g in haystack for g in grams) / len(grams) * 0.5
        return total / weights

    def covered(self, words: list[str], clause_id: str) -> set[str]:
        hay = self.haystack[clause_id]
        return {w for w in words if self.matches(w, hay)}

    def routed_documents(self, question: str) -> set[str]:
        """Documents the question names by one of their aliases (the longest match wins:
        "河南省志愿服务条例" picks the provincial one, "志愿服务条例" the national one)."""
        q = normalize(question)
        best: dict[str, int] = {}
        for start in {q[i : i + 2] for i in range(len(q) - 1)} | set(q):
            for name, doc_id in self._names.get(start, ()):
                if name in q and len(name) > best.get(doc_id, 0):
                    best[doc_id] = len(name)
        top = max(best.values(), default=0)
        return {d for d, n in best.items() if n == top}

    def names_topic(self, text: str, min_weight: float = 4.0) -> bool:
        """Whether ``text`` names something specific in the corpus: a word (or its official synonym)
        that few clauses use. "敬老月是哪个月" does; "任期多长", "标准谁定" do not."""
        for w in self._tok.words(text):
            for form in (w, *self.alternatives(w)):
                form = normalize(form)
                if len(form) > 1 and self.in_corpus(form) and self.weight(form) >= min_weight:
                    return True
        return False

    def words(self, text: str) -> list[str]:
        """The content words of ``text``, once each, in order."""
        return list(dict.fromkeys(self._tok.words(text)))

    def topic_words(self, query: Query) -> list[str]:
        """The content words of the question's topic, once each, in order."""
        return self.words(query.topic)

    def weigh(self, query: Query) -> Weighing:
        """The question's words and the documents it names, worked out once for every search of it."""
        words = self.topic_words(query)
        ask_words = self.words(query.ask) if query.ask != query.topic else words
        unknown = [w for w in words if len(w) > 1 and not self.known(w)]
        ask = normalize(query.ask)
        # An ask that names both groups of a pair ("农村和城市…分别是多少") is about either of them.
        asked_groups = [(mine, other, both) for mine, other, both in self._contrasts if _names(ask, mine) and not _names(ask, other)]
        foreign = set()
        if asked_places := self._tok.places(query.ask):  # most asks name no place: nothing to weigh
            places = self._tok.places(query.text)
            foreign = {d for d, doc in self.documents.items() if outside(doc, asked_places, places)}
        return Weighing(self, query, words, unknown, self.routed_documents(query.text), ask_words, asked_groups, foreign)

    def salient(self, text: str, n: int = 5) -> list[str]:
        """The ``n`` rarest content words of ``text`` (nouns, verbs, terms; rarest by IDF, a word the
        corpus never uses counting as rarest): what a worker's case adds to a bare ask
        ("这事归哪个部门管" + 养老院 服务协议)."""
        words = dict.fromkeys(self._tok.content_words(text))
        return sorted(words, key=lambda w: -self.weight(w))[:n]

    def contrasted(self, groups: list[tuple[Group, Group, Group]], clause_id: str) -> bool:
        """Whether the clause speaks of the other group of a pair the ask names (the ask says 农村, the
        clause says 城市, not 农村 nor 城乡): a neighbouring clause, not an answer."""
        own = self._own[clause_id]
        return any(not _names(own, mine) and _names(own, other) and not _names(own, both) for mine, other, both in groups)

    def clause_facts(self, clause: Clause) -> ClauseFacts:
        """What a clause states whatever is asked (worked out once per clause, not once per question)."""
        if (facts := self._facts.get(clause.id)) is None:
            body = clause.text.split("|", 2)[-1] if clause.kind == "table_row" else _NUMBERING.sub("", clause.text)
            text = normalize(body)
            facts = self._facts[clause.id] = ClauseFacts(
                figure=bool(_FIGURE.search(_YEAR.sub("", text))), dated=bool(_FIGURE.search(text) or _EVENT_DAY.search(text)),
                delegates=delegates(body),
                lists=clause.kind == "table_row" or bool(_ITEMS.search(_PARENTHESIS.sub("", text))),
                unit_text=clause.context + " " + body)
        return facts

    def unit_ok(self, clause: Clause, unit_class: str) -> bool:
        key = (clause.id, unit_class)
        if (ok := self._units.get(key)) is None:
            ok = self._units[key] = answers_unit(self.clause_facts(clause).unit_text, unit_class)
        return ok


class _Texts:
    """A text of each clause, by clause id or by position, made when first asked for; the most
    recent ``keep`` are kept (a question looks at a few dozen clauses, a rare word's count at most
    ``postings._VERIFY_AT_MOST``)."""

    def __init__(self, clauses: Sequence[Clause], positions: Mapping[str, int], make: Callable[[Clause], str],
                 keep: int = 8192) -> None:
        self._positions, self._n = positions, len(clauses)
        self._at = functools.lru_cache(maxsize=keep)(lambda i: make(clauses[i]))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, key: str | int) -> str:
        return self._at(self._positions[key] if isinstance(key, str) else int(key))


@dataclass
class Weighing:
    """One question's words, the documents it names, and the signals of every clause weighed for it so far."""

    matcher: Matcher
    query: Query
    words: list[str]
    unknown: list[str]
    routed: set[str]
    ask_words: list[str] = field(default_factory=list)
    asked_groups: list[tuple[Group, Group, Group]] = field(default_factory=list)
    foreign: set[str] = field(default_factory=set)  # the documents that do not govern the place asked about
    _seen: dict[str, Evidence] = field(default_factory=dict)

    def evidence(self, hits: list[Hit]) -> list[Evidence]:
        """The signals of each hit (topic words only: persona and framing left out); a clause
        another search of this question found already is not weighed again."""
        return [replace(self._seen[h.clause.id], hit=h) if h.clause.id in self._seen else self._weigh(h) for h in hits]

    def _weigh(self, h: Hit) -> Evidence:
        m, q, c = self.matcher, self.query, h.clause
        hay = m.haystack[c.id]
        facts = m.clause_facts(c)
        has_figure = facts.dated if q.asks_time else facts.figure
        coverage = m.coverage(self.words, hay)
        e = self._seen[c.id] = Evidence(
            hit=h,
            coverage=coverage,
            has_figure=has_figure,
            unit_ok=q.asked_unit is None or m.unit_ok(c, q.asked_unit),
            numbers_ok=all(n in hay for n in q.numbers),
            years_ok=all(n in hay for n in q.numbers if _ASKED_YEAR.fullmatch(n)),
            words=self.words,
            unknown=self.unknown,
            ask_coverage=coverage if self.ask_words is self.words else m.coverage(self.ask_words, hay),
            contrast=m.contrasted(self.asked_groups, c.id),
            delegates=facts.delegates,
            lists=facts.lists,
            outside=c.doc_id in self.foreign,
        )
        return e
