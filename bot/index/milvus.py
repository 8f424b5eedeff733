"""Milvus as the engine for both indexes (``POLICYBOT_VECTOR_STORE=milvus``).

One collection holds each clause's vector, its BM25 terms (Milvus's BM25 function builds the
sparse vector inside Milvus) and its document id, so both searches run in Milvus with the document
filter pushed down. ``POLICYBOT_MILVUS_URI`` chooses the engine: a local ``.db`` path runs Milvus Lite
embedded in this process (laptop, CI; one process per file), ``http://host:19530`` a Milvus
standalone or cluster shared by every API replica.

pymilvus is used directly rather than llama-index's ``MilvusVectorStore``: the bot feeds Milvus's
BM25 its own jieba tokens (policy dictionary, search mode, the same tokens as the bm25s default,
hence the same scores) and reads each search's own ranks and scores for refusal, neither of which
that store exposes.

Builds are incremental and never visible half-done: two collections ``<name>_a`` and ``<name>_b``
take turns; a build brings the one not in use up to date (upserting new and changed clauses,
deleting removed ones), the new build folder names it in its manifest, and only after the build is
live does the alias ``<name>`` move to it. Queries of the old build keep the old collection.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from rich.progress import track

from bot.config import Settings
from bot.index.backends import IndexDamaged, Ranked
from bot.models import Clause

try:
    from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException
except ImportError as exc:  # the optional extra is missing
    raise ImportError('POLICYBOT_VECTOR_STORE=milvus needs the milvus extra: pip install -e ".[milvus]"') from exc

logger = logging.getLogger(__name__)
# pymilvus logs every failed call with a traceback at ERROR, and Milvus Lite's in-process gRPC server
# each call it does not implement (pymilvus then falls back); the bot reports real failures itself.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
logging.getLogger("grpc._server").setLevel(logging.CRITICAL)

_FIELDS = {"id", "doc_id", "fingerprint", "terms", "sparse", "vector"}
# bm25s's defaults (Lucene's BM25), so that both backends score alike.
BM25_K1, BM25_B = 1.5, 0.75
_BATCH = 512
_CLIENTS: dict[str, MilvusClient] = {}


class MilvusUnavailable(ConnectionError):
    """Milvus cannot be reached or opened; the message says which URI and what to do."""


def milvus_uri(settings: Settings) -> str:
    return settings.milvus_uri or str(settings.index_dir / "milvus.db")


def _client(settings: Settings) -> MilvusClient:
    """One client per URI and process (Milvus Lite allows one process per file)."""
    uri = milvus_uri(settings)
    if uri not in _CLIENTS:
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
        if "://" not in uri:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            _CLIENTS[uri] = MilvusClient(uri=uri, token=token)
        except MilvusException as exc:
            hint = (" (a Milvus Lite file is opened by one process at a time: stop the other process, or use a "
                    "Milvus server URI for several workers)") if "://" not in uri else ""
            raise MilvusUnavailable(f"cannot open Milvus at {uri}: {exc.message}{hint}") from exc
    return _CLIENTS[uri]


def term(token: str) -> str:
    """A token as one ASCII word: Milvus's analyzers cannot take the bot's jieba dictionary, so the
    bot segments and Milvus's standard tokenizer only splits on spaces between these stable hashes."""
    return "t" + hashlib.blake2b(token.encode("utf-8"), digest_size=8).hexdigest()


def _terms(tokens: list[str]) -> str:
    return " ".join(term(t) for t in tokens)


def _filter(docs: frozenset[str] | None) -> str:
    return "" if docs is None else f"doc_id in {json.dumps(sorted(docs), ensure_ascii=False)}"


def _create(client: MilvusClient, name: str, dim: int, settings: Settings) -> None:
    schema = client.create_schema(auto_id=False, description="policy-bot clauses")
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=256)
    schema.add_field("fingerprint", DataType.VARCHAR, max_length=64)
    schema.add_field("terms", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params={"tokenizer": "standard"})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                 output_field_names=["sparse"]))
    params = client.prepare_index_params()
    params.add_index("vector", index_type=settings.milvus_index_type, metric_type="IP")
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    client.create_collection(name, schema=schema, index_params=params)


def _usable(client: MilvusClient, name: str, dim: int) -> bool:
    if not client.has_collection(name):
        return False
    fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
    return set(fields) == _FIELDS and int(fields["vector"]["params"].get("dim", 0)) == dim


