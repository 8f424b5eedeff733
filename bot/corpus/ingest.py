"""Adding documents users actually have (.txt, .md, .docx, .pdf with a text layer, saved .html)
to the corpus: extract the text once, store it as ``corpus/docs/<id>.txt`` (the verbatim source the
clauses quote), and record its metadata in the catalog."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from bot.corpus.catalog import CATALOG_FILE, load_catalog, read_text
from bot.corpus.chunking import parse_clauses
from bot.files import write_atomic
from bot.models import Document
from bot.text import normalize

SUFFIXES = (".txt", ".md", ".docx", ".pdf", ".html", ".htm")


class IngestError(ValueError):
    """The file cannot be turned into text; the message says why and what to do."""


def extract_text(path: Path, max_unzipped_bytes: int = 50_000_000) -> str:
    """Plain text of ``path``, paragraphs on their own lines (a .docx that would unzip to more than
    ``max_unzipped_bytes`` is refused before anything is unzipped)."""
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
        _check_unzipped_size(path, max_unzipped_bytes)
        return _docx_text(path)
    if suffix == ".pdf":
        return _pdf_text(path)
    return _html_text(path)


def _check_unzipped_size(path: Path, limit: int) -> None:
    """Refuse a zip bomb from its directory alone: the sizes it declares bound what zipfile will
    inflate (it stops at the declared size), so nothing is unzipped before this check."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"{path.name} cannot be read as .docx: not a zip archive") from exc
    if total > limit:
        raise IngestError(f"{path.name} would unzip to {total:,} bytes; the limit is {limit:,} (POLICYBOT_MAX_UNZIPPED_BYTES)")


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


_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _slug(path: Path, text: str) -> str:
    ascii_stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:64].rstrip("-")
    return ascii_stem or "doc-" + hashlib.sha1(text.encode()).hexdigest()[:8]


def _text_key(text: str) -> str:
    """The same text whatever its spacing, width or line ends (``normalize``)."""
    return hashlib.sha256(normalize(text).encode()).hexdigest()


def _same_text(corpus_dir: Path, documents: list[Document], text: str) -> Document | None:
    """A catalog document whose text is ``text`` (an upload added again under another id)."""
    key = _text_key(text)
    for doc in documents:
        try:
            if _text_key(read_text(corpus_dir, doc)) == key:
                return doc
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _one_line(exc: ValidationError) -> str:
    """The first problem of a validation error, as ``--option 'value': what is wrong``."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "value"
    option = {"issued": "date", "doc_number": "doc-number"}.get(field, field)
    return f"--{option} {first.get('input')!r}: {first['msg']}"


def add_document(
    corpus_dir: Path,
    path: Path,
    *,
    doc_id: str | None = None,
    title: str | None = None,
    doc_number: str = "",
    level: str = "未核实",
    issued: str | None = None,
    issuer: str = "",
    status: str = "未核实",
    source: str | None = None,
    max_bytes: int = 5_000_000,
    max_unzipped_bytes: int = 50_000_000,
) -> Document:
    """Extract ``path``, store its text in ``corpus_dir/docs/`` and add it to the catalog.

    Raises:
        IngestError: unreadable, oversized or empty file, a text that yields no clause, a bad date,
            an unreadable catalog, an id already in the catalog or a text already in it under another
            id, a bad id, level or status.
    """
    if doc_id is not None and not _ID.fullmatch(doc_id):
        raise IngestError(f"--id {doc_id[:80]!r}: use 1 to 64 characters a-z, 0-9 and -, starting with a letter or digit")
    if not path.is_file():
        raise IngestError(f"no such file: {path}")
    if path.stat().st_size > max_bytes:
        raise IngestError(f"{path.name} is {path.stat().st_size:,} bytes; the limit is {max_bytes:,} (POLICYBOT_MAX_DOCUMENT_BYTES)")
    if issued is not None:
        try:
            date.fromisoformat(issued)
        except ValueError as exc:
            raise IngestError(f"--date {issued!r} is not a date in the form YYYY-MM-DD") from exc
    try:
        raw = extract_text(path, max_unzipped_bytes)
    except IngestError:
        raise
    except Exception as exc:  # a damaged .docx/.pdf/.html: say so in one line instead of a traceback
        raise IngestError(f"{path.name} cannot be read as {path.suffix}: {type(exc).__name__}") from exc
    if "\x00" in raw or not raw.strip():
        raise IngestError(f"{path.name} has no usable text (empty, whitespace only or binary)")
    text = raw.strip() + "\n"
    try:
        documents = load_catalog(corpus_dir)
    except (OSError, ValueError) as exc:
        raise IngestError(f"the catalog in {corpus_dir} cannot be read: {exc}") from exc
    first_line = next((ln.strip().lstrip("#").strip() for ln in text.splitlines() if ln.strip()), path.stem)
    try:
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
            added_by_user=True,
        )
    except ValidationError as exc:
        raise IngestError(_one_line(exc)) from exc
    if any(d.id == doc.id for d in documents):
        raise IngestError(f"a document with id {doc.id!r} is already in the catalog; pass another --id")
    twin = _same_text(corpus_dir, documents, text)
    if twin is not None:
        raise IngestError(f"{path.name} has the same text as {twin.id!r} (《{twin.title}》), already in the catalog")
    if not parse_clauses(doc, text):
        raise IngestError(f"{path.name} yields no clause (no sentence or numbered item was found); check the file")
    target = corpus_dir / doc.file
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text)
    catalog = {"documents": [d.model_dump(exclude_defaults=False) for d in [*documents, doc]]}
    write_atomic(corpus_dir / CATALOG_FILE, json.dumps(catalog, ensure_ascii=False, indent=2) + "\n")
    return doc
