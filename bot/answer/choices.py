"""Multiple-choice questions (trainers' quizzes, law exams): which options the cited text supports.

An option that is a phrase of the text ("五年") is found in a clause's phrases; when one clause holds
several options ("城市社区不少于10个…农村社区不少于5个"), the option whose own phrase shares most of the
stem's words wins. An option that is a sentence (the form of 社区工作者 recruitment and law exams)
is rarely verbatim: it is judged against the clause that covers it best, and it is false when it
states a figure the clause states otherwise, or denies what the clause allows or requires
(不得/没有 against 可以/应当, 三分之二 against 半数), true when it covers the clause's words without
such a conflict, and undecided otherwise; when several hold for a one-answer stem, the one whose
clause also covers the stem's words. A "错误的是/不包括" stem asks for the false options; 多选/哪些 for all
that hold.

Written by hand: figure and modality agreement between a paraphrased sentence and a legal clause
is specific to this text; no general library judges it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.answer.evidence import Evidence, Matcher
from bot.answer.figures import FRAME_CHARS, PHRASE, figure_values, normalize_figures
from bot.answer.query import Choice
from bot.models import Clause

_SENTENCE = re.compile(r"[。；;]")
# Denials and prohibitions: an option that has one where its clause has none (or the reverse) says
# the opposite of the text.
_DENIAL = re.compile(r"不得|不能|不可|不准|不许|不宜|不再|禁止|严禁|没有|无需|不需|不必|不用|一律不|无权|不予|不应|不要|无须")
_FRACTION = re.compile(r"[\d一二三四五六七八九十]+分之[\d一二三四五六七八九十]+|过半数|半数")
# Modality: what the text allows against what it requires ("可以等于" against "应当…多一至二名").
_MAY = re.compile(r"可以|有权")
_MUST = re.compile(r"应当|必须")
# Who acts ("由…统筹/负责"): an option naming another body than its part of the text is false.
_ACTOR = re.compile(r"由([^，。；、]{2,20}?)(?:牵头|负责|统筹|组织|制定|审批|决定|承担|管理)")
# Options this short are items of a list, not statements (one character, "二", is in any text);
# a list's items are joined by 、, and any other punctuation ends it.
_ITEM_MIN, _ITEM_CHARS = 2, 10
_LIST_BREAK = re.compile(r"[，,。；;：:“”\"‘’「」《》（）()！!？?\s]+")
# A blank in a stem, and what may follow the last one ("正确的是（ ）" ends in a blank: no cloze).
_BLANK = re.compile(r"[（(]\s*[）)]|_{2,}")
_BLANK_TAIL = re.compile(r"[\s。．.？?：:！!]")
# A filled blank is read this many characters either side; it must match at least _CLOZE_MIN of them.
_CLOZE_REACH = 6
_CLOZE_MIN = 2
# An option is true when it covers this much of its words in its clause (IDF-weighted), false when
# it conflicts; the best option must lead the next by ``_LEAD`` to be chosen alone.
_TRUE = 0.75
_LEAD = 0.05


@dataclass
class Verdict:
    """One option judged against its best clause: how much of it the clause covers, and whether the
    clause contradicts it."""

    support: float
    conflict: bool
    evidence: Evidence | None


def _phrases(clause: Clause) -> list[str]:
    """The pieces an option is looked for in: phrases between punctuation, and for a table row
    each cell with its column header ("2025年 目标值 1‰"), so the stem's words pick the column."""
    if clause.kind == "table_row":
        header = [h.strip() for h in clause.context.split("|")]
        cells = [c.strip() for c in clause.text.split("|")]
        return [normalize_figures(f"{cells[1]} {h} {v}") for h, v in zip(header[2:], cells[2:])]
    return [p for p in PHRASE.split(normalize_figures(clause.context + "，" + clause.text)) if p]


def _figures(text: str) -> set[str]:
    t = normalize_figures(text)
    return {f for f in figure_values(t) if not f[:-1].isdigit() or len(f) > 1} | set(_FRACTION.findall(t))


def _windows(text: str, size: int) -> list[str]:
    """Runs of ``size`` and ``size + 1`` neighbouring phrases of each sentence of ``text`` (an
    option of ``size`` phrases states one such run)."""
    out = []
    for sentence in (s for s in _SENTENCE.split(text) if s):
        phrases = [p for p in PHRASE.split(sentence) if p]
        for n in (size, size + 1):
            out += ["，".join(phrases[i : i + n]) for i in range(max(len(phrases) - n + 1, 1))]
    return out or [text]


def _text(clause: Clause) -> str:
    return normalize_figures(clause.context + "。" + clause.text)


