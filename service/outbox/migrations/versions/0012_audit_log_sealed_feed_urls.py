"""operator actions are audited; feed URLs are stored sealed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 20:15:00.000000

`audit_log` holds one row per operator action (who: the admin token's name or the CLI's
user; what; when; result). `calendar_feed.url` is widened to hold a feed URL sealed with
the credential vault's key (a Fernet token is about 1.4 times the URL plus 57 bytes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.outbox.tables import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("result", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"], unique=False)
    op.create_index("ix_audit_log_action", "audit_log", ["action"], unique=False)
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.alter_column(
            "url", existing_type=sa.String(length=2000), type_=sa.String(length=4000)
        )


def downgrade() -> None:
    with op.batch_alter_table("calendar_feed", schema=None) as batch_op:
        batch_op.alter_column(
            "url", existing_type=sa.String(length=4000), type_=sa.String(length=2000)
        )
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
