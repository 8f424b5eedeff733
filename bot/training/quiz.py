"""Quizzes and handouts for the 千人示范培训 trainers, drawn from the clauses, no LLM needed.

Every item is built from one clause and checked against it before it is emitted: the answer is in
the clause, no distractor is, a "false" statement is not in the clause. Same seed, same quiz.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel

from bot.answer.figures import KEY_FIGURE_KINDS
from bot.index.clausestore import of_document
from bot.models import Clause, Document
from bot.text import normalize, sentence_spans

ItemType = Literal["choice", "blank", "judge"]
TYPES: tuple[ItemType, ...] = ("choice", "blank", "judge")

# What a blank can hide, by kind: distractors are drawn from the same kind elsewhere in the text.
_KINDS = {
    **KEY_FIGURE_KINDS,
    "term": re.compile(r"“([^”]{2,12})”"),
    "role": re.compile(r"社区党组织书记|社区工作者|社会工作者|街道党工委|市民政局|县级民政部门|县级政府|乡镇\(街道\)|基层政府|村\(社区\)党组织|社区志愿者|网格员|楼栋长|灾害信息员|社会救助协理员"),
}
# Values that say the same thing ("2025年年底" and "2025年年末", "≥10%" and "10%") are one answer.
_SAME = re.compile(r"^[≥>]|年底$|年末$")
_LETTERS = "ABCD"
_TITLE = re.compile(r"\d{1,2}[.．][^。]{2,24}。")


def _unit(value: str) -> str:
    """"30平方米" -> "平方米", "≥10%" -> "%": distractors share the answer's unit."""
    return re.sub(r"[\d.≥>]", "", value)


class QuizItem(BaseModel):
    """One question with its key and the verbatim clause as explanation."""

    n: int
    type: ItemType
    question: str
    options: list[str] = []
    answer: str
    clause_id: str
    section: str
    ref: str
    explanation: str


def _values(kind: str, text: str) -> list[str]:
    pattern = _KINDS[kind]
    return [m.group(1) if pattern.groups else m.group(0) for m in pattern.finditer(text)]


