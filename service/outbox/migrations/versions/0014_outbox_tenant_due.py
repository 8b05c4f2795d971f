"""outbox: the due rows of each tenant, for fair claims

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 05:30:00.000000

Fair claims (service/outbox/fairness.py) step from one tenant with runnable rows to the
next and take each tenant's due rows in due order: an index on the tenant (NULL as ''),
then next_attempt_at and id, over the runnable rows only, as ix_outbox_due is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_tenant_due",
        "outbox",
        [sa.text("coalesce(tenant, '')"), "next_attempt_at", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'waiting')"),
        sqlite_where=sa.text("status IN ('pending', 'waiting')"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_tenant_due", table_name="outbox")
