"""The question-answering pipeline shared by the CLI, evaluation and the API."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from llama_index.core import Settings as LlamaSettings

from bot.answer.adapter import load_adapter
from bot.answer.cache import AnswerCache
from bot.answer.calibrated import CalibratedModel, shipped_folder
from bot.answer.conversation import Resolution, resolve
from bot.answer.decision import Decider, Decision
from bot.answer.evidence import Evidence, Matcher
from bot.answer.generation import Generator
from bot.answer.memory import load_memory
from bot.answer.query import Query, understand
from bot.answer.refusal import load_model
from bot.answer.render import DELEGATED, NOT_FOUND, Renderer
from bot.answer.retrieval import BM25Retriever, DenseRetriever, FusionMode, Hit, HybridRetriever, RetrievalMode
from bot.config import Settings, get_settings
from bot.index.build import LoadedIndex, ensure_index
from bot.index.embedding import load_embedder
from bot.index.thesaurus import cilin_thesaurus
from bot.index.tokenizer import ChineseTokenizer
from bot.metrics import CACHE_HITS, LEXICAL, LLM_CALLS
from bot.models import Answer, Filters
from bot.text import is_clean_text

logger = logging.getLogger(__name__)

# llama-index must never reach for a hosted LLM (it prints a notice on stdout when disabled,
# which would corrupt --json output).
with contextlib.redirect_stdout(io.StringIO()):
    LlamaSettings.llm = None


NEEDS_CONTEXT = "这个问题需要接着前面的对话才能理解。请把要问的事项说完整，例如“农村社区的社区社会组织要达到多少个？”。"


class InvalidQuestion(ValueError):
    """The question is empty, too long or not text, or a filter names nothing; the message says which."""


class InvalidFilter(InvalidQuestion):
    """The filters name documents or levels that do not exist, or leave nothing to answer from."""


Found = tuple[Answer, list[Hit]]  # an answer as worked out (or cached) and the ranked clauses it was chosen from


@dataclass(frozen=True)
class Job:
    """A checked question, understood in its thread and ready to be answered (``PolicyBot.prepare``).

    Attributes:
        question: the question as asked, stripped.
        resolution: how it is understood in its thread.
        key: the answer cache's key (resolved question, top_k, documents); None when there is nothing to
            work out (the question needs a thread it does not have).
        started: ``time.perf_counter()`` when it was received; the answer's latency runs from here.
    """

    question: str
    resolution: Resolution
    key: tuple[str, int, frozenset[str] | None] | None
    started: float


class PolicyBot:
    """Loads (building if needed) the index once, then answers questions.

    Args:
        settings: runtime settings; defaults to the environment's.
        retrieval: ``hybrid`` (default), ``bm25`` or ``dense`` (for comparisons).
        fusion: ``relative`` (default, weighted min-max scores) or ``rrf`` (for comparisons).
        show_progress: show a progress bar if the index has to be built.
        use_llm: write generative answers when an LLM is configured (False: extractive only).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        retrieval: RetrievalMode | str = RetrievalMode.HYBRID,
        fusion: FusionMode | str = FusionMode.RELATIVE,
        show_progress: bool = False,
        embedder=None,
        refusal: CalibratedModel | None = None,
        ranker: CalibratedModel | None = None,
        use_llm: bool = True,
    ) -> None:
        self.settings = settings or get_settings()
        self.embedder = embedder or load_embedder(self.settings)
        LlamaSettings.embed_model = self.embedder
        self.index: LoadedIndex = ensure_index(self.settings, self.embedder, show_progress=show_progress)
        self.tokenizer = ChineseTokenizer()
        self.tokenizer.tokens("预热")  # load jieba's dictionary now, not on the first question
        if self.settings.thesaurus:
            self.tokenizer.use_thesaurus(cilin_thesaurus(set(self.index.postings.word_df)))
        self.tokenizer.places("预热")  # and its part-of-speech tagger (0.6 s), over the words added
        s = self.settings
        adapter = (load_adapter(s.query_adapter_model, s.embedder, int(self.index.manifest["dimension"]),
                                shipped_folder(s.embedder)) if s.query_adapter else None)
        memory = (load_memory(s.question_memory_model, s.embedder, int(self.index.manifest["dimension"]),
                              shipped_folder(s.embedder)) if s.question_memory else None)
        if memory is not None:  # its clause ids checked against this build's
            memory = memory.bound(self.index.clauses)
        self.dense = DenseRetriever(self.index, self.embedder, s.candidate_k, s.max_embed_chars, adapter, memory)
        self.retriever = HybridRetriever(
            BM25Retriever(self.index, self.tokenizer, s.candidate_k),
            self.dense,
            weights=(s.bm25_weight, s.dense_weight),
            candidate_k=s.candidate_k,
            mode=FusionMode(fusion),
            top_k=s.top_k,
            retrieval=RetrievalMode(retrieval),
        )
        self.ranker = ranker or load_model(s.ranker_model, "ranker.json", s.embedder)
        self.refusal = refusal or load_model(s.refusal_model, "refusal.json", s.embedder)
        if memory is None and {"memory_rr", "memory_margin"} & {*self.ranker.features, *self.refusal.features}:
            # Fitted beside a memory, the models read its absence as doubt: answers lean to refusals.
            logger.warning("the ranker and refusal models were fitted with a question memory and none is loaded "
                           "(POLICYBOT_QUESTION_MEMORY, memory.npz): expect more refusals; refit with benchmarks/calibrate.py")
        # Only where both searches run: with one retriever there is nothing to skip.
        gate = (load_model(s.gate_model, "gate.json", s.embedder)
                if s.lexical_gate and RetrievalMode(retrieval) is RetrievalMode.HYBRID else None)
        self.matcher = Matcher(self.tokenizer, self.index.documents, self.index.clauses, self.index.postings)
        self.decider = Decider(s, self.retriever, self.matcher, self.ranker, self.refusal, self.index.clauses, gate,
                              s.refusal_threshold)
        self.renderer = Renderer(self.matcher, self.index.documents, s.quote_whole_chars)
        self.generator = Generator(s) if use_llm and s.llm_base_url and s.llm_model else None
        self._allowed_by_level: dict[tuple, frozenset[str]] = {}
        shared = None
        if s.cache_url:
            from bot.answer.sharedcache import shared_answers

            shared = shared_answers(s, self.index, self.ranker.to_json() + self.refusal.to_json() + (gate.to_json() if gate else "")
                                    + (adapter.fingerprint() if adapter else "") + (memory.fingerprint() if memory else ""))
        self.answers: AnswerCache[Found] | None = (AnswerCache(self._answer, s.answer_cache_size, shared, s.claim_poll_s)
                                                   if s.answer_cache_size else None)

    def check_question(self, question: object) -> str:
        """The question stripped, or ``InvalidQuestion`` saying what is wrong with it."""
        if not isinstance(question, str):
            raise InvalidQuestion("question must be a string")
        if not is_clean_text(question):
            raise InvalidQuestion("question is not valid UTF-8 text")
        q = question.strip()
        if not q:
            raise InvalidQuestion("question is empty")
        if len(q) > self.settings.max_question_chars:
            raise InvalidQuestion(f"question is {len(q)} characters; the limit is {self.settings.max_question_chars}")
        if "\x00" in q or sum(not ch.isprintable() for ch in q) > len(q) // 10:
            raise InvalidQuestion("question contains binary or control characters")
        return q

    def allowed_documents(self, filters: Filters | None) -> frozenset[str]:
        """The ids of the documents that may be cited under ``filters``."""
        filters = filters or Filters()
        if filters.doc:
            return self._allowed(filters)
        # Without document ids the choices are few (levels, repealed or not): each is worked out
        # once, not per question over every document.
        key = (tuple(sorted(filters.level)), filters.include_repealed)
        if key not in self._allowed_by_level:
            self._allowed_by_level[key] = self._allowed(filters)
        return self._allowed_by_level[key]

    def _allowed(self, filters: Filters) -> frozenset[str]:
        docs = self.index.documents
        unknown = [d for d in filters.doc if d not in docs]
        if unknown:
            raise InvalidFilter(f"unknown document id(s): {', '.join(unknown)}; see /v1/documents")
        levels = {d.level for d in docs.values()}
        if bad := [lv for lv in filters.level if lv not in levels]:
            raise InvalidFilter(f"unknown level(s): {', '.join(bad)}; choose from {', '.join(sorted(levels))}")
        allowed = frozenset(
            d.id for d in docs.values()
            if (not filters.doc or d.id in filters.doc)
            and (not filters.level or d.level in filters.level)
            and (filters.include_repealed or d.status != "已废止" or d.id in filters.doc)
        )
        if not allowed:
            raise InvalidFilter("the filters leave no document to answer from")
        return allowed

    def _scope(self, docs: frozenset[str]) -> frozenset[str] | None:
        """None (no filtering needed) when every document is allowed."""
        return None if len(docs) == len(self.index.documents) else docs

    def search(self, query: str, top_k: int | None = None, filters: Filters | None = None) -> list[Hit]:
        docs = self.allowed_documents(filters)
        return self.retriever.search(self.check_question(query), top_k or self.settings.top_k,
                                     docs=self._scope(docs))

    def ask(self, question: str, top_k: int | None = None, filters: Filters | None = None,
            history: list[str] | None = None) -> Answer:
        """Answer ``question`` with cited clauses, or ``found=False`` with a reason. ``history``:
        the earlier user turns of the conversation, oldest first (a follow-up is resolved from them)."""
        *_, final = self.stream(question, top_k, filters, history)
        return final

    def stream(self, question: str, top_k: int | None = None, filters: Filters | None = None,
               history: list[str] | None = None) -> Iterator[str | Answer]:
        """Answer text as it becomes available, then the final ``Answer`` (see ``elaborate``)."""
        started = time.perf_counter()
        yield from self.elaborate(*self.run(question, top_k, filters, history), started)

    def generates(self, answer: Answer) -> bool:
        """Whether ``elaborate`` calls the LLM for ``answer`` (a found answer, with an LLM configured)."""
        return self.generator is not None and answer.found

    def elaborate(self, answer: Answer, hits: list[Hit], started: float) -> Iterator[str | Answer]:
        """The text of ``answer`` as it becomes available, then the final ``Answer``.

        Extractive answers come in one piece; with an LLM configured, guarded sentences stream
        as the model writes them (see ``bot.answer.generation``).
        """
        if not self.generates(answer):
            yield answer.answer
            yield answer
            return
        candidates = [self.renderer.citation(n, h) for n, h in enumerate(hits, 1)]
        for event in self.generator.stream(answer.resolved_question or answer.question, answer, candidates):
            if isinstance(event, Answer):
                event = event.model_copy(update={"latency_ms": round((time.perf_counter() - started) * 1000, 2)})
                LLM_CALLS.labels(action=event.guard.action if event.guard else "none").inc()
            yield event

    def _resolve(self, q: str, history: list[str] | None) -> Resolution:
        """How the checked question ``q`` is understood in its thread (the last ``history_turns`` user turns)."""
        turns = [self.check_question(h) for h in (history or []) if isinstance(h, str) and h.strip()]
        return resolve(q, turns[-self.settings.history_turns:], self.matcher.names_topic)

    def run(self, question: str, top_k: int | None = None, filters: Filters | None = None,
            history: list[str] | None = None) -> Found:
        """The answer and the ranked clauses it was chosen from (evaluation scores both).

        Answers are cached per (resolved question, top_k, documents): the index is read-only, so a
        repeated question (a hall of trainees asking the same thing) costs a dictionary look-up, and
        the same question asked by many at once is answered once. The API takes the same three
        steps, running the middle one on its event loop when the answer is known
        (``bot.api.answering``).
        """
        job = self.prepare(question, top_k, filters, history)
        return self.finish(job, *self.work_out(job))

    def prepare(self, question: str, top_k: int | None = None, filters: Filters | None = None,
                history: list[str] | None = None) -> Job:
        """The question checked and understood in its thread, with its cache key: cheap (no search);
        raises ``InvalidQuestion`` or ``InvalidFilter``."""
        started = time.perf_counter()
        q = self.check_question(question)
        resolution = self._resolve(q, history)
        docs = self.allowed_documents(filters)
        key = None if resolution.needs_context else (resolution.question, top_k or self.settings.top_k, self._scope(docs))
        return Job(q, resolution, key, started)

    def work_out(self, job: Job) -> tuple[Found, bool]:
        """The answer to a prepared question and whether it came from a cache (or a computation
        already running), worked out here if it did not."""
        if job.key is None:
            return self.needs_context(job), False
        if self.answers is None:
            return self._answer(*job.key), False
        return self.answers(*job.key)

    def needs_context(self, job: Job) -> Found:
        """The answer to a follow-up asked without the thread it leans on."""
        return Answer(question=job.question, found=False, answer=NEEDS_CONTEXT, citations=[], latency_ms=0.0,
                      reason="needs_context"), []

    def finish(self, job: Job, found: Found, cached: bool) -> Found:
        """The answer as given to whoever asked ``job``: their wording, the resolved question and the
        time since it was received."""
        answer, hits = found
        if cached:
            CACHE_HITS.inc()
        latency = round((time.perf_counter() - job.started) * 1000, 2)
        logger.info("ask found=%s reason=%s latency_ms=%.1f", answer.found, answer.reason, latency)
        resolved = job.resolution.question if job.resolution.leaned else None
        return answer.model_copy(update={"question": job.question, "resolved_question": resolved, "latency_ms": latency}), hits

    def consider(self, question: str, history: list[str] | None = None, lexical_only: bool = False) -> tuple[str, Decision]:
        """The question as understood in its thread, and its decision before the calibrated models
        weigh in (``Decider.consider``): what calibration fits them on."""
        q = self.resolved(question, history)
        return q, self.decider.consider(understand(q), self.settings.top_k, None, lexical_only)

    def candidates(self, question: str, history: list[str] | None = None,
                   lexical_only: bool = False) -> tuple[Query, list[Evidence], set[str]]:
        """The question as understood, every candidate clause with its evidence (unranked) and the
        documents it names: what the ranker is fitted on (``benchmarks/calibrate.py``); ``lexical_only``:
        as the lexical gate's search finds them (BM25 alone)."""
        query = understand(self.resolved(question, history))
        return query, *self.decider.candidates(query, self.settings.top_k, None, lexical_only)

    def resolved(self, question: str, history: list[str] | None = None) -> str:
        """The question searched for ``question`` in its thread (``history``: earlier user turns)."""
        return self._resolve(self.check_question(question), history).question

    def _answer(self, q: str, top_k: int, docs: frozenset[str] | None) -> tuple[Answer, list[Hit]]:
        d = self.decider.decide(understand(q), top_k, docs)
        if d.lexical:
            LEXICAL.inc()
        return self.compose(q, d), d.hits

    def compose(self, q: str, d: Decision) -> Answer:
        """The answer ``d`` gives to ``q``: its clauses quoted and cited, or not found with the closest ones."""
        if d.reason == "delegated":
            text, citations = self.renderer.compose(d.query, d.chosen, DELEGATED)
            return Answer(question=q, found=False, answer=text, citations=citations, latency_ms=0.0, reason=d.reason)
        if d.reason:
            related = [self.renderer.citation(n, e.hit) for n, e in enumerate(d.evidence[: self.settings.related_k], 1)]
            return Answer(question=q, found=False, answer=NOT_FOUND, citations=[], latency_ms=0.0, reason=d.reason,
                          related=related if d.reason not in ("instruction", "not_chinese") else [])
        lead = ""
        if d.query.choice:
            options = d.query.choice.options
            if not d.choice:
                lead = "未能判断：所引条款未能确定选项，请对照原文判断："
            elif len(d.choice) == 1:
                lead = f"答案：{d.choice}（{options[d.choice]}）。依据："
            else:
                lead = f"答案：{d.choice}（{'；'.join(f'{x}. {options[x]}' for x in d.choice)}）。依据："
        text, citations = self.renderer.compose(d.query, d.chosen, lead)
        return Answer(question=q, found=True, answer=text, citations=citations, latency_ms=0.0, choice=d.choice,
                      retrieval="lexical" if d.lexical else "hybrid")
