"""Clause parser: splits a policy document along its own structure.

Written by hand because no library knows the structure of Chinese policy text: 一、 / (一) /
1. headings, several numbered items on one line inside 专栏 boxes, ——坚持… principles, the
indicator table whose rows only make sense with their header, and in laws 第N章 / 第N节 / 第N条,
its 款 (paragraphs) and 项 ((一)(二) items). Every clause keeps exact offsets into the source so
quotes are always verbatim. Header blocks (===== 标题: … =====), markdown heading marks and HTML
comments are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.models import Clause, Document
from bot.text import chinese_numeral, normalize, sentence_spans, trim_span

_H1 = re.compile(r"([一二三四五六七八九十]+)、")
_H2 = re.compile(r"[(（]([一二三四五六七八九十]+)[)）]")
_ITEM = re.compile(r"(\d{1,2})[.．]")
_BOX = re.compile(r"专栏\s*(\d+)")
_PRINCIPLE = "——"
_TABLE_HEADER = "序号"
_TABLE_ROW = re.compile(r"\d+\s*\|")
# Numbered items that share one line (专栏 boxes): "1.… 2.… 3.…", each preceded by a space.
_INLINE_ITEM = re.compile(r"(?:(?<=^)|(?<=\s))(\d{1,2})[.．](?=\S)")
_CN = "一二三四五六七八九十百零〇两"
_CHAPTER = re.compile(rf"第([{_CN}]+)章")
_SECTION = re.compile(rf"第([{_CN}]+)节")
_ARTICLE = re.compile(rf"第([{_CN}]+)条")
_ARTICLE_LINE = re.compile(rf"^\s*(?:#+\s*)?第[{_CN}]+条", re.MULTILINE)
_ITEM_CN = re.compile(rf"[(（][{_CN}]+[)）]")
_TEXT_LINE = re.compile(r"\S[^\n]*")  # a line, from its first character
# "违反本条例第十条第四项规定的，处以五十元罚款": conduct named only by the number of a provision of
# the same regulation (one or several: "第十九条、第二十条第四款"); the clause is searched with what it
# refers to. A clause that restates the conduct ("违反本条例第十三条规定，专业经营单位拒不接收…的")
# can be read alone. Ranges ("第十条至第十二条"), "第一款、第二款" and 本法/本办法 are not read (the
# corpus has none).
_REFERENCE = re.compile(rf"本条例((?:[、和及或]?第[{_CN}]+条(?:第[{_CN}]+款)?(?:第[{_CN}]+项)?)+)规定的")
_PROVISION = re.compile(rf"第([{_CN}]+)条(?:第([{_CN}]+)款)?(?:第([{_CN}]+)项)?")
_ARTICLE_LABEL = re.compile(rf"^\s*第[{_CN}]+条\s*")
_ITEM_NUMBER = re.compile(rf"\s*[(（]([{_CN}]+)[)）]")
REFERENCE_CHARS = 120  # of each provision referred to, in the referring clause's ``refers``
# One provision in ``refers``, as ``_read_references`` writes it: "本条例第十条第四项：（四）…".
_REFERS_PART = re.compile(rf"本条例(第([{_CN}]+)条(?:第[{_CN}]+款)?(?:第[{_CN}]+项)?)：")
_HEADER_BLOCK = re.compile(r"\A=====\n.*?\n=====\n", re.DOTALL)
_MARKDOWN_MARK = re.compile(r"#+\s*")


@dataclass
class _Line:
    start: int
    end: int
    text: str


@dataclass
class _State:
    """Where the parser is in the heading tree."""

    h1: str = ""
    h1_id: str = ""
    h1_ref: str = ""
    h2: str = ""
    h2_id: str = ""
    h2_ref: str = ""
    box: str = ""
    box_num: int = 0
    table_header: _Line | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def headings(self) -> list[str]:
        return [h for h in (self.h1, self.h2, self.box) if h]

    def scope_id(self) -> str:
        return ".".join(p for p in (self.h1_id, self.h2_id) if p)

    def scope_ref(self) -> str:
        return "".join(p for p in (self.h1_ref, self.h2_ref))

    def next(self, key: str) -> int:
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]


def _lines(text: str) -> list[_Line]:
    """Non-empty content lines with offsets: trimmed, without a header block, markdown heading
    marks or HTML comments."""
    header = _HEADER_BLOCK.match(text)
    lines, pos = [], header.end() if header else 0
    for raw in text[pos:].splitlines(keepends=True):
        s, e = trim_span(text, pos, pos + len(raw.rstrip("\r\n")))
        if m := _MARKDOWN_MARK.match(text, s, e):
            s = m.end()
        if e > s and not text.startswith("<!--", s):
            lines.append(_Line(s, e, text[s:e]))
        pos += len(raw)
    return lines


def _title(text: str) -> str:
    """A heading's title: the text up to its first full stop."""
    return text.split("。", 1)[0]


