"""Text helpers for Chinese policy text: matching normalisation and sentence spans.

Quoted text is never normalised; ``normalize`` is only for comparing strings.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
# A sentence ends at 。；！？ (full or half width); the end mark stays with its sentence.
_SENTENCE_END = re.compile(r"[。；;！!？?]")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}


def is_clean_text(text: str) -> bool:
    """False for strings that cannot be UTF-8 text: lone surrogates (a JSON "\\ud800", invalid
    bytes decoded with surrogateescape)."""
    return not any("\ud800" <= ch <= "\udfff" for ch in text)


def clean_text(text: str) -> str:
    """``text`` with anything that is not UTF-8 text replaced, safe to echo in an error message."""
    return text.encode("utf-8", "replace").decode("utf-8")


def char_bigrams(text: str) -> set[str]:
    """The character bigrams of ``text`` in matching form, end punctuation left out; for comparing
    two phrasings of a question."""
    t = normalize(text).strip("?？。!！")
    return {t[i : i + 2] for i in range(len(t) - 1)}


def normalize(text: str) -> str:
    """NFKC (full-width brackets/digits to half width), lower case, no whitespace."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans ``(s, e)`` of the sentences in ``text[start:end]``, trimmed of surrounding spaces."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        spans.append((pos, m.end()))
        pos = m.end()
    if pos < end:
        spans.append((pos, end))
    return [(s, e) for s, e in (trim_span(text, s, e) for s, e in spans) if e > s]


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` moved inwards past spaces at either end (offsets stay in ``text``)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def chinese_numeral(numeral: str) -> int:
    """Value of a Chinese numeral as used in headings, article numbers and figures (十五, 一百零八, 两千)."""
    total, section, digit = 0, 0, 0
    for ch in numeral:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch == "万":
            total += (section + digit) * 10000
            section = digit = 0
        else:
            section += (digit or 1) * _CN_UNITS[ch]
            digit = 0
    return total + section + digit
