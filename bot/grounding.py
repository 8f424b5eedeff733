"""The grounding guard: a generated sentence is shown only if everything checkable in it is in
the clauses it cites.

Checked per sentence: every ``[n]`` marker names a provided clause; every figure (number with its
unit, percentage, ‰, date) and every quoted phrase appears in the cited clauses. Figures are
compared after normalising Chinese numerals and widths (八小时 = 8小时, 百分之十 = 10%).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.text import chinese_numeral, normalize, sentence_spans

_MARKER = re.compile(r"\[(\d+)\]")
_QUOTE = re.compile(r"[“\"「『]([^”\"」』]{2,})[”\"」』]")
_UNITS = "%|‰|年|月|日|小时|分钟|个|名|户|平方米|项|次|人|天|家|所|条|岁|元|万元|亿元|倍"
_FIGURE = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNITS})?")
_CN_NUM = "零〇一二两三四五六七八九十百千万"


def normalize_figures(text: str) -> str:
    """Matching form: widths folded, no spaces, Chinese numerals before units and in 百分之/千分之 as digits."""
    t = normalize(text)
    t = re.sub(rf"百分之([{_CN_NUM}]+|\d+(?:\.\d+)?)", lambda m: f"{_num(m.group(1))}%", t)
    t = re.sub(rf"千分之([{_CN_NUM}]+|\d+(?:\.\d+)?)", lambda m: f"{_num(m.group(1))}‰", t)
    return re.sub(rf"([{_CN_NUM}]+)(?=({_UNITS}))", lambda m: str(chinese_numeral(m.group(1))), t)


def _num(s: str) -> str:
    return s if s[0].isdigit() else str(chinese_numeral(s))


@dataclass
class GuardReport:
    """What the guard did to one generated answer."""

    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)


def check_sentence(sentence: str, clauses: dict[int, str]) -> tuple[list[str], list[int]]:
    """Problems found in one sentence, and the clause numbers it cites.

    Args:
        sentence: one generated sentence with its ``[n]`` markers.
        clauses: the clauses given to the model, by number (text plus any header context).
    """
    cited = [int(n) for n in _MARKER.findall(sentence)]
    problems = [f"unknown citation [{n}]" for n in cited if n not in clauses]
    body = _MARKER.sub("", sentence)
    sources = [normalize_figures(clauses[n]) for n in cited if n in clauses]
    if not sources:
        return problems + ["no citation"], cited
    for number, unit in _FIGURE.findall(normalize_figures(body)):
        figure = number + (unit or "")
        # Whole numbers only: "8" must not match inside "18" or "0.8", nor "1" inside "1.5".
        pattern = re.compile(rf"(?<!\d)(?<!\d\.){re.escape(figure)}" + ("" if unit else r"(?!\d|\.\d)"))
        if not any(pattern.search(src) for src in sources):
            problems.append(f"figure {figure} not in cited clauses")
    for phrase in _QUOTE.findall(body):
        if not any(normalize(phrase) in normalize(c) for c in (clauses[n] for n in cited if n in clauses)):
            problems.append(f"quote “{phrase}” not in cited clauses")
    return problems, cited


def split_sentences(text: str, final: bool = True) -> tuple[list[str], str]:
    """Complete sentences of ``text`` (citation markers after the full stop stay attached, as in
    "…8小时。[1]") and the unfinished rest. With ``final`` the rest counts as a sentence too."""
    sentences: list[str] = []
    for s, e in sentence_spans(text):
        piece = text[s:e]
        lead = _LEADING_MARKERS.match(piece)
        if sentences and lead:
            sentences[-1] += lead.group(1).strip()
            piece = piece[lead.end():]
        if piece.strip():
            sentences.append(piece)
    if final or not sentences:
        return (sentences, "") if final else ([], text)
    # The last sentence may still grow (no end mark yet, or markers may follow its end mark).
    last = sentences.pop()
    return sentences, text[text.rindex(last):]


_LEADING_MARKERS = re.compile(r"\s*((?:\[\d+\]\s*)+)")
