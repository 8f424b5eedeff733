"""Corpus tables built with the index and saved in it, so that no question scans the corpus and no
server start re-reads it: character-bigram postings and character counts over each clause's
matching text (for the substring document frequencies of ``bot.answer.evidence``), and the corpus's word
vocabulary with each word's document frequency (for the thesaurus and the IDF weights: a question's
words are mostly corpus words, looked up instead of counted).

Hand-written because the frequencies are of substrings ("灾害信息员" in any clause), which no
token-level index (bm25s, Milvus) answers; arrays with binary search keep them compact and fast
to load at a province's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.index.tokenizer import ChineseTokenizer
from bot.models import Clause, Document
from bot.text import normalize

POSTINGS_DIR = "postings"  # one .npy per table, opened memory-mapped
VOCABULARY_FILE = "vocabulary.tsv"

# Beyond this many candidate clauses, a word's frequency is estimated from an even sample of them
# (exact at a city's size; at a province's, the IDF's logarithm hides the sampling error).
_VERIFY_AT_MOST = 1000


def matching_text(clause: Clause, doc: Document) -> str:
    """What a clause can be matched on: its document's title and date, section, header, the provisions it refers to, text."""
    return normalize(" ".join((doc.title, doc.issued, clause.section, clause.context, clause.refers, clause.text)))


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _bigrams(codes: np.ndarray) -> np.ndarray:
    """Each character bigram as one integer (code points are below 2**21)."""
    return (codes[:-1] << np.uint64(21)) | codes[1:]


def write_tables(folder: Path, clauses: list[Clause], documents: dict[str, Document], tokenizer: ChineseTokenizer) -> None:
    """Write the postings and the vocabulary (with document frequencies) of ``clauses`` into ``folder``."""
    grams, owners, chars, haystacks = [], [], [], []
    for i, c in enumerate(clauses):
        haystacks.append(matching_text(c, documents[c.doc_id]))
        codes = _codes(haystacks[-1])
        distinct = np.unique(_bigrams(codes))
        grams.append(distinct)
        owners.append(np.full(len(distinct), i, dtype=np.int32))
        chars.append(np.unique(codes))
    grams_all, owners_all = np.concatenate(grams), np.concatenate(owners)
    order = np.argsort(grams_all, kind="stable")  # stable: each gram's clause ids stay sorted
    keys, starts = np.unique(grams_all[order], return_index=True)
    char_keys, char_df = np.unique(np.concatenate(chars), return_counts=True)
    tables = {"grams": keys, "offsets": np.append(starts, len(order)).astype(np.int64), "ids": owners_all[order],
              "chars": char_keys, "char_df": char_df.astype(np.int32)}
    postings = Postings(tables, word_df={})
    words = sorted({w for c in clauses for w in tokenizer.words(c.text)})
    (folder / POSTINGS_DIR).mkdir()
    for name, table in tables.items():
        np.save(folder / POSTINGS_DIR / f"{name}.npy", table)
    (folder / VOCABULARY_FILE).write_text("".join(f"{w}\t{postings.count(w, haystacks)}\n" for w in words), encoding="utf-8")


class Postings:
    """Character bigram -> sorted ids of the clauses whose matching text holds it; character -> count;
    corpus word -> how many clauses hold it."""

    def __init__(self, tables: dict[str, np.ndarray], word_df: dict[str, int]) -> None:
        self._grams, self._offsets, self._ids = tables["grams"], tables["offsets"], tables["ids"]
        self._chars, self._char_df = tables["chars"], tables["char_df"]
        self.word_df = word_df

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """The tables ``write_tables`` saved in the build ``folder``, memory-mapped (shared by the
        workers of a machine, read only where a question's words lead)."""
        tables = {p.stem: np.load(p, mmap_mode="r") for p in (folder / POSTINGS_DIR).glob("*.npy")}
        lines = (folder / VOCABULARY_FILE).read_text(encoding="utf-8").splitlines()
        return cls(tables, {w: int(n) for w, n in (line.rsplit("\t", 1) for line in lines)})

    def count(self, word: str, haystacks: list[str]) -> int:
        """How many of ``haystacks`` (every clause's matching text) contain ``word``. Only the clauses
        holding all of its character bigrams are checked, so the cost follows how common the word
        is, not the size of the corpus."""
        if len(word) < 2:
            return self.char_df(word) if word else len(haystacks)
        lists = sorted((self.ids(word[i : i + 2]) for i in range(len(word) - 1)), key=len)
        candidates = lists[0]
        for other in lists[1:]:
            if not len(candidates):
                break
            candidates = np.intersect1d(candidates, other, assume_unique=True)
        if len(word) == 2 or not len(candidates):
            return len(candidates)
        sample = candidates if len(candidates) <= _VERIFY_AT_MOST else candidates[np.linspace(0, len(candidates) - 1, _VERIFY_AT_MOST).astype(int)]
        found = sum(word in haystacks[i] for i in sample)
        return found if len(sample) == len(candidates) else round(found * len(candidates) / len(sample))

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
