"""What an operator does to commands: retry or drop a dead one, approve or deny held
deprovisioning and feeds' cancels (the CLI's `dead`, `approve` and `deny`, the admin API)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.domain.commands import APPROVAL, DENIED
from service.outbox import followers
from service.outbox.tables import OUTBOX, RUNNABLE, CommandStatus, OutboxRow, utcnow


class OperatorActions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def retry(self, command_id: int) -> bool:
        """A dead command runs again, with a fresh attempt budget."""
        return await self._reopen(
            command_id, (CommandStatus.DEAD.value,), CommandStatus.PENDING.value
        )

    async def drop(self, command_id: int) -> bool:
        """Give up on a command; the commands it blocked run."""
        return await self._reopen(
            command_id,
            (CommandStatus.DEAD.value, CommandStatus.HELD.value, *RUNNABLE),
            CommandStatus.DROPPED.value,
        )

    async def approve(
        self, *, command_id: int | None = None, tenant: str | None = None, source: str | None = None
    ) -> int:
        """Let held commands run: one, every one held for a tenant, or for an event source
        (a calendar feed's held cancels)."""
        return await self._decide(command_id, tenant, source, CommandStatus.PENDING.value)

    async def deny(
        self, *, command_id: int | None = None, tenant: str | None = None, source: str | None = None
    ) -> int:
        """Drop held commands: the users keep their access, the meetings stay."""
        return await self._decide(command_id, tenant, source, CommandStatus.DROPPED.value)

    async def _decide(
        self, command_id: int | None, tenant: str | None, source: str | None, to_status: str
    ) -> int:
        if command_id is None and tenant is None and source is None:
            raise ValueError("name a command id, a tenant or a source")
        now = utcnow()
        query = OUTBOX.update().where(
            OUTBOX.c.status == CommandStatus.HELD.value, OUTBOX.c.hold_reason.like(f"{APPROVAL}%")
        )
        if command_id is not None:
            query = query.where(OUTBOX.c.id == command_id)
        if tenant is not None:
            query = query.where(OUTBOX.c.tenant == tenant)
        if source is not None:
            query = query.where(OUTBOX.c.event_source == source)
        dropped = to_status == CommandStatus.DROPPED.value
        async with self.engine.begin() as conn:
            result = await conn.execute(
                # next_attempt_at stays: an effective-dated command still waits for its date.
                # approved_at keeps the guard from counting an approved burst again.
                query.values(
                    status=to_status,
                    hold_reason=DENIED if dropped else None,
                    approved_at=None if dropped else now,
                    updated_at=now,
                    done_at=now if dropped else None,
                )
            )
        return result.rowcount

    async def held_for_approval(self) -> list[OutboxRow]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(OUTBOX)
                    .where(
                        OUTBOX.c.status == CommandStatus.HELD.value,
                        OUTBOX.c.hold_reason.like(f"{APPROVAL}%"),
                    )
                    .order_by(OUTBOX.c.id)
                )
            ).all()
        return [OutboxRow.model_validate(dict(r._mapping)) for r in rows]

    async def _reopen(
        self, command_id: int, from_statuses: tuple[str, ...], to_status: str
    ) -> bool:
        now = utcnow()
        async with self.engine.begin() as conn:
            entity = await conn.scalar(
                OUTBOX.update()
                .where(OUTBOX.c.id == command_id, OUTBOX.c.status.in_(from_statuses))
                .values(
                    status=to_status,
                    attempts=0,
                    next_attempt_at=now,
                    hold_reason=None,
                    updated_at=now,
                    done_at=now if to_status == CommandStatus.DROPPED.value else None,
                )
                .returning(OUTBOX.c.entity)
            )
            if entity is None:
                return False
            if to_status == CommandStatus.DROPPED.value:
                await followers.release_held(conn, self.dialect, [command_id], now)
            else:
                await followers.requeue_behind(conn, command_id, entity, now)
        return True
