"""The data contracts shared by the indexer, the CLI, evaluation and the API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bot.text import is_clean_text

# "未核实": a document a user added, whose level and status no operator has confirmed yet.
Level = Literal["国家", "省", "市", "未核实"]
Status = Literal["现行有效", "已修订", "已废止", "未核实"]
# 上位法优先: a law stands over a province's rules, and those over a city's, where they conflict.
_AUTHORITY = {"国家": 3, "省": 2, "市": 1}


class Document(BaseModel):
    """One catalog entry: a policy document and where its text lives."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    doc_number: str = Field("", description="文号, e.g. 许政办〔2023〕8号; empty when the document has none (laws)")
    issuer: str = Field(description="发布机关")
    issued: str = Field(description="成文/通过日期 (ISO date)")
    published: str | None = None
    level: Level
    status: Status = "现行有效"
    source: str = Field(description="Where the text was taken from")
    file: str = Field(description="Path of the text, relative to the corpus folder")
    note: str = Field("", description="Provenance remarks: original 文号 text, dates, completeness")
    aliases: list[str] = Field([], description="Names users call it by (规划, 物业管理条例); a question naming one is routed to it")
    jurisdiction: list[str] = Field([], description="The places it governs: a city's document lists the city and its counties and "
                                    "districts (许昌市, 禹州市, 魏都区, …), a province's the province; empty: everywhere (national). "
                                    "A question that asks about another place of those kinds is not answered from it")
    added_by_user: bool = Field(False, description="Added with `policy-bot add`, not one of the curated sources")


    def prevails_over(self, other: Document) -> bool:
        """Whether this document's rule stands over ``other``'s where the two conflict: the higher
        level (上位法优先), else the later one (新法优先)."""
        mine, theirs = _AUTHORITY.get(self.level, 0), _AUTHORITY.get(other.level, 0)
        return mine > theirs or (mine == theirs and self.issued > other.issued)


def _clean(values: list[str]) -> list[str]:
    if not all(is_clean_text(v) for v in values):
        raise ValueError("must be valid UTF-8 text")
    return values


class Filters(BaseModel):
    """Which documents may be cited. Repealed (已废止) documents are left out unless asked for."""

    model_config = ConfigDict(extra="forbid")
    doc: Annotated[list[str], AfterValidator(_clean)] = Field([], description="Document ids (see /v1/documents); empty: all")
    level: Annotated[list[str], AfterValidator(_clean)] = Field([], description="国家, 省 or 市; empty: all")
    include_repealed: bool = False


class Clause(BaseModel):
    """The unit of retrieval and citation: a verbatim span of one document.

    ``text == source[start:end]`` always holds; ``context`` carries what a clause needs to be read
    alone (the header row of an indicator table), and is never part of the quote.
    """

    id: str
    doc_id: str
    kind: Literal["notice", "preamble", "paragraph", "principle", "item", "box_item", "table_row", "article"]
    headings: list[str] = Field(description="Heading chain from the top, e.g. ['二、主要任务', '(四)创新社区服务机制']")
    section: str = Field(description="Human-readable section path")
    ref: str = Field(description="Short reference, e.g. 二、(三) 专栏4 第1项")
    start: int
    end: int
    text: str
    context: str = ""
    refers: str = Field("", description="The provisions of its regulation the clause names only by number "
                        "(违反本条例第十条第四项规定的…), their text: searched and matched, never quoted nor counted as the clause's own words")


class Citation(BaseModel):
    """A clause quoted in an answer, numbered as its ``[n]`` marker."""

    n: int
    doc_id: str
    title: str
    doc_number: str
    level: str = ""
    source: str = Field("", description="Where the document's text was taken from")
    added_by_user: bool = Field(False, description="The document was added by a user and is not a curated source")
    section: str
    ref: str
    clause_id: str
    text: str
    context: str = ""
    score: float


class Guard(BaseModel):
    """What the grounding guard did to a generated answer."""

    intervened: bool
    action: Literal["none", "stripped", "fallback"]
    problems: list[str] = []


class Answer(BaseModel):
    """The answer contract of ``policy-bot ask --json`` and ``POST /v1/ask``."""

    question: str
    found: bool
    answer: str
    citations: list[Citation]
    id: str | None = Field(None, description="The answer's id in the question log (for POST /v1/feedback); null when logging is off")
    latency_ms: float
    reason: str | None = Field(None, description="Why no answer was given (found=false), machine-readable")
    mode: Literal["extractive", "generative"] = "extractive"
    retrieval: Literal["hybrid", "lexical"] = Field(
        "hybrid", description="lexical: answered from BM25 alone (the calibrated gate found it decisive, the question was not embedded)")
    guard: Guard | None = Field(None, description="Set when an LLM was asked: whether the grounding guard intervened")
    choice: str | None = Field(None, description="Multiple-choice questions: the option letter the cited clauses support")
    resolved_question: str | None = Field(None, description="A follow-up question as understood from the thread (what was searched)")
    related: list[Citation] = Field([], description="found=false: the closest clauses, which do not directly answer (相关条款（未直接回答）)")
