"""The document catalog: which documents the bot knows, their metadata and their text."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel

from bot.models import Document

CATALOG_FILE = "catalog.json"


class Catalog(BaseModel):
    documents: list[Document]


def load_catalog(corpus_dir: Path) -> list[Document]:
    """Read and validate ``corpus_dir/catalog.json``; raises ``FileNotFoundError``/``ValueError``."""
    path = corpus_dir / CATALOG_FILE
    if not path.exists():
        raise FileNotFoundError(f"no catalog at {path}")
    catalog = Catalog.model_validate(json.loads(path.read_text(encoding="utf-8")))
    ids = [d.id for d in catalog.documents]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate document ids in {path}")
    return catalog.documents


def read_text(corpus_dir: Path, doc: Document) -> str:
    """The document's source text exactly as stored (clause offsets index into this string)."""
    return (corpus_dir / doc.file).read_text(encoding="utf-8")


def corpus_hash(corpus_dir: Path, documents: list[Document]) -> str:
    """A digest of the catalog metadata and every document's text, for index staleness checks."""
    h = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        h.update(doc.model_dump_json().encode())
        h.update(hashlib.sha256(read_text(corpus_dir, doc).encode()).digest())
    return h.hexdigest()
