"""What users asked and how the bot did: the store (SQLAlchemy, Alembic ``migrations``), the
question log written beside serving (``questionlog``), the usage report (``report``, Jinja2
``templates``) and labels set by staff (``labels``).

May import: the top-level basics and ``bot.evaluation`` (labels export as eval rows); never the API.
"""
