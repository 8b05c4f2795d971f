"""Claims: due commands leased to one dispatcher, renewed while they run, taken back when
their worker died, given back at shutdown.

Claims take due runnable rows whose entity has no earlier unfinished row (FIFO per
entity; a row effective-dated ahead does not count until its date), the claim's slots
shared among the tenants with due work (fairness.py: one tenant's burst does not hold up
another's commands), within a tenant the row due longest first: a command re-checked
every few seconds while it waits is due again each time, and taken in id order such rows
ahead of a new command could fill every claim for ever (employees waiting for the
customer queued after them). On PostgreSQL the candidate rows are locked with `FOR UPDATE
SKIP LOCKED`, so several dispatcher processes can share one database; on SQLite one
process claims, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.outbox import db
from service.outbox.fairness import FairShare
from service.outbox.sql import among
from service.outbox.tables import OUTBOX, CommandStatus, utcnow
from service.outbox.tenant_rates import TenantRates


@dataclass(frozen=True)
class Claim:
    id: int
    entity: str
    kind: str
    tenant: str | None
    payload: dict[str, Any]
    attempts: int
    in_doubt: bool
    created_at: datetime
    owner: str


def claim_of(row: Any, owner: str) -> Claim:
    """The claim of an outbox row (a database row, or anything with its columns)."""
    return Claim(
        id=row.id,
        entity=row.entity,
        kind=row.kind,
        tenant=row.tenant,
        payload=row.payload,
        attempts=row.attempts,
        in_doubt=row.in_doubt,
        created_at=row.created_at,
        owner=owner,
    )


class Claims:
    """`planned`: PostgreSQL connections of the claims' own, opened with the claim's plan
    (`db.make_engine(url, server_settings=PLANNED)`, as bootstrap wires it). A claim on
    them is its statements alone, in autocommit: each statement leases its rows
    atomically, and nothing spans two. Without it, a claim is a transaction that sets the
    plan first: three round trips more (BEGIN, set_config, COMMIT), a third of a claim's
    time at full load."""

    def __init__(
        self,
        engine: AsyncEngine,
        rates: TenantRates | None = None,
        planned: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Statements of the hot path are built once (in FairShare): building one costs
        # more CPU than PostgreSQL spends running it.
        self.fair = FairShare(self.dialect, rates)
        self.planned = (
            planned.execution_options(isolation_level="AUTOCOMMIT")
            if planned is not None and self.dialect == "postgresql"
            else None
        )

    async def claim(self, owner: str, limit: int, lease_s: float) -> list[Claim]:
        now = utcnow()
        values = {"b_now": now, "b_owner": owner, "b_expires": now + timedelta(seconds=lease_s)}
        if self.planned is not None:
            async with self.planned.connect() as conn:
                rows = await self.fair.claim(conn, values, limit)
        else:
            async with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    await conn.execute(_ONE_PLAN)
                rows = await self.fair.claim(conn, values, limit)
        return sorted((claim_of(r, owner) for r in rows), key=lambda c: c.id)

    async def reclaim_expired(self) -> int:
        """Rows whose worker died: back to pending, and in doubt (the call may have run)."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                OUTBOX.update()
                .where(
                    OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
                    OUTBOX.c.lease_expires_at < now,
                )
                .values(
                    status=CommandStatus.PENDING.value,
                    in_doubt=True,
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
        return result.rowcount

    async def extend(self, owner: str, ids: Sequence[int], lease_s: float) -> int:
        """Renew the leases this owner still holds on `ids`."""
        now = utcnow()
        mine = sa.and_(
            among(self.dialect, OUTBOX.c.id, ids, sa.Integer),
            OUTBOX.c.lease_owner == owner,
            OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
        )
        if self.dialect == "postgresql":
            # Rows being finished right now are locked by the outcome writer, which updates
            # them in its own order: waiting for them could deadlock, and they need no
            # renewal. Skip them.
            mine = OUTBOX.c.id.in_(
                sa.select(OUTBOX.c.id).where(mine).with_for_update(skip_locked=True)
            )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                OUTBOX.update()
                .where(mine)
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
            )
        return result.rowcount

    async def release(self, claims: Sequence[Claim]) -> int:
        """Give back claims cut short by a shutdown: the attempt does not count."""
        if not claims:
            return 0
        now = utcnow()
        async with self.engine.begin() as conn:
            released = 0
            for claim in claims:
                result = await conn.execute(
                    _mine(claim).values(
                        status=CommandStatus.PENDING.value,
                        in_doubt=True,
                        attempts=OUTBOX.c.attempts - 1,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                )
                released += result.rowcount
        return released


def _mine(claim: Claim) -> Any:
    return OUTBOX.update().where(
        OUTBOX.c.id == claim.id,
        OUTBOX.c.lease_owner == claim.owner,
        OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
    )


# The claim has one good plan at any size: step over the tenants on ix_outbox_tenant_due,
# walk each tenant's due rows on it in order, probe each row's entity on
# ix_outbox_open_entity, stop at the tenant's LIMIT. After a burst, before autovacuum has
# analysed the table, PostgreSQL believes a handful of rows exist and plans a bitmap scan
# that sorts every due row, or a sequential scan of the table for each one's entity: 72-92
# ms per claim with 17,000 due (auto_explain), and the database's CPU, not UCaaS, set the
# pace. The other plans are ruled out for the claims' own connections (PLANNED) or for the
# claim's transaction (_ONE_PLAN) only.
PLANNED = {
    f"enable_{scan}": "off" for scan in ("seqscan", "bitmapscan", "sort", "hashjoin", "mergejoin")
}


def planned_engine(url: str, pool_size: int) -> AsyncEngine:
    """The claims' own connections to `url`, which start with the claim's plan."""
    return db.make_engine(url, pool_size=pool_size, server_settings=PLANNED)


_ONE_PLAN = sa.text(
    "SELECT "
    + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in PLANNED.items())
)