def write_milvus(settings: Settings, clauses: list[Clause], vectors: np.ndarray, tokens: list[list[str]],
                 live: dict, show_progress: bool = False) -> dict:
    """Bring the collection the live build (manifest ``live``) does not use up to the new build's
    clauses; returns the manifest's record of it."""
    client = _client(settings)
    base = settings.milvus_collection
    live_slot = (live.get("milvus") or {}).get("collection")
    target = f"{base}_b" if live_slot == f"{base}_a" else f"{base}_a"
    dim = int(vectors.shape[1])
    if not _usable(client, target, dim):
        if client.has_collection(target):
            client.drop_collection(target)
        _create(client, target, dim, settings)
    client.load_collection(target)

    rows = {}
    for c, v, t in zip(clauses, vectors, tokens):
        terms = _terms(t)
        fingerprint = hashlib.sha256(v.tobytes() + c.doc_id.encode() + terms.encode()).hexdigest()[:32]
        rows[c.id] = {"id": c.id, "doc_id": c.doc_id, "fingerprint": fingerprint, "terms": terms, "vector": v.tolist()}
    doc_ids = sorted({c.doc_id for c in clauses})
    existing = _fingerprints(client, target, doc_ids)
    changed = [r for i, r in rows.items() if existing.get(i) != r["fingerprint"]]
    removed = [i for i in existing if i not in rows]
    batches = [changed[i : i + _BATCH] for i in range(0, len(changed), _BATCH)]
    if show_progress and batches:
        batches = track(batches, description=f"Milvus: writing {len(changed)} clauses")
    for batch in batches:
        client.upsert(target, batch)
    for i in range(0, len(removed), _BATCH):
        client.delete(target, ids=removed[i : i + _BATCH])
    removed_docs = _delete_other_documents(client, target, doc_ids)
    client.flush(target)
    count = _count(client, target)
    if count != len(rows):
        raise MilvusUnavailable(f"Milvus collection {target} holds {count} clauses after the build, expected {len(rows)}")
    deleted = len(removed) + removed_docs
    logger.info("milvus %s: %d upserted, %d deleted, %d unchanged", target, len(changed), deleted, len(rows) - len(changed))
    return {"milvus": {"collection": target, "alias": base, "upserted": len(changed), "deleted": deleted}}


# Reads go document by document: a query returns at most this many rows, and Milvus Lite's
# query_iterator sees nothing (it needs a server timestamp Lite does not give).
_QUERY_LIMIT = 16384


def _fingerprints(client: MilvusClient, name: str, docs: list[str]) -> dict[str, str]:
    """Clause id -> fingerprint of what ``name`` holds for ``docs``."""
    out: dict[str, str] = {}
    for doc in docs:
        rows = client.query(name, filter=_filter(frozenset({doc})), output_fields=["fingerprint"], limit=_QUERY_LIMIT)
        if len(rows) == _QUERY_LIMIT:
            raise MilvusUnavailable(f"document {doc} has {_QUERY_LIMIT} or more clauses in {name}; split the document")
        out.update((r["id"], r["fingerprint"]) for r in rows)
    return out


def _delete_other_documents(client: MilvusClient, name: str, docs: list[str]) -> int:
    """Delete the clauses of documents no longer in the corpus; returns how many."""
    expr, deleted = f"not ({_filter(frozenset(docs))})", 0
    while ids := [r["id"] for r in client.query(name, filter=expr, output_fields=["id"], limit=_QUERY_LIMIT)]:
        client.delete(name, ids=ids)
        deleted += len(ids)
    return deleted


def publish_milvus(settings: Settings, manifest: dict) -> None:
    """Point the alias at the live build's collection (for operators and other readers)."""
    client, record = _client(settings), manifest["milvus"]
    if record["alias"] in client.list_aliases(record["collection"]).get("aliases", []):
        return
    try:
        client.alter_alias(record["collection"], record["alias"])
    except MilvusException:
        client.create_alias(record["collection"], record["alias"])


def _count(client: MilvusClient, name: str) -> int:
    return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


class MilvusBackend:
    """Both searches of one build, run in its Milvus collection."""

    def __init__(self, client: MilvusClient, collection: str, positions: dict[str, int], ef: int = 128) -> None:
        self._client, self._collection, self._positions, self._ef = client, collection, positions, ef

    @classmethod
    def open(cls, settings: Settings, folder: Path, manifest: dict, positions: dict[str, int]) -> MilvusBackend:
        """The backend of a loaded build (``positions``: clause id -> position in the build's clauses)."""
        client = _client(settings)
        collection = manifest["milvus"]["collection"]
        if not client.has_collection(collection):
            raise IndexDamaged(f"index {folder.name}: Milvus collection {collection} is missing at {milvus_uri(settings)}; "
                               "run `policy-bot index --force`")
        client.load_collection(collection)
        backend = cls(client, collection, positions, settings.hnsw_ef)
        if (size := backend.size()) != len(positions):
            raise IndexDamaged(f"index {folder.name}: Milvus collection {collection} holds {size} clauses, "
                               f"the build {len(positions)}; run `policy-bot index --force`")
        return backend

    def _search(self, data: list, field: str, metric: str, k: int, docs: frozenset[str] | None) -> Ranked:
        params = {"ef": max(self._ef, k)} if metric == "IP" else {}  # read by HNSW only
        try:
            result = self._client.search(self._collection, data=data, anns_field=field, limit=k, filter=_filter(docs),
                                         output_fields=[], search_params={"metric_type": metric, "params": params})
        except MilvusException as exc:
            raise MilvusUnavailable(f"Milvus search in {self._collection} failed: {exc.message}") from exc
        # Milvus Lite reports BM25 as a negative distance, a Milvus server as a positive score; both
        # keep the (k1 + 1) factor that Lucene and bm25s dropped. Divided out, the scores are bm25s's,
        # the scale the refusal model was calibrated on.
        scale = (lambda d: abs(d) / (BM25_K1 + 1)) if metric == "BM25" else (lambda d: d)
        return [(self._positions[h["id"]], scale(float(h["distance"]))) for h in result[0] if h["id"] in self._positions]

    def lexical(self, tokens: list[str], k: int, docs: frozenset[str] | None = None) -> Ranked:
        return self._search([_terms(tokens)], "sparse", "BM25", k, docs) if tokens else []

    def dense(self, vector: list[float], k: int, docs: frozenset[str] | None = None) -> Ranked:
        return self._search([list(vector)], "vector", "IP", k, docs)

    def size(self) -> int:
        return _count(self._client, self._collection)
