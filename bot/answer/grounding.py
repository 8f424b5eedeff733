"""The grounding guard: a generated sentence is shown only if everything checkable in it is in
the clauses it cites.

Checked per sentence: every ``[n]`` marker names a provided clause; every figure (number with its
unit, percentage, ‰, date) and every quoted phrase appears in the cited clauses. Figures are
compared after normalising Chinese numerals and widths (八小时 = 8小时, 百分之十 = 10%).
"""

from __future__ import annotations

import re

from bot.answer.figures import FIGURE, normalize_figures
from bot.text import normalize, sentence_spans

_MARKER = re.compile(r"\[(\d+)\]")
_QUOTE = re.compile(r"[“\"「『]([^”\"」』]{2,})[”\"」』]")


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
    for number, unit in FIGURE.findall(normalize_figures(body)):
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
