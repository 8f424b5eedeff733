"""One feedback row per answer and client: a later rating replaces the earlier one.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # Keep each client's latest rating of an answer, then make that the rule.
    op.execute(sa.text("DELETE FROM feedback WHERE id NOT IN (SELECT MAX(id) FROM feedback GROUP BY answer_id, client)"))
    op.create_index("uq_feedback_answer_client", "feedback", ["answer_id", "client"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_feedback_answer_client", table_name="feedback")
