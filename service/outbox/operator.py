"""What an operator does to commands: retry or drop a dead one, approve or deny held
deprovisioning and feeds' cancels (the CLI's `dead`, `approve` and `deny`, the admin API).

Given an `Actor`, an action writes its audit row in its own transaction, with its result:
`ok`, `not_found` (no such command; a tenant or feed with no command at all) or
`conflict` (the command is not in a state that allows it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.domain.commands import APPROVAL, DENIED
from service.outbox import audit, followers
from service.outbox.audit import Actor, Result
from service.outbox.tables import (
    FEEDS,
    INBOX,
    MAPPING,
    OUTBOX,
    RUNNABLE,
    CommandStatus,
    OutboxRow,
    utcnow,
)

FEED_SOURCE_PREFIX = "calendar:"  # service.calendar.holds.feed_source: a feed's event source


def _id(command_id: int) -> sa.ColumnElement[int]:
    """The id as a BIGINT: outbox.id is an INTEGER on PostgreSQL, and asyncpg refuses to
    send an id beyond 2^31-1 for one (a 500 for `retry 3000000000`); cast, it is compared
    and simply not found."""
    return sa.cast(sa.literal(command_id, sa.BigInteger), sa.BigInteger)


def _target(command_id: int | None, tenant: str | None, source: str | None) -> str:
    if command_id is not None:
        return f"command {command_id}"
    if tenant is not None:
        return f"tenant {tenant}"
    return f"source {source}"


class OperatorActions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def retry(self, command_id: int, actor: Actor | None = None) -> Result:
        """A dead command runs again, with a fresh attempt budget."""
        return await self._reopen(
            command_id, (CommandStatus.DEAD.value,), CommandStatus.PENDING.value, actor
        )

    async def drop(self, command_id: int, actor: Actor | None = None) -> Result:
        """Give up on a command; the commands it blocked run."""
        return await self._reopen(
            command_id,
            (CommandStatus.DEAD.value, CommandStatus.HELD.value, *RUNNABLE),
            CommandStatus.DROPPED.value,
            actor,
        )

    async def approve(
        self,
        *,
        command_id: int | None = None,
        tenant: str | None = None,
        source: str | None = None,
        actor: Actor | None = None,
    ) -> tuple[int, Result]:
        """Let held commands run: one, every one held for a tenant, or for an event source
        (a calendar feed's held cancels). How many, and `ok` or `not_found`."""
        return await self._decide(command_id, tenant, source, CommandStatus.PENDING.value, actor)

    async def deny(
        self,
        *,
        command_id: int | None = None,
        tenant: str | None = None,
        source: str | None = None,
        actor: Actor | None = None,
    ) -> tuple[int, Result]:
        """Drop held commands: the users keep their access, the meetings stay."""
        return await self._decide(command_id, tenant, source, CommandStatus.DROPPED.value, actor)

    async def _decide(
        self,
        command_id: int | None,
        tenant: str | None,
        source: str | None,
        to_status: str,
        actor: Actor | None,
    ) -> tuple[int, Result]:
        if command_id is None and tenant is None and source is None:
            raise ValueError("name a command id, a tenant or a source")
        now = utcnow()
        query = OUTBOX.update().where(
            OUTBOX.c.status == CommandStatus.HELD.value, OUTBOX.c.hold_reason.like(f"{APPROVAL}%")
        )
        if command_id is not None:
            query = query.where(OUTBOX.c.id == _id(command_id))
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
            changed = int(result.rowcount)
            # nothing changed: say whether there was nothing to decide or nothing at all
            found: Result = "ok" if changed else await _known(conn, command_id, tenant, source)
            if actor is not None:
                action = "deny" if dropped else "approve"
                target = _target(command_id, tenant, source)
                await audit.record(conn, actor, action, target, found, f"changed {changed}")
        return changed, found

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
        self,
        command_id: int,
        from_statuses: tuple[str, ...],
        to_status: str,
        actor: Actor | None,
    ) -> Result:
        now = utcnow()
        dropped = to_status == CommandStatus.DROPPED.value
        async with self.engine.begin() as conn:
            entity = await conn.scalar(
                OUTBOX.update()
                .where(OUTBOX.c.id == _id(command_id), OUTBOX.c.status.in_(from_statuses))
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
                found: Result = await _known(conn, command_id, None, None)
                result: Result = "conflict" if found == "ok" else found
            elif dropped:
                await followers.release_held(conn, self.dialect, [command_id], now)
                result = "ok"
            else:
                await followers.requeue_behind(conn, command_id, entity, now)
                result = "ok"
            if actor is not None:
                action = "drop" if dropped else "retry"
                await audit.record(conn, actor, action, f"command {command_id}", result)
        return result


async def _known(
    conn: AsyncConnection, command_id: int | None, tenant: str | None, source: str | None
) -> Result:
    """`ok` when the command, the tenant (a row of it anywhere) or the source exists."""
    if command_id is not None:
        queries = [sa.select(OUTBOX.c.id).where(OUTBOX.c.id == _id(command_id))]
    elif tenant is not None:
        queries = [
            sa.select(OUTBOX.c.id).where(OUTBOX.c.tenant == tenant),
            sa.select(INBOX.c.event_id).where(INBOX.c.tenant == tenant),
            sa.select(MAPPING.c.tenant).where(MAPPING.c.tenant == tenant),
        ]
    else:
        queries = [sa.select(OUTBOX.c.id).where(OUTBOX.c.event_source == source)]
        if source is not None and source.startswith(FEED_SOURCE_PREFIX):
            feed = source.removeprefix(FEED_SOURCE_PREFIX)
            queries.append(sa.select(FEEDS.c.feed_id).where(FEEDS.c.feed_id == feed))
    for query in queries:
        if await conn.scalar(query.limit(1)) is not None:
            return "ok"
    return "not_found"
