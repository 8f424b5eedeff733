"""Labels on logged answers (correct / wrong with the right clause / not in the documents), and the
closest clauses of a not-found answer.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("answer_id", sa.String(32), sa.ForeignKey("answers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("clause_id", sa.String(128)),
        sa.Column("admin", sa.String(64), nullable=False),
        sa.Column("admin_name", sa.String(64)),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("answer_id", name="uq_labels_answer_id"),
    )
    op.create_index("ix_labels_updated", "labels", ["updated"])
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("related", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("related")
    op.drop_table("labels")
