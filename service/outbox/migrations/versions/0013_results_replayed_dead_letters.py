"""result events kept for the relay; dead letters remember their replay

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 01:30:00.000000

`result` holds one structured CloudEvent per command that finished, died or was held for
approval, written in the outcome's transaction; the relay publishes it to the results
topic and sets `published_at`. `dead_letter.replayed_at` marks a record `dlq replay` sent
back to its source topic, so a second replay skips it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.outbox.tables import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("command_id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("cloudevent", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_result_subject", "result", ["subject"], unique=False)
    op.create_index("ix_result_command_id", "result", ["command_id"], unique=False)
    op.create_index("ix_result_created_at", "result", ["created_at"], unique=False)
    op.create_index(
        "ix_result_unpublished",
        "result",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replayed_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.drop_column("replayed_at")
    op.drop_index("ix_result_unpublished", table_name="result")
    op.drop_index("ix_result_created_at", table_name="result")
    op.drop_index("ix_result_command_id", table_name="result")
    op.drop_index("ix_result_subject", table_name="result")
    op.drop_table("result")
