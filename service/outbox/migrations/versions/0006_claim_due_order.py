"""claims take the row due longest first

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 11:05:00.000000

Claims order due runnable rows by (next_attempt_at, id) instead of id: waiting rows,
re-checked every wait_cap_s, could otherwise fill every claim ahead of a due command.
The partial index follows the new order; the id-only one had no other reader.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RUNNABLE = sa.text("status IN ('pending', 'waiting')")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_due",
            ["next_attempt_at", "id"],
            unique=False,
            postgresql_where=RUNNABLE,
            sqlite_where=RUNNABLE,
        )
        batch_op.drop_index("ix_outbox_runnable", postgresql_where=RUNNABLE, sqlite_where=RUNNABLE)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_runnable",
            ["id"],
            unique=False,
            postgresql_where=RUNNABLE,
            sqlite_where=RUNNABLE,
        )
        batch_op.drop_index("ix_outbox_due", postgresql_where=RUNNABLE, sqlite_where=RUNNABLE)
