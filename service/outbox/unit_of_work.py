"""Accept an event and the commands it implies in one transaction.

The inbox row is the idempotency key: inserting an event id that is already there does
nothing and reports a duplicate, so a redelivered Kafka record takes effect once. Only
after this transaction commits may the consumer commit its offset.

The `*_rows` functions write a whole batch of events with one statement per table: each
statement is a round trip, and round trips, not Python, were what limited the intake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.domain.commands import Command
from service.outbox.followers import BLOCKED
from service.outbox.sql import chunks, insert_for
from service.outbox.tables import INBOX, OUTBOX, CommandStatus, utcnow


@dataclass(frozen=True)
class EventRecord:
    """What the inbox keeps of an event (CloudEvents attributes)."""

    source: str
    event_id: str
    type: str
    subject: str | None = None
    tenant: str | None = None
    fingerprint: str | None = None


class UnitOfWork:
    def __init__(self, engine: AsyncEngine, on_commit: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.on_commit = on_commit

    async def accept(
        self,
        event: EventRecord,
        commands: Sequence[Command],
        *,
        outcome: str = "accepted",
        holds: Mapping[int, str] | None = None,
    ) -> bool:
        """Record the event and its commands; False (and nothing written) for a duplicate.

        `holds` maps a command's index to the reason it is held (awaiting approval).
        """
        now = utcnow()
        async with self.engine.begin() as conn:
            if not await insert_inbox(conn, event, len(commands), outcome, now):
                return False
            await insert_commands(conn, event, commands, holds or {}, now)
        self.committed(len(commands))
        return True

    def committed(self, commands: int) -> None:
        if commands and self.on_commit is not None:
            self.on_commit()

    async def seen(self, source: str, event_id: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(INBOX)
                .where(INBOX.c.source == source, INBOX.c.event_id == event_id)
            )
        return bool(found)


@dataclass(frozen=True)
class Accepted:
    """One accepted event's writes: its inbox row and its commands."""

    event: EventRecord
    commands: Sequence[Command]
    outcome: str
    now: datetime
    holds: Mapping[int, str] = field(default_factory=dict)  # command index -> reason


async def insert_inbox(
    conn: AsyncConnection, event: EventRecord, count: int, outcome: str, now: datetime
) -> bool:
    """Record the event id; False when it is already there (a duplicate)."""
    statement = _insert_inbox(conn).values(**_inbox_row(event, count, outcome, now))
    return (await conn.execute(statement)).first() is not None


async def taken_ids(conn: AsyncConnection, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (source, event id) the inbox already has."""
    wanted = set(keys)
    found: set[tuple[str, str]] = set()
    sources = sorted({source for source, _ in wanted})
    for ids in chunks(sorted({event_id for _, event_id in wanted})):
        # by the primary key's columns, each an IN list: the pairs are picked out here
        rows = await conn.execute(
            sa.select(INBOX.c.source, INBOX.c.event_id).where(
                INBOX.c.source.in_(sources), INBOX.c.event_id.in_(ids)
            )
        )
        found.update(key for key in ((s, e) for s, e in rows) if key in wanted)
    return found


async def insert_inbox_rows(
    conn: AsyncConnection, accepted: Sequence[Accepted]
) -> set[tuple[str, str]]:
    """Record the events' ids in one statement; the (source, event id) pairs written, so
    those left out were already there (duplicates)."""
    if not accepted:
        return set()
    rows = [_inbox_row(a.event, len(a.commands), a.outcome, a.now) for a in accepted]
    written = await conn.execute(_insert_inbox(conn), rows)
    return {(source, event_id) for source, event_id in written}


def _insert_inbox(conn: AsyncConnection) -> Any:
    insert = insert_for(conn.dialect.name)
    # RETURNING rather than rowcount: drivers disagree on rowcount after ON CONFLICT.
    return (
        insert(INBOX)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(INBOX.c.source, INBOX.c.event_id)
    )


def _inbox_row(event: EventRecord, count: int, outcome: str, now: datetime) -> dict[str, object]:
    return {
        "source": event.source,
        "event_id": event.event_id,
        "type": event.type,
        "subject": event.subject,
        "tenant": event.tenant,
        "fingerprint": event.fingerprint,
        "outcome": outcome[:255],
        "commands": count,
        "received_at": now,
    }


async def insert_commands(
    conn: AsyncConnection,
    event: EventRecord,
    commands: Sequence[Command],
    holds: Mapping[int, str],
    now: datetime,
) -> None:
    await insert_command_rows(conn, [Accepted(event, commands, "accepted", now, holds)])


async def insert_command_rows(conn: AsyncConnection, accepted: Sequence[Accepted]) -> None:
    """All the events' commands in one statement, in order (ids follow it: FIFO per
    entity); a command not held for approval is held behind a dead one of its entity."""
    blockers = await dead_blockers(conn, {c.entity for a in accepted for c in a.commands})
    rows = [
        _row(command, a.event, a.holds.get(index) or blockers.get(command.entity), a.now)
        for a in accepted
        for index, command in enumerate(a.commands)
    ]
    if rows:
        await conn.execute(OUTBOX.insert(), rows)


async def dead_blockers(conn: AsyncConnection, entities: Iterable[str]) -> dict[str, str]:
    """The hold reason naming each entity's first dead command, for those that have one."""
    found: dict[str, str] = {}
    for some in chunks(sorted(set(entities))):
        rows = await conn.execute(
            sa.select(OUTBOX.c.entity, sa.func.min(OUTBOX.c.id))
            .where(OUTBOX.c.entity.in_(some), OUTBOX.c.status == CommandStatus.DEAD.value)
            .group_by(OUTBOX.c.entity)
        )
        found.update((entity, BLOCKED.format(dead)) for entity, dead in rows)
    return found


def _row(
    command: Command, event: EventRecord, hold: str | None, now: datetime
) -> dict[str, object]:
    return {
        "entity": command.entity,
        "kind": command.kind.value,
        "tenant": command.tenant,
        "payload": command.payload.model_dump(mode="json", exclude_none=True),
        "status": CommandStatus.HELD.value if hold else CommandStatus.PENDING.value,
        "hold_reason": hold,
        "attempts": 0,
        "in_doubt": False,
        "next_attempt_at": command.not_before or now,
        "event_source": event.source,
        "event_id": event.event_id,
        "created_at": now,
        "updated_at": now,
    }
