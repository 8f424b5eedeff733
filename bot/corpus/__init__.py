"""Documents -> clauses: the corpus catalogue (``catalog``), the clause parser (``chunking``) and
adding a document to the corpus (``ingest``).

May import: ``bot.config``, ``bot.models``, ``bot.text``, ``bot.files``. Nothing of the later stages.
"""
