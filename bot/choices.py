"""Multiple-choice questions (trainers' quizzes, law exams): which option the cited text supports.

Each option is looked for in the re-ranked clauses; when one clause holds several options ("城市
社区不少于10个…农村社区不少于5个"), the option whose own phrase shares most of the stem's words
wins. A "不包括/不正确" stem asks for the option no clause supports.
"""

from __future__ import annotations

import re

from bot.evidence import Evidence, Matcher
from bot.figures import normalize_figures
from bot.models import Clause
from bot.query import Choice

_PHRASE = re.compile(r"[，,。；;：:、]")


def _phrases(clause: Clause) -> list[str]:
    """The pieces an option is looked for in: phrases between punctuation, and for a table row
    each cell with its column header ("2025年 目标值 1‰"), so the stem's words pick the column."""
    if clause.kind == "table_row":
        header = [h.strip() for h in clause.context.split("|")]
        cells = [c.strip() for c in clause.text.split("|")]
        return [normalize_figures(f"{cells[1]} {h} {v}") for h, v in zip(header[2:], cells[2:])]
    return [p for p in _PHRASE.split(normalize_figures(clause.context + "，" + clause.text)) if p]


def decide(choice: Choice, evidence: list[Evidence], matcher: Matcher, depth: int = 5) -> tuple[str | None, Evidence | None]:
    """The letter of the option the top ``depth`` clauses support, and the clause that decides it
    (``(None, None)`` when the text does not decide)."""
    options = {letter: normalize_figures(text) for letter, text in choice.options.items()}
    support: dict[str, tuple[int, float, Evidence]] = {}
    for rank, ev in enumerate(evidence[:depth]):
        phrases = _phrases(ev.hit.clause)
        for letter, option in options.items():
            if letter in support:
                continue
            holding = [p for p in phrases if option in p]
            if holding:
                fit = max(sum(matcher.weight(w) for w in ev.words if matcher.matches(w, p)) for p in holding)
                support[letter] = (rank, fit, ev)
    if choice.negative:
        missing = [letter for letter in options if letter not in support]
        if len(missing) == 1 and support:
            first = min(support.values(), key=lambda v: v[0])
            return missing[0], first[2]
        return None, None
    if not support:
        return None, None
    # Earliest clause first; inside one clause the option whose phrase fits the stem best.
    ranked = sorted(support.items(), key=lambda kv: (kv[1][0], -kv[1][1]))
    (letter, (rank, fit, ev)), rest = ranked[0], ranked[1:]
    if rest and rest[0][1][0] == rank and rest[0][1][1] == fit:
        return None, None
    return letter, ev
