"""Where the question log and answer feedback live: SQLAlchemy 2 over SQLite (embedded default)
or PostgreSQL (shared by several API processes or machines). The schema is made by Alembic
migrations (``bot/usage/migrations``), applied on start."""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError

logger = logging.getLogger(__name__)
# Alembic keeps its running migration in module globals (``alembic.context``): two stores of one
# process migrating at once (the question-log writer and an app starting) break each other.
_MIGRATING = threading.Lock()

metadata = MetaData()

answers = Table(
    "answers", metadata,
    Column("id", String(32), primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("client", String(64), nullable=False),
    Column("route", String(16), nullable=False),
    Column("question", Text, nullable=False),
    Column("resolved_question", Text),
    Column("found", Boolean, nullable=False, index=True),
    Column("reason", String(32)),
    Column("mode", String(16), nullable=False),
    Column("guard", String(16)),
    Column("citations", Text, nullable=False),  # JSON: [{"clause_id", "doc_id", "score"}]
    Column("latency_ms", Float, nullable=False),
    Column("related", Text),  # JSON, not-found answers: the closest clauses shown, [{"clause_id", "doc_id", "score"}]
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("answer_id", String(32), ForeignKey("answers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("client", String(64), nullable=False),
    Column("rating", String(8), nullable=False),
    Column("comment", Text),
    Index("uq_feedback_answer_client", "answer_id", "client", unique=True),  # one rating per answer and client
)

VERDICTS = ("correct", "wrong", "not_in_documents")

labels = Table(
    "labels", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("answer_id", String(32), ForeignKey("answers.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("verdict", String(16), nullable=False),  # one of VERDICTS
    Column("clause_id", String(128)),  # "wrong": the clause that answers the question
    Column("admin", String(64), nullable=False),  # who labelled: a hash of the admin key, never the key
    Column("admin_name", String(64)),  # the name the labeller gave on the page, if any
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False, index=True),
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL: the API's writer and a report or admin read do not block each other; NORMAL sync is
    # durable across process crashes, which is what a usage log needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def now() -> datetime:
    return datetime.now(timezone.utc)


def default_url(index_dir: Path) -> str:
    """The embedded default: a SQLite file beside the indexes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(index_dir / 'usage.sqlite3').resolve()}"


def _cursor(row) -> str:
    return base64.urlsafe_b64encode(f"{row.time.isoformat()}|{row.id}".encode()).decode()


def _after(table: Table, cursor: str | None):
    if not cursor:
        return None
    try:
        when, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        t = datetime.fromisoformat(when)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    if table is feedback:
        if not key.isdigit() or int(key) >= 2**63:
            raise ValueError("invalid cursor")
        key = int(key)
    return or_(table.c.time < t, and_(table.c.time == t, table.c.id < key))


def _label_item(r) -> dict:
    return {"answer_id": r.answer_id, "verdict": r.verdict, "clause_id": r.clause_id, "admin": r.admin,
            "admin_name": r.admin_name, "created": as_utc(r.created).isoformat(), "updated": as_utc(r.updated).isoformat()}


def as_utc(value: datetime) -> datetime:
    """``value`` with its time zone; a naive time (SQLite returns them, users type them) is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _connect_args(url: str, timeout: float) -> dict:
    """Driver options that bound every statement, lock wait and connection attempt by ``timeout`` seconds."""
    if url.startswith("sqlite"):
        return {"timeout": timeout}  # the busy timeout: how long a statement waits for another writer's lock
    ms = max(1, int(timeout * 1000))
    return {"connect_timeout": max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
            "options": f"-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={max(ms, 10_000)}"}


def _engine(url: str, timeout: float) -> Engine:
    engine = create_engine(url, connect_args=_connect_args(url, timeout), pool_pre_ping=True, pool_timeout=timeout, future=True)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# Row-level errors: one row cannot be stored (a constraint, a value the column refuses); its
# neighbours can. Anything else (OperationalError: unreachable, locked, timed out) fails the batch.
ROW_ERRORS = (IntegrityError, DataError)


class Store:
    """The question log and feedback tables behind one engine.

    Args:
        url: SQLAlchemy URL.
        timeout: seconds any statement, lock wait, pool checkout or connection may take (the API
            passes ``POLICYBOT_DB_TIMEOUT``; operator commands keep this longer default).
    """

    MIGRATION_TIMEOUT = 60.0  # schema changes may wait for another worker's migration

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url, self.timeout = url, timeout
        self.engine: Engine = _engine(url, timeout)

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to the newest Alembic revision (idempotent; safe to call on every start)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(str(resources.files("bot.usage").joinpath("migrations")))))
        engine = _engine(self.url, self.MIGRATION_TIMEOUT)
        try:
            with _MIGRATING, engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # several workers may start at once
                    conn.execute(text("SELECT pg_advisory_xact_lock(71717171)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            engine.dispose()

    def insert_answers(self, rows: list[dict]) -> int:
        """Insert answer rows; a row the database refuses is skipped, not its batch. Returns the rows stored."""
        return self._insert_each(insert(answers), rows)

    def insert_feedback(self, rows: list[dict]) -> tuple[int, int, list[dict]]:
        """Store feedback rows whose answer is in the log; a client's later rating of an answer replaces
        its earlier one. Returns the rows stored, the rows refused, and the rows whose answer is not (yet) there."""
        latest = {(r["answer_id"], r["client"]): r for r in rows}  # one statement must not update a row twice
        with self.engine.connect() as conn:
            present = set(conn.execute(select(answers.c.id).where(answers.c.id.in_({a for a, _ in latest}))).scalars())
        ready = [r for r in latest.values() if r["answer_id"] in present]
        missing = [r for r in latest.values() if r["answer_id"] not in present]
        dialect = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        stmt = dialect(feedback)
        stmt = stmt.on_conflict_do_update(index_elements=["answer_id", "client"],
                                          set_={"time": stmt.excluded.time, "rating": stmt.excluded.rating, "comment": stmt.excluded.comment})
        stored = self._insert_each(stmt, ready)
        return stored, len(ready) - stored, missing

    def _insert_each(self, stmt, rows: list[dict]) -> int:
        """``rows`` in one transaction; if one of them is refused, each row in its own, so that only it is lost."""
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt, rows)
            return len(rows)
        except ROW_ERRORS:
            if len(rows) == 1:
                logger.warning("question log: a row was refused by the database and dropped")
                return 0
        return sum(self._insert_each(stmt, [row]) for row in rows)

    def ping(self) -> None:
        """Raise unless the tables can be read now (within the timeout)."""
        with self.engine.connect() as conn:
            conn.execute(select(answers.c.id).limit(1)).all()

    def has_answer(self, answer_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(answers.c.id).where(answers.c.id == answer_id)).first() is not None

    def questions(self, *, found: bool | None = None, since: datetime | None = None, limit: int = 50,
                  cursor: str | None = None, until: datetime | None = None, doc: str | None = None,
                  rating: str | None = None) -> tuple[list[dict], str | None]:
        """Logged answers, newest first, ``limit`` at a time; the cursor continues after the last.

        Args:
            found: only answered (True) or unanswered (False) questions.
            since, until: only answers in ``[since, until)``.
            doc: only answers citing (or, not found, showing as closest) this document id.
            rating: only answers with feedback of this rating ("down": 👎).

        Each item carries its ``label`` (or None) and its ``feedback`` ([{"rating", "comment"}]).
        """
        query = select(answers).order_by(answers.c.time.desc(), answers.c.id.desc()).limit(limit + 1)
        conds = [found is not None and answers.c.found == found, since and answers.c.time >= since,
                 until and answers.c.time < until, _after(answers, cursor)]
        if doc:  # the JSON columns are written by json.dumps with its default separators
            needle = json.dumps({"doc_id": doc}, ensure_ascii=True)[1:-1]
            conds.append(or_(answers.c.citations.contains(needle, autoescape=True),
                             answers.c.related.contains(needle, autoescape=True)))
        if rating:
            conds.append(answers.c.id.in_(select(feedback.c.answer_id).where(feedback.c.rating == rating)))
        for cond in conds:
            if cond is not None and cond is not False:
                query = query.where(cond)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            items = [self._answer_item(r) for r in rows[:limit]]
            ids = [i["id"] for i in items]
            marks = {r.answer_id: _label_item(r) for r in conn.execute(select(labels).where(labels.c.answer_id.in_(ids)))}
            said: dict[str, list[dict]] = {}
            for r in conn.execute(select(feedback).where(feedback.c.answer_id.in_(ids)).order_by(feedback.c.time)):
                said.setdefault(r.answer_id, []).append({"rating": r.rating, "comment": r.comment})
        for item in items:
            item["label"], item["feedback"] = marks.get(item["id"]), said.get(item["id"], [])
        return items, (_cursor(rows[limit - 1]) if len(rows) > limit else None)

    def set_label(self, answer_id: str, verdict: str, clause_id: str | None, admin: str,
                  admin_name: str | None = None) -> dict:
        """Label a logged answer, or change its label (who and when are recorded with it).

        Raises:
            KeyError: no answer with ``answer_id``.
            ValueError: an unknown verdict, or "wrong" without the right clause.
        """
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
        if verdict == "wrong" and not clause_id:
            raise ValueError("a 'wrong' label names the clause that answers the question")
        values = {"verdict": verdict, "clause_id": clause_id if verdict == "wrong" else None, "admin": admin,
                  "admin_name": admin_name or None, "updated": now()}
        with self.engine.begin() as conn:
            if conn.execute(select(answers.c.id).where(answers.c.id == answer_id)).first() is None:
                raise KeyError(answer_id)
            done = conn.execute(update(labels).where(labels.c.answer_id == answer_id).values(**values)).rowcount
            if not done:
                conn.execute(insert(labels).values(answer_id=answer_id, created=values["updated"], **values))
            row = conn.execute(select(labels).where(labels.c.answer_id == answer_id)).one()
        return _label_item(row)

    def labelled(self) -> list[dict]:
        """Every label with the answer it is about (question, found, citations), oldest label first."""
        query = (select(labels, answers.c.question, answers.c.resolved_question, answers.c.found, answers.c.reason,
                        answers.c.citations, answers.c.time.label("asked"))
                 .join(answers, answers.c.id == labels.c.answer_id).order_by(labels.c.updated, labels.c.id))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_label_item(r) | {"question": r.question, "resolved_question": r.resolved_question, "found": r.found,
                                  "reason": r.reason, "citations": json.loads(r.citations),
                                  "asked": as_utc(r.asked).isoformat()} for r in rows]

    def feedback_items(self, *, since: datetime | None = None, rating: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Feedback with the answer it is about, newest first."""
        query = (select(feedback, answers.c.question, answers.c.found, answers.c.reason, answers.c.citations)
                 .join(answers, answers.c.id == feedback.c.answer_id)
                 .order_by(feedback.c.time.desc(), feedback.c.id.desc()).limit(limit + 1))
        for cond in (since and feedback.c.time >= since, rating and feedback.c.rating == rating, _after(feedback, cursor)):
            if cond is not None and cond is not False:
                query = query.where(cond)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        items = [{"id": r.id, "answer_id": r.answer_id, "time": as_utc(r.time).isoformat(), "rating": r.rating,
                  "comment": r.comment, "question": r.question, "found": r.found, "reason": r.reason,
                  "citations": json.loads(r.citations)} for r in rows[:limit]]
        return items, (_cursor(rows[limit - 1]) if len(rows) > limit else None)

    @staticmethod
    def _answer_item(r) -> dict:
        return {"id": r.id, "time": as_utc(r.time).isoformat(), "client": r.client, "route": r.route, "question": r.question,
                "resolved_question": r.resolved_question, "found": r.found, "reason": r.reason, "mode": r.mode,
                "guard": r.guard, "citations": json.loads(r.citations), "latency_ms": r.latency_ms,
                "related": json.loads(r.related) if r.related else []}

    def answers_since(self, since: datetime, until: datetime | None = None) -> list[dict]:
        """Every logged answer in ``[since, until)``, oldest first (for reports)."""
        query = select(answers).where(answers.c.time >= since).order_by(answers.c.time)
        if until is not None:
            query = query.where(answers.c.time < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._answer_item(r) for r in rows]

    def purge(self, before: datetime) -> int:
        """Delete answers (and their feedback) older than ``before``; returns the answers deleted."""
        with self.engine.begin() as conn:
            old = select(answers.c.id).where(answers.c.time < before)
            conn.execute(delete(feedback).where(feedback.c.answer_id.in_(old)))
            conn.execute(delete(labels).where(labels.c.answer_id.in_(old)))
            return conn.execute(delete(answers).where(answers.c.time < before)).rowcount

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(answers)).scalar_one()
