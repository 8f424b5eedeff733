"""Clauses -> indexes: tokenising (``tokenizer``, ``thesaurus``), embedding (``embedding``), the
BM25 and vector stores (``backends`` with bm25s + FAISS, ``milvus``), the corpus tables
(``postings``), the clauses column-wise (``clausestore``), building and loading a build (``build``)
and the builds folder with its manifests and atomic swap (``builds``).

May import: the top-level basics (``config``, ``models``, ``text``, ``files``) and ``bot.corpus``.
"""
