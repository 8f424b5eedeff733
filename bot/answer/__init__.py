"""Question -> grounded answer: what is asked (``query``, ``conversation``), the hybrid search
(``retrieval``), what each candidate shows (``evidence``, ``figures``), ranking (``rerank``,
``selection``), exam options (``choices``), the fitted models (``calibrated``), refusing
(``refusal``), the one decision path (``decision``), writing the cited answer (``render``; or
``generation`` + ``grounding`` with an LLM) and caching answers (``cache``, ``sharedcache``).

May import: the top-level basics (``config``, ``models``, ``text``, ``metrics``), ``bot.corpus``
and ``bot.index``. ``bot.pipeline`` assembles these parts into ``PolicyBot``.
"""
