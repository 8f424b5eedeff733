"""Corpus tables built with the index and saved in it, so that no question scans the corpus and no
server start re-reads it: character-bigram postings and character counts over each clause's
matching text (for the substring document frequencies of ``bot.evidence``), and the corpus's word
vocabulary (for the thesaurus).

Hand-written because the frequencies are of substrings ("灾害信息员" in any clause), which no
token-level index (bm25s, Milvus) answers; arrays with binary search keep them compact and fast
to load at a province's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.models import Clause, Document
from bot.text import normalize
from bot.tokenizer import ChineseTokenizer

POSTINGS_FILE = "postings.npz"
VOCABULARY_FILE = "vocabulary.txt"


def matching_text(clause: Clause, doc: Document) -> str:
    """What a clause can be matched on: its document's title and date, section, header, text."""
    return normalize(" ".join((doc.title, doc.issued, clause.section, clause.context, clause.text)))


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _bigrams(codes: np.ndarray) -> np.ndarray:
    """Each character bigram as one integer (code points are below 2**21)."""
    return (codes[:-1] << np.uint64(21)) | codes[1:]


def write_tables(folder: Path, clauses: list[Clause], documents: dict[str, Document], tokenizer: ChineseTokenizer) -> None:
    """Write the postings and the vocabulary of ``clauses`` into the build ``folder``."""
    grams, owners, chars = [], [], []
    for i, c in enumerate(clauses):
        codes = _codes(matching_text(c, documents[c.doc_id]))
        distinct = np.unique(_bigrams(codes))
        grams.append(distinct)
        owners.append(np.full(len(distinct), i, dtype=np.int32))
        chars.append(np.unique(codes))
    grams_all, owners_all = np.concatenate(grams), np.concatenate(owners)
    order = np.argsort(grams_all, kind="stable")  # stable: each gram's clause ids stay sorted
    keys, starts = np.unique(grams_all[order], return_index=True)
    char_keys, char_df = np.unique(np.concatenate(chars), return_counts=True)
    with open(folder / POSTINGS_FILE, "wb") as fh:
        np.savez(fh, grams=keys, offsets=np.append(starts, len(order)).astype(np.int64), ids=owners_all[order],
                 chars=char_keys, char_df=char_df.astype(np.int32))
    words = sorted({w for c in clauses for w in tokenizer.words(c.text)})
    (folder / VOCABULARY_FILE).write_text("\n".join(words) + "\n", encoding="utf-8")


def read_vocabulary(folder: Path) -> set[str]:
    return set((folder / VOCABULARY_FILE).read_text(encoding="utf-8").split())


class Postings:
    """Character bigram -> sorted ids of the clauses whose matching text holds it; character -> count."""

    def __init__(self, folder: Path) -> None:
        with np.load(folder / POSTINGS_FILE) as data:
            self._grams, self._offsets, self._ids = data["grams"], data["offsets"], data["ids"]
            self._chars, self._char_df = data["chars"], data["char_df"]

    @staticmethod
    def _find(keys: np.ndarray, key: np.uint64) -> int:
        i = int(np.searchsorted(keys, key))
        return i if i < len(keys) and keys[i] == key else -1

    def ids(self, gram: str) -> np.ndarray:
        """Sorted ids of the clauses containing the two-character ``gram``."""
        i = self._find(self._grams, _bigrams(_codes(gram))[0])
        return self._ids[self._offsets[i] : self._offsets[i + 1]] if i >= 0 else self._ids[:0]

    def char_df(self, ch: str) -> int:
        """How many clauses contain the character ``ch``."""
        i = self._find(self._chars, _codes(ch)[0])
        return int(self._char_df[i]) if i >= 0 else 0
