"""Clauses -> indexes: tokenising (``tokenizer``, ``thesaurus``), embedding (``embedding``), the
BM25 and vector stores (``backends`` with bm25s + FAISS, ``milvus``), the corpus tables
(``postings``), and building, verifying and loading a build atomically (``build``).

May import: the top-level basics (``config``, ``models``, ``text``, ``files``) and ``bot.corpus.catalog``.
"""
