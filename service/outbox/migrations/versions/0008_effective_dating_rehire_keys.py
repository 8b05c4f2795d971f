"""effective-dated commands; people found by e-mail or employee number

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:00:00.000000

An HR change dated ahead (a termination at the end of a notice period) is queued with its
date in `outbox.effective_at`: until then it does not hold up the employee's later
commands (a profile update during the notice period runs now), and a later event may
withdraw it. `entity_state.natural_key` / `alt_key` hold a user's e-mail and employee
number, so a rehire under a new employee id is matched to the leaver it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.outbox.tables import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("effective_at", UtcDateTime(), nullable=True))
    with op.batch_alter_table("entity_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("natural_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("alt_key", sa.String(length=255), nullable=True))
        batch_op.create_index(
            "ix_entity_state_natural", ["kind", "tenant", "natural_key"], unique=False
        )
        batch_op.create_index("ix_entity_state_alt", ["kind", "tenant", "alt_key"], unique=False)
    # the people known before the upgrade: a leaver among them is matched by e-mail too
    email = (
        "state->'profile'->>'email'"
        if op.get_bind().dialect.name == "postgresql"
        else "json_extract(state, '$.profile.email')"
    )
    op.execute(
        f"UPDATE entity_state SET natural_key = lower({email}) "  # noqa: S608 - no input
        "WHERE kind = 'user' AND natural_key IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("entity_state", schema=None) as batch_op:
        batch_op.drop_index("ix_entity_state_alt")
        batch_op.drop_index("ix_entity_state_natural")
        batch_op.drop_column("alt_key")
        batch_op.drop_column("natural_key")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("effective_at")
