"""Chinese segmentation for retrieval and matching: jieba with a policy-term dictionary,
stopwords and colloquial-to-official synonyms, all shipped in ``bot/data``."""

from __future__ import annotations

import logging
import re
from functools import cached_property
from importlib import resources

import jieba
import jieba.posseg

from bot.text import normalize

jieba.setLogLevel(logging.WARNING)

_WORD = re.compile(r"[\w‰%]", re.UNICODE)
# Part-of-speech classes (jieba/ICTCLAS) of the words that carry a told case: nouns, verbs, idioms,
# abbreviations and the user dictionary's policy terms (x).
_CONTENT_TAGS = frozenset("nvljx")


def _data_lines(name: str) -> list[str]:
    text = resources.files("bot").joinpath("data", name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


Group = tuple[str, ...]  # the ways a group is named ("居委会", "居民委员会")


def contrast_pairs() -> list[tuple[Group, Group, Group]]:
    """(asked group, the other group, words that speak of both) both ways round, from
    ``bot/data/contrasts.txt``."""
    out = []
    for line in _data_lines("contrasts.txt"):
        a, b, *both = (tuple(normalize(w) for w in column.split()) for column in line.split("\t"))
        shared = tuple(w for column in both for w in column)
        out += [(a, b, shared), (b, a, shared)]
    return out


class ChineseTokenizer:
    """jieba search-mode tokens on normalised text, without stopwords and punctuation.

    One instance holds its own ``jieba.Tokenizer`` so the user dictionary never leaks into the
    process-wide jieba state.
    """

    # HMM off: jieba's HMM glues unknown characters to neighbours ("村要", "前要"); without it,
    # unknown runs fall apart into single characters and stopwords come off cleanly.
    @cached_property
    def _jieba(self) -> jieba.Tokenizer:
        tk = jieba.Tokenizer()
        for line in _data_lines("userdict.txt"):
            word, *rest = line.split()
            if word.startswith("-"):  # a jieba word that mis-segments policy text, e.g. 和县 in "市辖区和县(市、区)"
                tk.del_word(word[1:])
            else:
                tk.add_word(word, int(rest[0]) if rest else None)
        return tk

    @cached_property
    def stopwords(self) -> frozenset[str]:
        return frozenset(_data_lines("stopwords.txt"))

    @cached_property
    def synonyms(self) -> list[tuple[str, str]]:
        pairs = [line.split("\t", 1) for line in _data_lines("synonyms.txt")]
        return [(normalize(a), b) for a, b in pairs]

    @cached_property
    def _official(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for colloquial, official in self.synonyms:
            table.setdefault(colloquial, []).extend(official.split())
        return table

    def use_thesaurus(self, thesaurus: dict[str, list[str]]) -> None:
        """Add general synonyms (word -> words the corpus uses), e.g. from 同义词词林; the
        hand-written pairs keep precedence."""
        for word, alts in thesaurus.items():
            self._official.setdefault(word, []).extend(a for a in alts if a not in self._official.get(word, []))

    def official(self, word: str) -> list[str]:
        """The policy text's own words for ``word`` (empty when there are none)."""
        return self._official.get(normalize(word), [])

    def tokens(self, text: str) -> list[str]:
        """Content tokens of ``text`` (search mode: long words plus their sub-words)."""
        return [
            t for t in self._jieba.lcut_for_search(normalize(text), HMM=False)
            if t not in self.stopwords and _WORD.search(t)
        ]

    def words(self, text: str) -> list[str]:
        """Content words of ``text`` in precise mode, for measuring how much of a question is covered."""
        return [t for t in self._jieba.lcut(normalize(text), HMM=False) if t not in self.stopwords and _WORD.search(t)]

    @cached_property
    def _tagger(self) -> jieba.posseg.POSTokenizer:
        return jieba.posseg.POSTokenizer(self._jieba)

    def content_words(self, text: str) -> list[str]:
        """Nouns, verbs and terms of ``text`` (jieba's part-of-speech tags): what a told case is about
        ("礼堂", "退伍", "电动车"), without its numerals, times, pronouns and place names."""
        return [w for w, tag in self._tagger.lcut(normalize(text), HMM=False)
                if tag[:1] in _CONTENT_TAGS and tag != "ns" and len(w) > 1 and w not in self.stopwords and _WORD.search(w)]

    def places(self, text: str) -> list[str]:
        """The place names of ``text`` (jieba's ``ns`` tag): 许昌市, 郑州市, 魏都区, 河南."""
        return [w for w, tag in self._tagger.lcut(normalize(text), HMM=False) if tag == "ns"]

    def expand(self, query: str) -> str:
        """The query with the official wording of its colloquial terms appended."""
        q = normalize(query)
        extra = [official for colloquial, official in self.synonyms if colloquial in q]
        extra += [a for w in self.words(query) if w not in self._hand for a in self._official.get(w, [])]
        return " ".join([query, *extra]) if extra else query

    @cached_property
    def _hand(self) -> frozenset[str]:
        return frozenset(c for c, _ in self.synonyms)
