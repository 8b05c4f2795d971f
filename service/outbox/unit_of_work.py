"""The unit of work: what one accepted change writes, in one transaction.

    async with uow.transaction() as tx:
        seen = await tx.inbox.taken(keys)          # event ids already taken
        states = await tx.states.load(models)      # entities' desired states
        ...                                        # translate (pure)
        await tx.inbox.add(accepted)               # the event ids: the idempotency keys
        await tx.commands.add(accepted)            # the commands, in order
        await tx.states.save(saved)                # the new desired states

The inbox row is the idempotency key: an event id that is already there is not written
again, and `add` says which were new, so a redelivered Kafka record takes effect once.
`tx.conn` runs a feature's own statements in the same transaction (the feeds table,
mappings reconcile forgets). The intake, the feed poller and reconcile all write through
it; once a transaction that queued commands has committed, the dispatcher is woken
(`on_commit`). Only after the commit may a consumer commit its offsets.

Each `add` writes a whole batch with one statement per table: each statement is a round
trip, and round trips, not Python, were what limited the intake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.domain.commands import Command
from service.outbox.followers import BLOCKED
from service.outbox.result_log import CommandRef, ResultLog
from service.outbox.sql import among, chunks, insert_for
from service.outbox.states import States
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


@dataclass(frozen=True)
class Accepted:
    """One accepted event's writes: its inbox row and its commands."""

    event: EventRecord
    commands: Sequence[Command]
    outcome: str
    now: datetime
    # command index -> why it waits for an operator (the deprovisioning guard)
    approvals: Mapping[int, str] = field(default_factory=dict)


class Inbox:
    """The inbox rows of one transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def taken(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (source, event id) the inbox already has."""
        wanted = set(keys)
        found: set[tuple[str, str]] = set()
        sources = sorted({source for source, _ in wanted})
        for ids in chunks(sorted({event_id for _, event_id in wanted})):
            # by the primary key's columns, each an IN list: the pairs are picked out here
            rows = await self.conn.execute(
                sa.select(INBOX.c.source, INBOX.c.event_id).where(
                    among(self.conn.dialect.name, INBOX.c.source, sources, sa.String),
                    among(self.conn.dialect.name, INBOX.c.event_id, ids, sa.String),
                )
            )
            found.update(key for key in ((s, e) for s, e in rows) if key in wanted)
        return found

    async def add(self, accepted: Sequence[Accepted]) -> set[tuple[str, str]]:
        """Record the events' ids in one statement; the (source, event id) pairs written,
        so those left out were already there (duplicates)."""
        if not accepted:
            return set()
        rows = [_inbox_row(a) for a in accepted]
        insert = insert_for(self.conn.dialect.name)
        # RETURNING rather than rowcount: drivers disagree on rowcount after ON CONFLICT.
        statement = (
            insert(INBOX)
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
            .returning(INBOX.c.source, INBOX.c.event_id)
        )
        written = await self.conn.execute(statement, rows)
        return {(source, event_id) for source, event_id in written}


