"""Commands held behind another one, and their release.

A held command does not run until what it is held behind is resolved, and claims never
look at it (held rows are not in the due index). The reason names the command:

- `blocked by #N`: N is dead. N's later commands are held behind it (`block_followers`),
  and so are a tenant's waiting commands when N is its dead create_customer
  (`hold_behind_dead_customers`). They run when N is retried and done, or dropped.
- `queued behind #N`: N has to be tried again later (it waits for a prerequisite, or
  retries): its entity's later commands could not run before it anyway (FIFO), and held
  they are no longer stepped over by every claim (168 ms per claim with 100,000 of them
  due, 5 ms held). They run when N is done or dropped; if N dies they are blocked by it.

Reconcile holds a tenant's repairs `blocked by` the customer's reactivation the same way.
Approval holds (`APPROVAL...`) are the operator's, not these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from service.domain.commands import Kind
from service.outbox import direct
from service.outbox.sql import among, among_bound, bound, per_dialect
from service.outbox.tables import OUTBOX, RUNNABLE, CommandStatus

BLOCKED = "blocked by #{}"
BEHIND = "queued behind #{}"


def _hold(reason: str, now: datetime) -> dict[str, Any]:
    return {"status": CommandStatus.HELD.value, "hold_reason": reason, "updated_at": now}


# Inlined, not bound: a prepared statement's generic plan cannot match bound values to the
# partial index's `status IN ('pending', 'waiting')`, and an executemany statement takes no
# expanding IN parameter.
RUNNABLE_LITERALS: list[sa.ColumnElement[str]] = [
    sa.literal_column(f"'{s}'", sa.String) for s in RUNNABLE
]
_QUEUE_BEHIND = (
    OUTBOX.update()
    .where(
        OUTBOX.c.entity == sa.bindparam("b_entity"),
        OUTBOX.c.id > sa.bindparam("b_id"),
        OUTBOX.c.status.in_(RUNNABLE_LITERALS),
    )
    .values(
        status=CommandStatus.HELD.value,
        hold_reason=sa.bindparam("b_reason"),
        updated_at=sa.bindparam("b_now"),
    )
)


async def queue_behind(
    conn: AsyncConnection, heads: Sequence[tuple[str, int]], now: datetime
) -> None:
    """Hold the later commands of each (entity, id) head that will be tried again later."""
    if heads:
        await conn.execute(
            _QUEUE_BEHIND,
            [
                {"b_entity": entity, "b_id": head, "b_reason": BEHIND.format(head), "b_now": now}
                for entity, head in heads
            ],
        )


async def block_followers(conn: AsyncConnection, entity: str, dead_id: int, now: datetime) -> None:
    """`dead_id` died: its entity's later commands, queued behind it or not, are blocked."""
    await conn.execute(
        OUTBOX.update()
        .where(
            OUTBOX.c.entity == entity,
            OUTBOX.c.id > dead_id,
            sa.or_(
                OUTBOX.c.status.in_(RUNNABLE),
                sa.and_(
                    OUTBOX.c.status == CommandStatus.HELD.value,
                    OUTBOX.c.hold_reason == BEHIND.format(dead_id),
                ),
            ),
        )
        .values(**_hold(BLOCKED.format(dead_id), now))
    )


async def hold_behind_dead_customers(
    conn: AsyncConnection, dialect: str, tenants: set[str], now: datetime
) -> None:
    """A tenant whose create_customer is dead gets no customer until an operator acts:
    its waiting commands, and those queued behind them, are held behind that command as
    its own followers are, and run again when it is retried and done, or dropped
    (`dead retry|drop`). Checked when one of the tenant's commands dies or waits: dead
    rows are few (ix_outbox_status)."""
    dead = await conn.execute(
        sa.select(OUTBOX.c.tenant, sa.func.min(OUTBOX.c.id))
        .where(
            OUTBOX.c.status == CommandStatus.DEAD.value,
            OUTBOX.c.kind == Kind.CREATE_CUSTOMER.value,
            among(dialect, OUTBOX.c.tenant, sorted(tenants), sa.String),
        )
        .group_by(OUTBOX.c.tenant)
    )
    for tenant, dead_id in dead.all():
        waiting = sa.select(OUTBOX.c.entity).where(
            OUTBOX.c.status == CommandStatus.WAITING.value, OUTBOX.c.tenant == tenant
        )
        await conn.execute(
            OUTBOX.update()
            # the waiting rows and the rows queued behind them in their entities
            .where(OUTBOX.c.status.in_(RUNNABLE), OUTBOX.c.entity.in_(waiting))
            .values(**_hold(BLOCKED.format(dead_id), now))
        )


async def release_held(
    conn: AsyncConnection, dialect: str, done_ids: Sequence[int], now: datetime
) -> None:
    """What was held behind these commands runs now that they are done (or dropped). One
    statement per batch, on ix_outbox_held_reason."""
    reasons = [reason.format(i) for i in done_ids for reason in (BLOCKED, BEHIND)]
    await direct.run(conn, _RELEASE[dialect], [{"b_reasons": reasons, "b_now": now}])


def _release(dialect: str) -> Any:
    return (
        OUTBOX.update()
        .where(
            OUTBOX.c.status == CommandStatus.HELD.value,
            among_bound(dialect, OUTBOX.c.hold_reason, "reasons", sa.String),
        )
        # next_attempt_at stays: a follower may be effective-dated
        .values(status=CommandStatus.PENDING.value, hold_reason=None, updated_at=bound("now"))
    )


_RELEASE = per_dialect(_release)


async def requeue_behind(
    conn: AsyncConnection, command_id: int, entity: str, now: datetime
) -> None:
    """A dead command runs again: its entity's followers wait for it queued, not blocked;
    rows of other entities blocked by it stay blocked until it is done (release_held)."""
    await conn.execute(
        OUTBOX.update()
        .where(
            OUTBOX.c.status == CommandStatus.HELD.value,
            OUTBOX.c.hold_reason == BLOCKED.format(command_id),
            OUTBOX.c.entity == entity,
        )
        .values(**_hold(BEHIND.format(command_id), now))
    )
