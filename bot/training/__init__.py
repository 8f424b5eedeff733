"""Trainers' material from the plan's clauses: quizzes with answer keys (``quiz``) and handouts
and exports (``export``).

May import: the top-level basics, ``bot.corpus``, ``bot.index.clausestore`` (the plan's clauses) and
``bot.answer.figures`` (one vocabulary of figures).
"""