class Commands:
    """The outbox rows one transaction queues."""

    def __init__(self, conn: AsyncConnection, results: ResultLog | None = None) -> None:
        self.conn = conn
        self.results = results
        self.queued = 0

    async def add(self, accepted: Sequence[Accepted]) -> None:
        """All the events' commands in one statement, in order (ids follow it: FIFO per
        entity); a command not held for approval is held behind a dead one of its entity.
        One held for a person (approval) reports it as a result event."""
        blockers = await self.dead_blockers({c.entity for a in accepted for c in a.commands})
        rows: list[dict[str, Any]] = []
        for_person: list[bool] = []
        for a in accepted:
            for index, command in enumerate(a.commands):
                person = a.approvals.get(index) or command.held
                hold = person or blockers.get(command.entity)
                rows.append(_command_row(command, a.event, hold, a.now))
                for_person.append(person is not None)
        if not rows:
            return
        if self.results is None or not any(for_person):
            await self.conn.execute(OUTBOX.insert(), rows)
        else:
            # the held rows' ids, for their results: RETURNING in the order of the rows
            statement = OUTBOX.insert().returning(OUTBOX.c.id, sort_by_parameter_order=True)
            ids = (await self.conn.execute(statement, rows)).scalars().all()
            held = [
                (_ref(row_id, row), str(row["hold_reason"]))
                for row_id, row, person in zip(ids, rows, for_person, strict=True)
                if person
            ]
            await self.results.held(self.conn, held, rows[0]["created_at"])
        self.queued += len(rows)

    async def withdraw(self, withdrawn: Sequence[Withdrawn]) -> None:
        """Drop each entity's commands dated ahead that have not run, in favour of what a
        later event asks; WithdrawRaced if one the translation took for waiting has been
        claimed meanwhile (its date came): translated again, it is then what happened."""
        for w in withdrawn:
            dated = sa.and_(
                OUTBOX.c.entity == w.entity,
                OUTBOX.c.effective_at.is_not(None),
                OUTBOX.c.effective_at > w.now,
            )
            await self.conn.execute(
                OUTBOX.update()
                .where(dated, OUTBOX.c.status.in_(UNCLAIMED))
                .values(
                    status=CommandStatus.DROPPED.value,
                    hold_reason=f"withdrawn by event {w.event_id}"[:255],
                    updated_at=w.now,
                )
            )
            ran = await self.conn.scalar(
                sa.select(sa.func.max(OUTBOX.c.effective_at)).where(
                    dated, OUTBOX.c.status.not_in(_WITHDRAWABLE)
                )
            )
            if ran is not None:
                raise WithdrawRaced(w.entity, ran)

    async def dead_blockers(self, entities: Iterable[str]) -> dict[str, str]:
        """The hold reason naming each entity's first dead command, for those that have one."""
        found: dict[str, str] = {}
        for some in chunks(sorted(set(entities))):
            rows = await self.conn.execute(
                sa.select(OUTBOX.c.entity, sa.func.min(OUTBOX.c.id))
                .where(
                    among(self.conn.dialect.name, OUTBOX.c.entity, some, sa.String),
                    OUTBOX.c.status == CommandStatus.DEAD.value,
                )
                .group_by(OUTBOX.c.entity)
            )
            found.update((entity, BLOCKED.format(dead)) for entity, dead in rows)
        return found


@dataclass(frozen=True)
class Withdrawn:
    """An entity whose commands dated after `now` a later event withdraws."""

    entity: str
    event_id: str
    now: datetime


class WithdrawRaced(Exception):
    """A dated command to withdraw started running meanwhile (its date came, by the
    clock of the process that claimed it): translate again as of that date."""

    def __init__(self, entity: str, effective_at: datetime) -> None:
        super().__init__(f"{entity}: a command dated {effective_at} started meanwhile")
        self.effective_at = effective_at


UNCLAIMED = (CommandStatus.PENDING.value, CommandStatus.WAITING.value, CommandStatus.HELD.value)
_WITHDRAWABLE = (*UNCLAIMED, CommandStatus.DROPPED.value)


@dataclass(frozen=True)
class Transaction:
    conn: AsyncConnection
    inbox: Inbox
    commands: Commands
    states: States

    @classmethod
    def on(cls, conn: AsyncConnection, results: ResultLog | None = None) -> Transaction:
        return cls(conn, Inbox(conn), Commands(conn, results), States(conn))


class UnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        on_commit: Callable[[], None] | None = None,
        results: ResultLog | None = None,
    ) -> None:
        self.engine = engine
        self.on_commit = on_commit
        self.results = results  # commands held for a person report it (result events)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self.engine.begin() as conn:
            tx = Transaction.on(conn, self.results)
            yield tx
        if tx.commands.queued and self.on_commit is not None:
            self.on_commit()

    async def accept(
        self,
        event: EventRecord,
        commands: Sequence[Command],
        *,
        outcome: str = "accepted",
        approvals: Mapping[int, str] | None = None,
    ) -> bool:
        """Record one event and its commands; False (and nothing written) for a duplicate."""
        accepted = Accepted(event, commands, outcome, utcnow(), approvals or {})
        async with self.transaction() as tx:
            if not await tx.inbox.add([accepted]):
                return False
            await tx.commands.add([accepted])
        return True


def _inbox_row(accepted: Accepted) -> dict[str, object]:
    event = accepted.event
    return {
        "source": event.source,
        "event_id": event.event_id,
        "type": event.type,
        "subject": event.subject,
        "tenant": event.tenant,
        "fingerprint": event.fingerprint,
        "outcome": accepted.outcome[:255],
        "commands": len(accepted.commands),
        "received_at": accepted.now,
    }


def _ref(command_id: int, row: Mapping[str, Any]) -> CommandRef:
    return CommandRef(
        command_id,
        row["kind"],
        row["entity"],
        row["tenant"],
        row["payload"],
        row["event_source"],
        row["event_id"],
    )


def _command_row(
    command: Command, event: EventRecord, hold: str | None, now: datetime
) -> dict[str, Any]:
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
        "effective_at": command.not_before,
        "event_source": event.source,
        "event_id": event.event_id,
        "created_at": now,
        "updated_at": now,
    }
