"""Question log and answer feedback.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("resolved_question", sa.Text),
        sa.Column("found", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("guard", sa.String(16)),
        sa.Column("citations", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_answers_time", "answers", ["time"])
    op.create_index("ix_answers_found", "answers", ["found"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("answer_id", sa.String(32), sa.ForeignKey("answers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text),
    )
    op.create_index("ix_feedback_answer_id", "feedback", ["answer_id"])
    op.create_index("ix_feedback_time", "feedback", ["time"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("answers")
