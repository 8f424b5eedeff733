"""policy-bot: cited answers over Chinese community-service policy documents.

Data flow, one module each: corpus (documents) -> chunking (clauses) -> indexing (BM25 + FAISS)
-> retrieval (hybrid) -> answer (grounded, extractive) -> cli / api.
"""

__version__ = "0.1.0"
