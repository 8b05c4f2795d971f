"""calendar feeds schedule what their owner organises, each event once per tenant

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:10:00.000000

A person's feed holds every event they are invited to: only those they organise become
meetings. `calendar_feed.aliases` holds the owner's other addresses and
`schedule_attended` the rare feed whose attended events are scheduled too.
`calendar_event_owner` says which feed of a tenant schedules an event (organiser + UID),
so two feeds never schedule it twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.outbox.tables import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("aliases", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("schedule_attended", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "calendar_event_owner",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("organizer", sa.String(length=255), nullable=False),
        sa.Column("uid", sa.String(length=255), nullable=False),
        sa.Column("feed_id", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "organizer", "uid"),
    )
    op.create_index(
        "ix_calendar_event_owner_feed_id", "calendar_event_owner", ["feed_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_calendar_event_owner_feed_id", table_name="calendar_event_owner")
    op.drop_table("calendar_event_owner")
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.drop_column("schedule_attended")
        batch_op.drop_column("aliases")
