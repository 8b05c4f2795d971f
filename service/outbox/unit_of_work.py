"""Accept an event and the commands it implies in one transaction.

The inbox row is the idempotency key: inserting an event id that is already there does
nothing and reports a duplicate, so a redelivered Kafka record takes effect once. Only
after this transaction commits may the consumer commit its offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.domain.commands import Command
from service.outbox.store import BLOCKED, OUTBOX, table_of
from service.outbox.tables import InboxEntry, Status, utcnow

INBOX = table_of(InboxEntry)


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


async def insert_inbox(
    conn: AsyncConnection, event: EventRecord, count: int, outcome: str, now: datetime
) -> bool:
    """Record the event id; False when it is already there (a duplicate)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(INBOX)
        .values(
            source=event.source,
            event_id=event.event_id,
            type=event.type,
            subject=event.subject,
            tenant=event.tenant,
            fingerprint=event.fingerprint,
            outcome=outcome[:255],
            commands=count,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(INBOX.c.event_id)
    )
    # RETURNING rather than rowcount: drivers disagree on rowcount after ON CONFLICT.
    return (await conn.execute(statement)).first() is not None


async def insert_commands(
    conn: AsyncConnection,
    event: EventRecord,
    commands: Sequence[Command],
    holds: Mapping[int, str],
    now: datetime,
) -> None:
    for index, command in enumerate(commands):
        reason = holds.get(index) or await _blocker(conn, command.entity)
        await conn.execute(OUTBOX.insert().values(**_row(command, event, reason, now)))


async def _blocker(conn: AsyncConnection, entity: str) -> str | None:
    """A new command behind a dead one of its entity is held with that reason."""
    dead = await conn.scalar(
        sa.select(sa.func.min(OUTBOX.c.id)).where(
            OUTBOX.c.entity == entity, OUTBOX.c.status == Status.DEAD.value
        )
    )
    return BLOCKED.format(dead) if dead is not None else None


def _row(
    command: Command, event: EventRecord, hold: str | None, now: datetime
) -> dict[str, object]:
    return {
        "entity": command.entity,
        "kind": command.kind.value,
        "tenant": command.tenant,
        "payload": command.payload.model_dump(mode="json", exclude_none=True),
        "status": Status.HELD.value if hold else Status.PENDING.value,
        "hold_reason": hold,
        "attempts": 0,
        "in_doubt": False,
        "next_attempt_at": command.not_before or now,
        "event_source": event.source,
        "event_id": event.event_id,
        "created_at": now,
        "updated_at": now,
    }
