"""held rows found by their reason

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 14:30:00.000000

A command that has to be tried again later (it waits for a prerequisite, or retries)
now holds the commands queued behind it in its entity ("queued behind #N"), so claims no
longer step over them; they are released by that reason when it is done. Held rows can
then be many: the release finds them by reason on this partial index, not by scanning
every held row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

HELD = sa.text("status = 'held'")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_held_reason",
            ["hold_reason"],
            unique=False,
            postgresql_where=HELD,
            sqlite_where=HELD,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_held_reason", postgresql_where=HELD, sqlite_where=HELD)
