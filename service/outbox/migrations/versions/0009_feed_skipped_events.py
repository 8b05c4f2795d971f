"""calendar feeds: the events skipped as unusable

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 09:00:00.000000

An event a feed has but that cannot be used (no DTSTART, a bad rule or date, an unknown
zone) is skipped and the rest of the feed planned. The feed's row says how many were
skipped at its last expansion (`skipped_events`) and keeps the first few with their UIDs
and reasons (`skipped_sample`, JSON: [{"uid": ..., "reason": ...}]).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("skipped_events", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("skipped_sample", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.drop_column("skipped_sample")
        batch_op.drop_column("skipped_events")