def judge(option: str, ev: Evidence, matcher: Matcher, stem_words: Sequence[str] = ()) -> Verdict:
    """``option`` against one clause: the share of its words (and of ``stem_words``) the clause
    covers, and whether the clause states its figures otherwise or says the opposite about it."""
    opt = normalize_figures(option)
    words = matcher.words(opt)
    words += [w for w in stem_words if w not in words]
    text = _text(ev.hit.clause)
    # The part of the clause the option speaks of: the sentence, phrase or pair of phrases covering
    # most of its words. A distractor borrows words from all over a clause ("市县党委书记…直接责任人"
    # from "市县党委书记要履行第一责任人职责，…乡镇党委书记要履行好直接责任人职责"); the statement it
    # twists is one part.
    size = len([p for p in PHRASE.split(opt) if p])
    # Of windows covering as much, the shortest: a neighbouring phrase's "不再" is not the option's.
    support, near = max(((matcher.coverage(words, w), w) for w in _windows(text, size)), key=lambda t: (t[0], -len(t[1])))
    mine, theirs = _figures(opt), _figures(near)
    conflict = bool(mine - theirs) and bool(theirs)
    conflict |= bool(_DENIAL.search(opt)) != bool(_DENIAL.search(near))
    for modality, other in ((_MAY, _MUST), (_MUST, _MAY)):
        conflict |= bool(modality.search(opt)) and not modality.search(near) and bool(other.search(near))
    actor = _ACTOR.search(opt)
    conflict |= bool(actor) and actor.group(1) not in near and bool(_ACTOR.search(near))
    return Verdict(support, conflict, ev)


def decide(choice: Choice, evidence: list[Evidence], matcher: Matcher, named: set[str] = frozenset(),
           depth: int = 5) -> tuple[str | None, Evidence | None]:
    """The letter(s) of the options the text supports (or, for a negative stem, contradicts), and the
    clause that decides; ``(None, None)`` when the text does not decide. ``evidence``: every ranked
    candidate (each option's own search included); phrases are looked for in the top ``depth``;
    ``named``: the documents the stem names (what they say is what is asked)."""
    letter, deciding = _members(choice, evidence, matcher)
    if letter is None:
        letter, deciding = _cloze(choice, evidence, named)
    if letter is None:
        letter, deciding = _verbatim(choice, evidence, matcher, named, depth)
    if letter is not None:
        return letter, deciding
    return _sentences(choice, evidence, matcher)


def _members(choice: Choice, evidence: list[Evidence], matcher: Matcher) -> tuple[str | None, Evidence | None]:
    """Options that are items of a list ("村民委员会", "村务监督委员会", "业主委员会"), asked which belong
    (多选) or which does not (不属于): members are the options one list of the text names (items joined
    by 、). That list is the one that names most of the options and whose words around it speak most of
    the stem's: the "五位一体" list, not the "六位一体" one beside it in the same sentence."""
    if not (choice.multiple or choice.negative):
        return None, None
    options = {letter: normalize_figures(o) for letter, o in choice.options.items()}
    if any(not _ITEM_MIN <= len(o) <= _ITEM_CHARS for o in options.values()):
        return None, None
    stem_words = matcher.words(normalize_figures(choice.stem))
    best, where, members = -1.0, None, ""
    for ev in evidence:
        runs = _LIST_BREAK.split(_text(ev.hit.clause))
        for i, run in enumerate(runs):
            inside = "".join(k for k, o in options.items() if o in run)
            if len(inside) < 2:
                continue
            # What the list is (“五位一体”) is written just before or after it.
            score = matcher.coverage(stem_words, "，".join(runs[max(i - 1, 0): i + 2])) + len(inside) / len(options)
            if score > best:
                best, where, members = score, ev, inside
    if where is None:
        return None, None
    if not choice.negative:
        return members, where
    missing = "".join(k for k in options if k not in members)
    return (missing, where) if len(missing) == 1 or (choice.multiple and missing) else (None, None)


def _cloze(choice: Choice, evidence: list[Evidence], named: set[str]) -> tuple[str | None, Evidence | None]:
    """A stem with a blank inside it ("委员共（ ）人组成", "不低于（ ）平方米"): the option that, put in the
    blank, reads as a clause does, with the most of the blank's neighbours on either side; figures
    are compared once filled in ("五至九人" and "5至9人" alike). Between options read as far, the one
    read in a document the stem names (the village and the urban law word their committees' size alike)."""
    blank = _BLANK.search(choice.stem)
    if blank is None or choice.negative or choice.multiple or not _BLANK_TAIL.sub("", choice.stem[blank.end():]):
        return None, None
    left, right = choice.stem[: blank.start()], choice.stem[blank.end():]
    texts = [_text(ev.hit.clause) for ev in evidence]
    best: dict[str, tuple[tuple[int, bool], Evidence | None]] = {}
    for letter, option in choice.options.items():
        filled = normalize_figures(left + option + right)
        start, end = len(normalize_figures(left)), len(filled) - len(normalize_figures(right))
        if end > start:  # neighbours that exist only: a blank at the start has none before it
            before, after = range(min(_CLOZE_REACH, start) + 1), range(min(_CLOZE_REACH, len(filled) - end) + 1)
            best[letter] = max((((a + b, ev.hit.clause.doc_id in named), ev) for ev, text in zip(evidence, texts)
                                for a in before for b in after if filled[start - a: end + b] in text),
                               key=lambda t: t[0], default=((0, False), None))
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)
    if not ranked or ranked[0][1][0][0] < _CLOZE_MIN or (len(ranked) > 1 and ranked[1][1][0] == ranked[0][1][0]):
        return None, None
    return ranked[0][0], ranked[0][1][1]


