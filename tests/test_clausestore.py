"""Memory proportional to the data (issue 24): a loaded build maps its files instead of copying
them, and clauses are made from columns only when asked for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.index.clausestore import ClauseTable, of_document, write_clauses
from bot.models import Clause


def _mapped_files() -> set[str]:
    """Paths of the files mapped into this process (/proc/self/maps, Linux)."""
    return {line.split(maxsplit=5)[5].strip() for line in Path("/proc/self/maps").read_text().splitlines()
            if len(line.split(maxsplit=5)) == 6}


def test_a_loaded_index_maps_its_files_instead_of_copying_them(bot):
    build = bot.index.path
    mapped = _mapped_files()
    for name in ("dense.faiss", "clauses/buffer.npy", "clauses/offsets.npy", "postings/ids.npy", "postings/grams.npy"):
        assert str(build / name) in mapped, name
    assert any(path.startswith(str(build / "bm25") + "/") for path in mapped)  # bm25s's score matrix


def test_the_clause_table_holds_arrays_not_clause_objects(bot):
    table = bot.index.clauses
    assert isinstance(table, ClauseTable)
    for array in (table._buffer, table._offsets, table._spans, table._by_id):
        assert isinstance(array, np.memmap)


def test_every_clause_reads_back_as_it_was_written(bot):
    with open(bot.index.path / "clauses.jsonl", encoding="utf-8") as fh:
        written = [Clause.model_validate_json(line) for line in fh]
    table = bot.index.clauses
    assert len(table) == len(written)
    assert [c.model_dump() for c in table] == [c.model_dump() for c in written]
    assert table[-1] == written[-1] and table[1:3] == written[1:3]
    with pytest.raises(IndexError):
        table[len(written)]


def test_clause_ids_are_found_by_position_without_a_dict(bot):
    table, positions = bot.index.clauses, bot.index.clause_positions
    for i in (0, len(table) // 2, len(table) - 1):
        assert positions[table[i].id] == i
    assert "xc-plan:no-such-clause" not in positions and positions.get(42) is None
    assert list(positions) == [c.id for c in table]


def test_a_documents_clauses_are_the_same_from_the_table_and_from_a_list(bot):
    table = bot.index.clauses
    every = list(table)
    for doc in ("xc-plan", "urban-rc-law", "no-such-doc"):
        assert of_document(table, doc) == of_document(every, doc) == [c for c in every if c.doc_id == doc]


def test_text_outside_the_basic_plane_and_empty_fields_survive(tmp_path):
    clauses = [Clause(id="d:1", doc_id="d", kind="article", headings=["第一章 总则", "𠀋"], section="", ref="第一条", start=0, end=3,
                      text="𠀋𠀌𠀍", context=""),
               Clause(id="d:0", doc_id="d", kind="paragraph", headings=[], section="一、", ref="", start=3, end=4, text="a",
                      context="表头")]
    write_clauses(tmp_path, clauses)
    table = ClauseTable(tmp_path)
    assert list(table) == clauses
    assert table.positions["d:0"] == 1 and table.positions["d:1"] == 0
    assert json.loads(json.dumps(table[0].headings)) == ["第一章 总则", "𠀋"]
