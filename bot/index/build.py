"""Build, cache and load the two indexes (BM25 over jieba tokens, dense vectors), in the build
folder (bm25s + FAISS) or in Milvus, as ``bot.index.backends`` writes and opens them.

Builds are written aside and swapped in atomically (``bot.index.builds``). Embeddings are cached
per clause-text hash, so a rebuild embeds only clauses that changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from rich.progress import track

from bot.config import Settings, get_settings
from bot.corpus.catalog import load_catalog, read_text
from bot.corpus.chunking import parse_clauses
from bot.files import current_build, write_atomic
from bot.index.backends import IndexDamaged, LocalBackend, SearchBackend, write_local
from bot.index.builds import (
    expected_manifest,
    file_record,
    fresh_build,
    last_intact_build,
    manifest_or_empty,
    remove_abandoned,
    remove_old_builds,
    swap_current,
    verify_build,
    versions,
)
from bot.index.clausestore import ClauseTable, write_clauses
from bot.index.embedding import load_embedder
from bot.index.postings import Postings, write_tables
from bot.index.sentences import SentenceIndex, clause_sentences, write_sentences
from bot.index.tokenizer import ChineseTokenizer
from bot.models import Clause, Document

logger = logging.getLogger(__name__)



@dataclass
class LoadedIndex:
    """Everything retrieval needs, loaded read-only from one build folder."""

    path: Path
    manifest: dict
    documents: dict[str, Document]
    clauses: Sequence[Clause]  # a ClauseTable: clauses made on demand from memory-mapped columns
    clause_positions: Mapping[str, int]  # clause id -> position in ``clauses`` (and in the backend)
    backend: SearchBackend
    postings: Postings
    sentences: SentenceIndex


def index_text(clause: Clause) -> str:
    """What BM25 indexes for a clause: its section path, table header and the provisions it names by
    number give the words a question uses ("专栏3", "目标值", 遮阳伞) that the clause itself does not repeat."""
    return "\n".join(p for p in (clause.section, clause.context, clause.refers, clause.text) if p)


def embedding_text(clause: Clause, title: str) -> str:
    """What is embedded for a clause: the document title in front, so that an article that never
    names its subject ("第七条 …由主任、副主任和委员共五至九人组成") is embedded as being about
    居民委员会; then the same text as BM25 indexes."""
    return f"《{title}》\n{index_text(clause)}"


def sentence_embedding_texts(clause: Clause, title: str, min_chars: int) -> list[str]:
    """What is embedded for each sentence of a clause in the sentence index: the title in front, as for clauses."""
    return [f"《{title}》\n{t}" for t in clause_sentences(clause, min_chars)]


class _EmbeddingCache:
    """Vectors keyed by sha256(embedder name, indexed text), one .npz per embedder."""

    def __init__(self, index_dir: Path, embedder_name: str) -> None:
        safe = embedder_name.replace("/", "_")
        self.path = index_dir / "cache" / f"embeddings-{safe}.npz"
        self.name = embedder_name
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as data:
                self.vectors = dict(zip(data["keys"].tolist(), data["vectors"]))

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\0{text}".encode()).hexdigest()

    def save(self) -> None:
        write_atomic(self.path, lambda fh: np.savez(fh, keys=np.array(list(self.vectors)),
                                                    vectors=np.stack(list(self.vectors.values()))))


def _embed(clauses: list[Clause], titles: dict[str, str], settings: Settings, embedder, show_progress: bool) -> np.ndarray:
    return _embed_texts([embedding_text(c, titles[c.doc_id]) for c in clauses], "clauses", settings, embedder, show_progress)


def _embed_sentences(clauses: list[Clause], titles: dict[str, str], settings: Settings, embedder,
                     show_progress: bool) -> tuple[np.ndarray, list[int]]:
    """The vectors of every clause's sentences (``bot.index.sentences``), each after its document's
    title as clauses are, and how many each clause has."""
    per_clause = [sentence_embedding_texts(c, titles[c.doc_id], settings.sentence_min_chars) for c in clauses]
    texts = [t for sentences in per_clause for t in sentences]
    return _embed_texts(texts, "sentences", settings, embedder, show_progress), [len(x) for x in per_clause]


def _embed_texts(texts: list[str], what: str, settings: Settings, embedder, show_progress: bool) -> np.ndarray:
    """The vectors of ``texts``, from the embedding cache where it has them."""
    cache = _EmbeddingCache(settings.index_dir, embedder.model_name)
    keys = [cache.key(t) for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts) if k not in cache.vectors}.items())
    logger.info("embedding %d of %d %s (%d cached)", len(todo), len(texts), what, len(texts) - len(todo))
    batches = [todo[i : i + settings.embed_batch_size] for i in range(0, len(todo), settings.embed_batch_size)]
    if show_progress:
        batches = track(batches, description=f"Embedding {len(todo)} {what}")
    for batch in batches:
        vecs = embedder.get_text_embedding_batch([t for _, t in batch])
        for (k, _), v in zip(batch, vecs):
            cache.vectors[k] = np.asarray(v, dtype=np.float32)
    if todo:
        cache.save()
    return np.stack([cache.vectors[k] for k in keys])


def clause_vectors(index: LoadedIndex, settings: Settings, embedder) -> np.ndarray:
    """Every clause's vector as the index holds it, in position order, from the embedding cache
    (what ``benchmarks/calibrate.py`` fits the query adapter towards)."""
    titles = {d.id: d.title for d in index.documents.values()}
    return _embed(index.clauses, titles, settings, embedder, show_progress=False)


def build_index(settings: Settings, embedder=None, show_progress: bool = False) -> Path:
    """Parse the corpus, build the BM25 and dense indexes (bm25s + FAISS in the folder, or Milvus) and
    the corpus tables in a new folder, and make it live atomically.

    Returns:
        The path of the new build folder.
    """
    t0 = time.perf_counter()
    embedder = embedder or load_embedder(settings)
    documents = load_catalog(settings.corpus_dir)
    clauses: list[Clause] = []
    for doc in documents:
        clauses.extend(parse_clauses(doc, read_text(settings.corpus_dir, doc), settings.max_clause_chars))
    if not clauses:
        raise ValueError(f"no clauses found in {settings.corpus_dir}")

    builds = settings.index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    # Sortable to the microsecond, so pruning by name keeps the newest builds.
    build_id = datetime.now().strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:8]
    remove_abandoned(builds)
    tmp = builds / f".tmp-{build_id}-{os.getpid()}"
    tmp.mkdir()
    try:
        titles = {d.id: d.title for d in documents}
        vectors = _embed(clauses, titles, settings, embedder, show_progress)
        write_sentences(settings, tmp, *_embed_sentences(clauses, titles, settings, embedder, show_progress))
        tokenizer = ChineseTokenizer()
        tokens = [tokenizer.tokens(index_text(c)) for c in clauses]
        live = manifest_or_empty(current_build(settings.index_dir))
        engine = _write_backend(settings, tmp, clauses, vectors, tokens, live, show_progress)
        write_tables(tmp, clauses, {d.id: d for d in documents}, tokenizer)

        with open(tmp / "clauses.jsonl", "w", encoding="utf-8") as fh:
            for c in clauses:
                fh.write(c.model_dump_json() + "\n")
        write_clauses(tmp, clauses)
        (tmp / "documents.json").write_text(
            json.dumps([d.model_dump() for d in documents], ensure_ascii=False, indent=1), encoding="utf-8"
        )
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = expected_manifest(settings, embedder.model_name, documents) | {
            "files": {p.relative_to(tmp).as_posix(): file_record(p) for p in files},
            "dimension": int(vectors.shape[1]),
            "n_clauses": len(clauses),
            "n_documents": len(documents),
            "documents": {d.id: hashlib.sha256(read_text(settings.corpus_dir, d).encode()).hexdigest()[:16] for d in documents},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": versions(),
        } | engine
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        final = builds / build_id
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_current(settings.index_dir, build_id)
    _publish_backend(settings, manifest)
    remove_old_builds(builds, keep=build_id)
    logger.info("built %d clauses in %.2fs", len(clauses), time.perf_counter() - t0)
    return final


def _write_backend(settings: Settings, folder: Path, clauses: list[Clause], vectors: np.ndarray,
                   tokens: list[list[str]], live: dict, show_progress: bool = False) -> dict:
    """Write both indexes of a new build (``live``: the manifest of the build being replaced, or {});
    returns what the new manifest must record about them."""
    if settings.vector_store == "milvus":
        from bot.index.milvus import write_milvus

        return write_milvus(settings, clauses, vectors, tokens, live, show_progress)
    return write_local(settings, folder, clauses, vectors, tokens)


def _publish_backend(settings: Settings, manifest: dict) -> None:
    """Announce a build that has just gone live to the engine (Milvus: move the alias)."""
    if manifest.get("vector_store") == "milvus":
        from bot.index.milvus import publish_milvus

        publish_milvus(settings, manifest)


def _open_backend(settings: Settings, folder: Path, manifest: dict, clauses: Sequence[Clause],
                  positions: Mapping[str, int]) -> SearchBackend:
    """The backend of a loaded build, as its manifest names it."""
    if manifest.get("vector_store") == "milvus":
        from bot.index.milvus import MilvusBackend

        return MilvusBackend.open(settings, folder, manifest, positions)
    return LocalBackend(folder, clauses, settings)


def load_index(path: Path, verified: dict | None = None, settings: Settings | None = None) -> LoadedIndex:
    """Load one build folder (read-only), verified against its manifest first (``verified``: the
    manifest ``verify_build`` already returned for it, so the files are not hashed twice;
    ``settings``: where to reach Milvus for a Milvus build, default the environment's).

    Raises:
        IndexDamaged: the build does not match its manifest.
    """
    manifest = verified or verify_build(path)
    try:
        clauses = ClauseTable(path)
    except (OSError, ValueError) as exc:
        raise IndexDamaged(f"index {path.name}: the clause columns do not load ({exc}); run `policy-bot index --force`") from exc
    if len(clauses) != manifest.get("n_clauses"):
        raise IndexDamaged(f"index {path.name}: {len(clauses)} clauses, manifest says {manifest.get('n_clauses')}; "
                           "run `policy-bot index --force`")
    documents = {d["id"]: Document.model_validate(d) for d in json.loads((path / "documents.json").read_text(encoding="utf-8"))}
    positions = clauses.positions
    return LoadedIndex(
        path=path,
        manifest=manifest,
        documents=documents,
        clauses=clauses,
        clause_positions=positions,
        backend=_open_backend(settings or get_settings(), path, manifest, clauses, positions),
        postings=Postings.load(path),
        sentences=SentenceIndex(path, clauses, settings or get_settings()),
    )


def ensure_index(settings: Settings, embedder, show_progress: bool = False) -> LoadedIndex:
    """The live index, (re)built first if it is missing, stale or damaged. Without
    ``build_missing_index`` (the API's workers) nothing is built: the live build is served if intact
    (even if stale), else the newest intact one; with none, ``IndexDamaged`` says to run the builder."""
    if not settings.build_missing_index:
        return _load_last_intact(settings)
    fresh = fresh_build(settings, embedder.model_name)
    if fresh is not None:
        try:
            return load_index(*fresh, settings=settings)
        except IndexDamaged as exc:  # e.g. its Milvus collection was dropped
            logger.warning("%s", exc)
    logger.info("index missing, stale or damaged; building")
    build_index(settings, embedder, show_progress=show_progress)
    return load_index(current_build(settings.index_dir), settings=settings)


def ensure_built(settings: Settings, embedder, show_progress: bool = False) -> Path:
    """The build to serve, (re)built first if it is missing, stale or damaged, as ``ensure_index``
    decides, but without loading it (``serve`` checks once; its workers load). A Milvus build is
    loaded, since only loading shows that its collection is still there."""
    if settings.vector_store == "milvus":
        return ensure_index(settings, embedder, show_progress).path
    if not settings.build_missing_index:
        return _last_intact(settings)[0]
    fresh = fresh_build(settings, embedder.model_name)
    if fresh is not None:
        return fresh[0]
    logger.info("index missing, stale or damaged; building")
    return build_index(settings, embedder, show_progress=show_progress)


def _last_intact(settings: Settings) -> tuple[Path, dict]:
    found = last_intact_build(settings.index_dir)
    if found is None:
        raise IndexDamaged(f"no intact index in {settings.index_dir}; run `policy-bot index` (or `policy-bot serve`, which builds)")
    return found


def _load_last_intact(settings: Settings) -> LoadedIndex:
    build, manifest = _last_intact(settings)
    live = current_build(settings.index_dir)
    if live != build:
        logger.warning("the live build %s is missing or damaged; serving %s until `policy-bot index` repairs it",
                       live.name if live else "(none)", build.name)
    return load_index(build, manifest, settings=settings)