def _verbatim(choice: Choice, evidence: list[Evidence], matcher: Matcher, named: set[str],
              depth: int) -> tuple[str | None, Evidence | None]:
    """Options that are phrases of the text, found verbatim in a clause's phrases."""
    options = {letter: normalize_figures(text) for letter, text in choice.options.items()}
    support: dict[str, tuple[int, float, Evidence]] = {}
    frames: dict[str, set[str]] = {}  # what each option's phrases say before it ("村民委员会每届任期")
    for rank, ev in enumerate(evidence[:depth]):
        phrases = _phrases(ev.hit.clause)
        for letter, option in options.items():
            if letter in support:
                continue
            holding = [p for p in phrases if option in p]
            if holding:
                fit = max(sum(matcher.weight(w) for w in ev.words if matcher.matches(w, p)) for p in holding)
                support[letter] = (rank, fit, ev)
                frames[letter] = {f for p in holding if len(f := p[: p.index(option)]) >= FRAME_CHARS}
    if choice.negative:
        missing = [letter for letter in options if letter not in support]
        if len(missing) == 1 and support:
            first = min(support.values(), key=lambda v: v[0])
            return missing[0], first[2]
        return None, None
    if not support or choice.multiple:
        return None, None
    # Earliest clause first; inside one clause the option whose phrase fits the stem best.
    ranked = sorted(support.items(), key=lambda kv: (kv[1][0], -kv[1][1]))
    (letter, (rank, fit, ev)), rest = ranked[0], ranked[1:]
    if rest and rest[0][1][0] == rank and rest[0][1][1] == fit:
        return None, None
    if named:  # the stem names the document it asks about ("按照许昌市规划…"): what that one says
        return letter, ev
    # Two documents state one rule with different values (a 2011 provincial "每届任期三年" against the
    # law's "每届任期五年" as amended in 2018): the rule that prevails decides.
    for other, (_, _, rival) in rest:
        if frames[letter] & frames[other] and matcher.documents[rival.hit.clause.doc_id].prevails_over(
                matcher.documents[ev.hit.clause.doc_id]):
            letter, ev = other, rival
    return letter, ev


def _sentences(choice: Choice, evidence: list[Evidence], matcher: Matcher) -> tuple[str | None, Evidence | None]:
    """Options that are sentences: each judged against the candidate clause covering it best."""
    judged = {letter: [judge(option, ev, matcher) for ev in evidence] for letter, option in choice.options.items()}
    verdicts = {k: max(js, key=lambda v: v.support, default=Verdict(0.0, False, None)) for k, js in judged.items()}
    holds = {k: v.support >= _TRUE and not v.conflict for k, v in verdicts.items()}
    wanted = [k for k in verdicts if holds[k] != choice.negative]
    if choice.multiple:
        letters = "".join(sorted(wanted))
        return (letters, verdicts[letters[0]].evidence) if letters else (None, None)
    # One answer: the wanted option, when exactly one is; else the best-covered (or, asking for the
    # false one, the least-covered) option when it leads clearly.
    if len(wanted) == 1:
        return wanted[0], verdicts[wanted[0]].evidence
    if len(wanted) > 1 and not choice.negative:
        # Several options hold, each in a clause of its own ("由…民政部门负责", "由…精神文明建设指导机构
        # 负责"): judged again with the stem's words, in the clauses where it holds, the option whose
        # clause also speaks of what the stem asks about ("志愿者注册…由谁负责") leads. Only here: with
        # the stem's words from the start, every option covers more and more of them hold.
        stem_words = matcher.words(normalize_figures(choice.stem))
        for k in wanted:
            holding = [v.evidence for v in judged[k] if v.support >= _TRUE and not v.conflict]
            verdicts[k] = max((judge(choice.options[k], ev, matcher, stem_words) for ev in holding), key=lambda v: v.support)
    sign = -1.0 if choice.negative else 1.0
    score = {k: sign * (verdicts[k].support - verdicts[k].conflict) for k in (wanted or verdicts)}
    ranked = sorted(score, key=lambda k: -score[k])
    if len(ranked) > 1 and score[ranked[0]] - score[ranked[1]] < _LEAD:
        return None, None
    return ranked[0], verdicts[ranked[0]].evidence
