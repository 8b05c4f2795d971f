"""calendar feeds keep the hash of the last body planned

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00.000000

A server without ETag or Last-Modified answers every poll with 200 and the whole feed:
`calendar_feed.body_sha256` lets the poller see that the body is the one it planned last
time and skip the parse (it still expands again when the window has moved on).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.drop_column("body_sha256")