def _strip_bar(text: str, start: int, end: int) -> int:
    """End offset with trailing table bars and spaces removed ("… |" -> "…")."""
    while end > start and (text[end - 1] in "|｜" or text[end - 1].isspace()):
        end -= 1
    return end


class _Parser:
    """Shared machinery: emitting clauses (split when too long) and the front matter."""

    def __init__(self, doc: Document, text: str, max_chars: int) -> None:
        self.doc, self.text, self.max_chars = doc, text, max_chars
        self.clauses: list[Clause] = []

    def headings(self) -> list[str]:
        raise NotImplementedError

    def emit(self, kind: str, local_id: str, label: str, ref: str, start: int, end: int, context: str = "") -> None:
        """Add a clause, split at sentence ends when it is longer than ``max_chars``."""
        headings = self.headings()
        section = " > ".join(headings + ([label] if label else []))
        parts = self._split(start, end)
        for k, (s, e) in enumerate(parts, 1):
            cid = f"{self.doc.id}:{local_id}" + (f".x{k}" if len(parts) > 1 else "")
            self.clauses.append(
                Clause(
                    id=cid, doc_id=self.doc.id, kind=kind, headings=headings, section=section,
                    ref=ref + (f"（{k}/{len(parts)}）" if len(parts) > 1 else ""),
                    start=s, end=e, text=self.text[s:e], context=context,
                )
            )

    def _split(self, start: int, end: int) -> list[tuple[int, int]]:
        if end - start <= self.max_chars:
            return [(start, end)]
        parts: list[tuple[int, int]] = []
        for s, e in sentence_spans(self.text, start, end):
            if parts and e - parts[-1][0] <= self.max_chars:
                parts[-1] = (parts[-1][0], e)
            else:
                parts.append((s, e))
        return parts

    def parse(self) -> list[Clause]:
        lines = _lines(self.text)
        body = self._front_matter(lines)
        for line in lines[body:]:
            self._line(line)
        self._finish()
        if not self.clauses:
            # A text made only of heading-shaped lines ("(一)一句话。") still has content: keep
            # each line as a paragraph rather than lose the document.
            for k, line in enumerate(lines[body:], 1):
                self.emit("paragraph", f"t{k}", "", f"第{k}段", line.start, line.end)
        return self.clauses

    def _line(self, ln: _Line) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Called after the last line."""

    def _front_matter(self, lines: list[_Line]) -> int:
        """Skip the notice header above the title; the 印发 notice itself becomes one clause."""
        title = normalize(self.doc.title)
        idx = next((i for i, ln in enumerate(lines) if normalize(ln.text) == title), None)
        if idx is None:
            return 0
        addressee = next((i for i in range(idx) if lines[i].text.endswith((":", "："))), None)
        if addressee is not None:
            self.emit("notice", "notice", "印发通知", "印发通知", lines[addressee].start, lines[idx - 1].end)
        return idx + 1


class _PlanParser(_Parser):
    """Plans and policy documents: 一、 / (一) / 1. / 专栏N / ——坚持… / indicator tables."""

    def __init__(self, doc: Document, text: str, max_chars: int) -> None:
        super().__init__(doc, text, max_chars)
        self.st = _State()

    def headings(self) -> list[str]:
        return self.st.headings()

    def _line(self, ln: _Line) -> None:
        st, t = self.st, ln.text
        if st.box and not t.endswith(("|", "｜")):
            st.box, st.table_header = "", None
        if st.box:
            self._box_line(ln)
        elif m := _BOX.match(t):
            st.box_num = int(m.group(1))
            st.box = self.text[ln.start:_strip_bar(self.text, ln.start, ln.end)]
        elif m := _H1.match(t):
            n = chinese_numeral(m.group(1))
            st.h1, st.h1_id, st.h1_ref = _title(t), f"s{n}", f"{m.group(0)}"
            st.h2 = st.h2_id = st.h2_ref = ""
            self._heading_body(ln, len(m.group(0)))
        elif m := _H2.match(t):
            n = chinese_numeral(m.group(1))
            st.h2, st.h2_id, st.h2_ref = _title(t), f"c{n}", f"({m.group(1)})"
            self._heading_body(ln, len(m.group(0)))
        elif t.startswith(_PRINCIPLE):
            k = st.next(st.scope_id() + "p")
            self.emit("principle", f"{st.scope_id()}.p{k}", _title(t).lstrip("—"), f"{st.scope_ref()} 第{k}条原则", ln.start, ln.end)
        elif m := _ITEM.match(t):
            n = int(m.group(1))
            self.emit("item", f"{st.scope_id()}.i{n}", _title(t), f"{st.scope_ref()} 第{n}项", ln.start, ln.end)
        else:
            scope = st.scope_id() or "pre"
            k = st.next(scope + "t")
            kind = "paragraph" if st.scope_id() else "preamble"
            ref = f"{st.scope_ref()} 第{k}段" if st.scope_id() else "序言"
            self.emit(kind, f"{scope}.t{k}" if st.scope_id() else "pre", "", ref, ln.start, ln.end)

    def _heading_body(self, ln: _Line, marker_len: int) -> None:
        """A heading line such as "(一)指导思想。以…" carries its own paragraph."""
        t = ln.text
        if "。" in t[marker_len:] and len(t) > len(_title(t)) + 1:
            self.emit("paragraph", f"{self.st.scope_id()}.t{self.st.next(self.st.scope_id() + 't')}", "", self.st.scope_ref(), ln.start, ln.end)

    def _box_line(self, ln: _Line) -> None:
        st, t = self.st, ln.text
        box_ref = f"{st.scope_ref()} 专栏{st.box_num}"
        end = _strip_bar(self.text, ln.start, ln.end)
        if t.startswith(_TABLE_HEADER):
            st.table_header = _Line(ln.start, end, self.text[ln.start:end])
        elif st.table_header and _TABLE_ROW.match(t):
            cells = [c.strip() for c in self.text[ln.start:end].split("|")]
            n = int(cells[0])
            label = f"第{n}行 {cells[1]}" if len(cells) > 1 else f"第{n}行"
            self.emit("table_row", f"b{st.box_num}.r{n}", label, f"{box_ref} 第{n}行", ln.start, end, context=st.table_header.text)
        else:
            starts = []
            for m in _INLINE_ITEM.finditer(self.text, ln.start, end):
                if int(m.group(1)) == len(starts) + 1:
                    starts.append((m.start(), int(m.group(1))))
            if not starts:
                k = st.next(f"b{st.box_num}t")
                self.emit("box_item", f"b{st.box_num}.t{k}", "", f"{box_ref} 第{k}段", ln.start, end)
                return
            bounds = [s for s, _ in starts[1:]] + [end]
            for (s, n), e in zip(starts, bounds):
                e = _strip_bar(self.text, s, e)
                self.emit("box_item", f"b{st.box_num}.i{n}", _title(self.text[s:e]), f"{box_ref} 第{n}项", s, e)


class _LegalParser(_Parser):
    """Laws and regulations: 第N章 / 第N节 / 第N条, each 款 a clause, 项 kept inside their 款.

    An article with one paragraph is one clause (``a20``, 第二十条); otherwise each 款 is
    (``a20.k2``, 第二十条第二款). Text before the first article (adoption history) is one clause.
    """

    def __init__(self, doc: Document, text: str, max_chars: int) -> None:
        super().__init__(doc, text, max_chars)
        self.chapter = self.section = ""
        self.article: tuple[int, str] | None = None  # (number, label "第二十条")
        self.paragraphs: list[list[int]] = []  # [start, end] of each 款, items included
        self.articles: dict[int, list[list[int]]] = {}  # article number -> its 款, for references
        self.preamble: list[int] | None = None

    def headings(self) -> list[str]:
        return [h for h in (self.chapter, self.section) if h]

    def _line(self, ln: _Line) -> None:
        t = ln.text
        if m := _CHAPTER.match(t):
            self._flush()
            self.chapter, self.section = " ".join(t.split()), ""
        elif m := _SECTION.match(t):
            self._flush()
            self.section = " ".join(t.split())
        elif m := _ARTICLE.match(t):
            self._flush()
            self.article = (chinese_numeral(m.group(1)), m.group(0))
            self.paragraphs = [[ln.start, ln.end]]
        elif self.article is None:
            if self.preamble is None:
                self.preamble = [ln.start, ln.end]
            else:
                self.preamble[1] = ln.end
        elif _ITEM_CN.match(t) and self.paragraphs:
            self.paragraphs[-1][1] = ln.end  # a 项 belongs to the 款 that introduces it
        else:
            self.paragraphs.append([ln.start, ln.end])

    def _finish(self) -> None:
        self._flush()
        self._read_references()
        if self.preamble:
            # Emitted last so ids stay stable; position in the list does not matter for retrieval.
            self.chapter = self.section = ""
            self.emit("notice", "history", "制定和修改情况", "制定和修改情况", *self.preamble)

    def _flush(self) -> None:
        if self.article is None:
            return
        n, label = self.article
        self.articles.setdefault(n, self.paragraphs)
        many = len(self.paragraphs) > 1
        for k, (start, end) in enumerate(self.paragraphs, 1):
            kuan = f"第{_CN_ORDINAL(k)}款" if many else ""
            self.emit("article", f"a{n}" + (f".k{k}" if many else ""), label + kuan, label + kuan, start, end)
        self.article, self.paragraphs = None, []


    def _read_references(self) -> None:
        """Give a clause that refers to provisions of its own regulation by number ("违反本条例第十条
        第四项规定的，处以五十元罚款") their text (``Clause.refers``): the penalty is found by the
        conduct it punishes (遮阳伞), which only the provision names."""
        for clause in self.clauses:
            provisions = [p for m in _REFERENCE.finditer(clause.text) for p in _PROVISION.finditer(m.group(1))]
            said = [f"本条例{p.group(0)}：{text}" for p in provisions if (text := self._provision(*p.groups()))]
            if said:
                clause.refers = "；".join(said)

    def _provision(self, article: str, paragraph: str | None, item: str | None) -> str:
        """The text of 第N条[第M款][第K项], at most ``REFERENCE_CHARS``; "" if the regulation has none."""
        spans = self.articles.get(chinese_numeral(article), [])
        if paragraph:
            k = chinese_numeral(paragraph)
            spans = spans[k - 1 : k]
        texts = [self.text[s:e] for s, e in spans]
        if item:
            k = chinese_numeral(item)
            texts = [ln for t in texts for ln in t.splitlines()
                     if (m := _ITEM_NUMBER.match(ln)) and chinese_numeral(m.group(1)) == k][:1]
        text = _ARTICLE_LABEL.sub("", " ".join(" ".join(t.split()) for t in texts)).rstrip("；;。")
        return text[:REFERENCE_CHARS] + ("……" if len(text) > REFERENCE_CHARS else "")


def _CN_ORDINAL(k: int) -> str:
    digits = "零一二三四五六七八九"
    return digits[k] if k < 10 else ("十" if k < 20 else digits[k // 10] + "十") + (digits[k % 10] if k % 10 else "")


def parse_clauses(doc: Document, text: str, max_chars: int = 300) -> list[Clause]:
    """Split ``text`` (the full source of ``doc``) into clauses in reading order.

    Args:
        doc: the catalog entry; its title marks where the body starts.
        text: the source text, exactly as stored.
        max_chars: clauses longer than this are split at sentence ends (。；), never across clauses.

    Returns:
        Clauses with stable ids (``{doc_id}:{path}``) and offsets such that
        ``text[c.start:c.end] == c.text``.
    """
    parser = _LegalParser if _ARTICLE_LINE.search(text) else _PlanParser
    return parser(doc, text, max_chars).parse()


def referred(refers: str) -> list[tuple[int, str]]:
    """The provisions a clause's ``Clause.refers`` names: (article number, the provision's text)."""
    return [(chinese_numeral(m.group(2)), text) for m, text in _refers_parts(refers)]


def named_in(sentence: str, refers: str) -> list[str]:
    """The text of each provision ``sentence`` (of a clause whose ``Clause.refers`` is ``refers``)
    names by number: the item of a penalty article that fines "违反本条例第十七条规定的" reads as
    what 第十七条 says."""
    texts = {m.group(1): text for m, text in _refers_parts(refers)}
    labels = [p.group(0) for m in _REFERENCE.finditer(sentence) for p in _PROVISION.finditer(m.group(1))]
    return [texts[label] for label in labels if label in texts]


def item_lines(text: str) -> list[tuple[int, int]]:
    """The spans of ``text``'s lines that are numbered items ("（三）违反…；…罚款；"), each from its
    number to the end of its line."""
    return [(m.start(), m.end()) for m in _TEXT_LINE.finditer(text) if _ITEM_CN.match(m.group(0))]


def _refers_parts(refers: str) -> list[tuple[re.Match, str]]:
    starts = list(_REFERS_PART.finditer(refers))
    return [(m, refers[m.end(): nxt.start() if nxt else None].removesuffix("；")) for m, nxt in zip(starts, [*starts[1:], None])]
