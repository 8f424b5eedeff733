"""The clauses of a build stored column-wise and opened memory-mapped (issue 24).

One Python object per clause costs kilobytes (a pydantic model, its strings, a dict entry, a
llama-index node ...): at a province's size that, not the index, filled the memory, and every
worker held its own copy. Here the string fields of every clause are one UTF-8 buffer with an
offsets array, the spans an integer array, all ``.npy`` files opened with ``mmap_mode="r"``: the
workers of one machine share their pages through the page cache, and a ``Clause`` is made only for
the few clauses a question looks at (``ClauseTable[i]``).

``clauses.jsonl`` stays the build's readable record (export, report); this is what serving reads.
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from bot.models import Clause

CLAUSES_DIR = "clauses"
# String fields, in buffer order (headings as a JSON list); start and end are in ``spans.npy``.
_FIELDS = ("id", "doc_id", "kind", "headings", "section", "ref", "text", "context", "refers")
_COLUMN = {name: j for j, name in enumerate(_FIELDS)}
_RECENT = 4096  # clauses kept made, so a question's candidates are made once


def write_clauses(folder: Path, clauses: Sequence[Clause]) -> None:
    """Write ``clauses`` column-wise into ``folder/clauses/``."""
    out = folder / CLAUSES_DIR
    out.mkdir()
    parts: list[bytes] = []
    for c in clauses:
        for name in _FIELDS:
            value = getattr(c, name)
            parts.append((json.dumps(value, ensure_ascii=False) if name == "headings" else value).encode("utf-8"))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    np.save(out / "buffer.npy", np.frombuffer(b"".join(parts), dtype=np.uint8))
    np.save(out / "offsets.npy", offsets)
    np.save(out / "spans.npy", np.array([(c.start, c.end) for c in clauses], dtype=np.int64).reshape(-1, 2))
    np.save(out / "by_id.npy", np.array(sorted(range(len(clauses)), key=lambda i: clauses[i].id), dtype=np.int32))


class ClauseTable(Sequence[Clause]):
    """The clauses of a build as a read-only sequence; ``table[i]`` makes the ``Clause`` at position
    ``i`` from the memory-mapped columns (the last few thousand made are kept)."""

    def __init__(self, folder: Path) -> None:
        d = folder / CLAUSES_DIR
        self._buffer, self._offsets, self._spans, self._by_id = (
            np.load(d / f"{name}.npy", mmap_mode="r") for name in ("buffer", "offsets", "spans", "by_id"))
        self._n = len(self._spans)
        if len(self._offsets) != self._n * len(_FIELDS) + 1 or len(self._by_id) != self._n:
            raise ValueError(f"{d}: the clause columns disagree in length")
        self._make = functools.lru_cache(maxsize=_RECENT)(self._clause)
        self.positions = ClausePositions(self)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._make(i)

    def __iter__(self) -> Iterator[Clause]:
        return (self._clause(i) for i in range(self._n))  # a pass over all of them is not kept

    def field(self, i: int, name: str) -> str:
        """One string field of the clause at ``i``, without making the clause."""
        k = i * len(_FIELDS) + _COLUMN[name]
        a, b = self._offsets[k : k + 2]  # one read of the mapped offsets, not two
        return self._buffer[a:b].tobytes().decode("utf-8")

    def column(self, name: str) -> list[str]:
        """One string field of every clause, in position order."""
        return [self.field(i, name) for i in range(self._n)]

    def of_document(self, doc_id: str) -> list[Clause]:
        """The clauses of one document, in position order."""
        return [self[int(i)] for i in self._by_document.get(doc_id, ())]

    @functools.cached_property
    def _by_document(self) -> dict[str, np.ndarray]:
        ids = np.array(self.column("doc_id"))
        order = np.argsort(ids, kind="stable")
        keys, starts = np.unique(ids[order], return_index=True)
        bounds = np.append(starts, len(order))
        return {str(k): order[bounds[j] : bounds[j + 1]] for j, k in enumerate(keys)}

    def _clause(self, i: int) -> Clause:
        base = i * len(_FIELDS)
        a, b = int(self._offsets[base]), int(self._offsets[base + len(_FIELDS)])
        row, cuts = self._buffer[a:b].tobytes(), self._offsets[base : base + len(_FIELDS) + 1] - a
        values = {name: row[cuts[j] : cuts[j + 1]].decode("utf-8") for j, name in enumerate(_FIELDS)}
        values["headings"] = json.loads(values["headings"])
        start, end = self._spans[i]
        # Validated when the build was written; made here without validating again.
        return Clause.model_construct(**values, start=int(start), end=int(end))


class ClausePositions(Mapping[str, int]):
    """Clause id -> position, by binary search over the ids in sorted order (no dict per clause)."""

    def __init__(self, table: ClauseTable) -> None:
        self._table, self._by_id = table, table._by_id
        # A question's candidates are looked up again and again (their texts, their evidence): the
        # last few thousand positions are kept, as the table keeps its clauses.
        self._find = functools.lru_cache(maxsize=_RECENT)(self._search)

    def _id(self, j: int) -> str:
        return self._table.field(int(self._by_id[j]), "id")

    def __getitem__(self, clause_id: str) -> int:
        if isinstance(clause_id, str) and (i := self._find(clause_id)) is not None:
            return i
        raise KeyError(clause_id)

    def _search(self, clause_id: str) -> int | None:
        j = bisect.bisect_left(range(len(self._by_id)), clause_id, key=self._id)
        return int(self._by_id[j]) if j < len(self._by_id) and self._id(j) == clause_id else None

    def __iter__(self) -> Iterator[str]:
        return (self._table.field(i, "id") for i in range(len(self._table)))

    def __len__(self) -> int:
        return len(self._table)


def positions_of(clauses: Sequence[Clause]) -> Mapping[str, int]:
    """Clause id -> position in ``clauses``: the table's own index, or a dict for a plain list."""
    return clauses.positions if isinstance(clauses, ClauseTable) else {c.id: i for i, c in enumerate(clauses)}


def column(clauses: Sequence[Clause], name: str) -> list[str]:
    """One string field of every clause, without making a table's clauses."""
    return clauses.column(name) if isinstance(clauses, ClauseTable) else [getattr(c, name) for c in clauses]


def of_document(clauses: Sequence[Clause], doc_id: str) -> list[Clause]:
    """The clauses of one document, in position order, without making a table's other clauses."""
    return clauses.of_document(doc_id) if isinstance(clauses, ClauseTable) else [c for c in clauses if c.doc_id == doc_id]