class QuizMaker:
    """Builds checked quiz items from a list of clauses (e.g. one document or one section)."""

    def __init__(self, clauses: list[Clause], pool: list[Clause] | None = None) -> None:
        """Items come from ``clauses``; distractors from ``pool`` (default: the same clauses),
        usually the whole document so that one section still gets plausible wrong options."""
        self.clauses = [c for c in clauses if c.kind not in ("notice", "preamble")]
        self.pool = {k: sorted({v for c in (pool or clauses) for v in _values(k, c.text)}) for k in _KINDS}

    def candidates(self) -> list[tuple[Clause, str, str, str]]:
        """(clause, sentence, kind, value) for every value a question can ask about, in text order."""
        out = []
        for c in self.clauses:
            for s, e in sentence_spans(c.text):
                sentence = c.text[s:e]
                if _TITLE.fullmatch(sentence) or len(sentence) < 12:  # item titles make poor questions
                    continue
                for kind in _KINDS:
                    for value in dict.fromkeys(_values(kind, sentence)):
                        out.append((c, sentence, kind, value))
        return out

    def _distractors(self, rng: random.Random, clause: Clause, kind: str, value: str, k: int = 3) -> list[str]:
        hay = normalize(clause.text + clause.context)
        core = _SAME.sub("", value)
        # Never a distractor that the clause also contains, or that means the same as the answer:
        # it could be a correct answer too.
        unit = _unit(value) if kind in ("count", "percent") else None
        pool = [v for v in self.pool[kind]
                if _SAME.sub("", v) != core and normalize(v) not in hay and normalize(value) not in normalize(v)
                and (unit is None or _unit(v) == unit)]
        return rng.sample(pool, k) if len(pool) >= k else []

    def make(self, n: int = 30, types: Iterable[str] = TYPES, seed: int = 7) -> list[QuizItem]:
        """Up to ``n`` items, types in rotation, deterministic for ``seed``."""
        types = [t for t in types if t in TYPES] or list(TYPES)
        rng = random.Random(seed)
        candidates = self.candidates()
        rng.shuffle(candidates)
        items: list[QuizItem] = []
        used: set[tuple[str, str]] = set()
        for clause, sentence, kind, value in candidates:
            if len(items) >= n:
                break
            if (clause.id, value) in used:
                continue
            start = len(items) % len(types)
            for type_ in types[start:] + types[:start]:  # rotate types; fall back when one cannot be made
                item = self._item(rng, type_, clause, sentence, kind, value, len(items) + 1)
                if item and self.check(item, clause):
                    items.append(item)
                    used.add((clause.id, value))
                    break
        return items

    def _item(self, rng, type_: str, clause: Clause, sentence: str, kind: str, value: str, n: int) -> QuizItem | None:
        shown = f"“{value}”" if kind == "term" else value
        if sentence.count(shown) != 1:
            return None
        stem = sentence.replace(shown, "（    ）" if kind != "term" else "“（    ）”")
        stem = re.sub(r"^\d{1,2}[.．]", "", stem).strip()
        base = dict(n=n, clause_id=clause.id, section=clause.section, ref=clause.ref, explanation=clause.text)
        if clause.kind == "table_row":
            header = [h.strip() for h in clause.context.split("|")]
            cells = [c.strip() for c in clause.text.split("|")]
            if value not in cells:
                return None
            column = header[cells.index(value)]
            stem = f"专栏1指标“{cells[1]}”的{column.replace(' ', '')}是（    ）。"
        distractors = self._distractors(rng, clause, kind, value)
        if type_ == "blank":
            return QuizItem(type="blank", question=stem, answer=value, **base)
        if not distractors:
            return None
        if type_ == "choice":
            options = distractors + [value]
            rng.shuffle(options)
            return QuizItem(type="choice", question=stem, options=options, answer=_LETTERS[options.index(value)], **base)
        if clause.kind == "table_row":
            return None
        if rng.random() < 0.5:
            return QuizItem(type="judge", question=sentence, answer="正确", **base)
        wrong = f"“{distractors[0]}”" if kind == "term" else distractors[0]
        return QuizItem(type="judge", question=sentence.replace(shown, wrong), answer="错误", **base)

    @staticmethod
    def check(item: QuizItem, clause: Clause) -> bool:
        """Whether the key can be verified against the clause (items that fail are dropped)."""
        hay = normalize(clause.text + clause.context)
        if item.type == "blank":
            return normalize(item.answer) in hay
        if item.type == "choice":
            right = item.options[_LETTERS.index(item.answer)]
            return normalize(right) in hay and not any(normalize(o) in hay for o in item.options if o != right)
        statement_in_clause = normalize(re.sub(r"^\d{1,2}[.．]", "", item.question)) in hay
        return statement_in_clause == (item.answer == "正确")


class UnknownSelection(ValueError):
    """The document or section names nothing; ``param`` says which ("doc" or "section")."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def select_section(documents: dict[str, Document], clauses: list[Clause], doc_id: str,
                   section: str | None) -> tuple[Document, list[Clause], list[Clause]]:
    """The document, all its clauses (the distractor pool) and those of ``section``; shared by the
    CLI (quiz, handout) and ``POST /v1/quiz``."""
    if doc_id not in documents:
        raise UnknownSelection("doc", f"unknown document {doc_id!r}")
    chosen = select_clauses(clauses, doc_id, section)
    if not chosen:
        raise UnknownSelection("section", f"no clauses match section {section!r} (try e.g. \"二、(六)\" or \"专栏3\")")
    return documents[doc_id], select_clauses(clauses, doc_id), chosen


def select_clauses(clauses: list[Clause], doc_id: str, section: str | None = None) -> list[Clause]:
    """The clauses of one document, optionally of one section given as a short reference
    ("二、(六)", "二、(二) 专栏3") or a heading fragment ("加强社区队伍建设")."""
    chosen = of_document(clauses, doc_id)
    if section:
        key = normalize(section)
        chosen = [c for c in chosen if normalize(c.ref).startswith(key) or key in normalize(c.section)]
    return chosen
