"""Adding documents users actually have (.txt, .md, .docx, .pdf with a text layer, saved .html)
to the corpus: extract the text once, store it as ``corpus/docs/<id>.txt`` (the verbatim source the
clauses quote), and record its metadata in the catalog."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import date
from pathlib import Path

from bot.corpus import CATALOG_FILE, load_catalog
from bot.models import Document

SUFFIXES = (".txt", ".md", ".docx", ".pdf", ".html", ".htm")


class IngestError(ValueError):
    """The file cannot be turned into text; the message says why and what to do."""


def extract_text(path: Path) -> str:
    """Plain text of ``path``, paragraphs on their own lines."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise IngestError(f"unsupported file type {suffix!r}; supported: {', '.join(SUFFIXES)}")
    if suffix in (".txt", ".md"):
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
        raise IngestError(f"{path.name} is neither UTF-8 nor GB18030 text")
    if suffix == ".docx":
        return _docx_text(path)
    if suffix == ".pdf":
        return _pdf_text(path)
    return _html_text(path)


def _docx_text(path: Path) -> str:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    lines = []
    # Body order matters: tables sit between paragraphs (the 专栏 boxes, indicator tables).
    for child in document.element.body.iterchildren():
        if child.tag.endswith("}p"):
            lines.append(Paragraph(child, document).text)
        elif child.tag.endswith("}tbl"):
            for row in Table(child, document).rows:
                cells = [c.text.strip() for c in row.cells]
                lines.append(" | ".join(cells) + " |")
    return "\n".join(line for line in lines if line.strip())


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        text = "\n".join((page.extract_text() or "") for page in reader.pages)
    except PdfReadError as exc:
        raise IngestError(f"{path.name} is not a readable PDF: {exc}") from exc
    if len(re.sub(r"\s", "", text)) < 20:
        raise IngestError(f"{path.name} has no text layer (a scanned PDF?); run OCR on it first, then add the text")
    return text


def _html_text(path: Path) -> str:
    import trafilatura

    text = trafilatura.extract(path.read_text(encoding="utf-8", errors="replace"), include_tables=True, favor_precision=True)
    if not text or not text.strip():
        raise IngestError(f"no main text found in {path.name}")
    return text


def _slug(path: Path, text: str) -> str:
    ascii_stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
    return ascii_stem or "doc-" + hashlib.sha1(text.encode()).hexdigest()[:8]


def add_document(
    corpus_dir: Path,
    path: Path,
    *,
    doc_id: str | None = None,
    title: str | None = None,
    doc_number: str = "",
    level: str = "市",
    issued: str | None = None,
    issuer: str = "",
    status: str = "现行有效",
    source: str | None = None,
) -> Document:
    """Extract ``path``, store its text in ``corpus_dir/docs/`` and add it to the catalog.

    Raises:
        IngestError: unreadable file, no text, or an id already in the catalog.
    """
    if not path.is_file():
        raise IngestError(f"no such file: {path}")
    text = extract_text(path).strip() + "\n"
    documents = load_catalog(corpus_dir)
    first_line = next((ln.strip().lstrip("#").strip() for ln in text.splitlines() if ln.strip()), path.stem)
    doc = Document(
        id=doc_id or _slug(path, text),
        title=title or first_line[:80],
        doc_number=doc_number,
        issuer=issuer or "未注明",
        issued=issued or "未注明",
        level=level,
        status=status,
        source=source or f"用户添加：{path.name}（{date.today().isoformat()}）",
        file=f"docs/{doc_id or _slug(path, text)}.txt",
    )
    if any(d.id == doc.id for d in documents):
        raise IngestError(f"a document with id {doc.id!r} is already in the catalog; pass another --id")
    target = corpus_dir / doc.file
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(target, text)
    catalog = {"documents": [d.model_dump(exclude_defaults=False) for d in [*documents, doc]]}
    _write_atomic(corpus_dir / CATALOG_FILE, json.dumps(catalog, ensure_ascii=False, indent=2) + "\n")
    return doc


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
