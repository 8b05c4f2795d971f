"""Pruning finished history: `ucaas-sync db prune`.

The outbox keeps every command, the call log every UCaaS call and `dead_letter` every
dead-lettered record, so the status counts (which read whole tables) slow down as history
grows. This deletes what is finished and old: done or dropped commands finished before the
cut-off with their calls, dead letters recorded before it, and result events published
before it (unpublished ones stay: the relay still owes them). Open commands (pending,
waiting, in flight, held, dead), the id mappings, entity states, inbox (the events' ids
de-duplicate redelivered events), credentials and feeds are never touched.

Each batch is its own short transaction, so a prune runs beside a live service: no row it
deletes is one the service still writes (finished rows never reopen), and no lock is held
for longer than one batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.outbox.followers import BLOCKED
from service.outbox.tables import (
    CALLS,
    DEAD_LETTERS,
    OUTBOX,
    RESULTS,
    TERMINAL,
    CommandStatus,
    utcnow,
)

_BLOCKED_PREFIX = BLOCKED.format("")


@dataclass(frozen=True)
class PruneReport:
    """What a prune deleted (or, dry, would delete), and its cut-off."""

    commands: int
    calls: int
    dead_letters: int
    before: datetime
    results: int = 0


def blocking_ids(reasons: Iterable[str | None]) -> set[int]:
    """The commands named by held rows' `blocked by #ID` reasons."""
    found: set[int] = set()
    for reason in reasons:
        if reason and reason.startswith(_BLOCKED_PREFIX):
            named = reason.removeprefix(_BLOCKED_PREFIX)
            if named.isdigit():
                found.add(int(named))
    return found


async def _kept(conn: AsyncConnection) -> set[int]:
    # Held rows are few (ix_outbox_status). A held row names a dead command, or a gate still
    # open; a finished one is released in the transaction that finishes it. Kept anyway:
    # deleting a row a held row names would leave that reason pointing at nothing.
    reasons = await conn.scalars(
        sa.select(OUTBOX.c.hold_reason).where(
            OUTBOX.c.status == CommandStatus.HELD.value,
            OUTBOX.c.hold_reason.like(f"{_BLOCKED_PREFIX}%"),
        )
    )
    return blocking_ids(reasons)


def _finished(before: datetime, kept: set[int]) -> sa.ColumnElement[bool]:
    return sa.and_(
        OUTBOX.c.status.in_(TERMINAL),
        OUTBOX.c.done_at < before,
        OUTBOX.c.id.not_in(sorted(kept)),
    )


async def _count(conn: AsyncConnection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(table).where(where)) or 0)


async def _dry(engine: AsyncEngine, before: datetime) -> PruneReport:
    async with engine.connect() as conn:
        finished = _finished(before, await _kept(conn))
        commands = await _count(conn, OUTBOX, finished)
        their_calls = CALLS.c.command_id.in_(sa.select(OUTBOX.c.id).where(finished))
        calls = await _count(conn, CALLS, their_calls)
        letters = await _count(conn, DEAD_LETTERS, DEAD_LETTERS.c.at < before)
        results = await _count(conn, RESULTS, _published(before))
    return PruneReport(commands, calls, letters, before, results)


def _published(before: datetime) -> sa.ColumnElement[bool]:
    return RESULTS.c.published_at < before  # NULL (not published yet) is never less


async def _prune_commands(engine: AsyncEngine, before: datetime, batch: int) -> tuple[int, int]:
    """Finished commands and their calls, `batch` commands per transaction, in id order."""
    commands = calls = 0
    after = 0
    while True:
        async with engine.begin() as conn:
            finished = _finished(before, await _kept(conn))
            ids = (
                await conn.scalars(
                    sa.select(OUTBOX.c.id)
                    .where(finished, OUTBOX.c.id > after)
                    .order_by(OUTBOX.c.id)
                    .limit(batch)
                )
            ).all()
            if not ids:
                return commands, calls
            # The id range holds exactly the rows chosen (the first `batch` in id order), and
            # naming it keeps the statements free of a parameter per id (SQLite's limit).
            chosen = sa.and_(finished, OUTBOX.c.id.between(ids[0], ids[-1]))
            deleted_calls = await conn.execute(
                CALLS.delete().where(CALLS.c.command_id.in_(sa.select(OUTBOX.c.id).where(chosen)))
            )
            deleted = await conn.execute(OUTBOX.delete().where(chosen))
            calls += deleted_calls.rowcount
            commands += deleted.rowcount
            after = ids[-1]


async def _prune_old(
    engine: AsyncEngine, table: sa.Table, old: sa.ColumnElement[bool], batch: int
) -> int:
    """The `old` rows of a table with an integer id, `batch` per transaction."""
    deleted_total = 0
    after = 0
    while True:
        async with engine.begin() as conn:
            ids = (
                await conn.scalars(
                    sa.select(table.c.id)
                    .where(old, table.c.id > after)
                    .order_by(table.c.id)
                    .limit(batch)
                )
            ).all()
            if not ids:
                return deleted_total
            deleted = await conn.execute(
                table.delete().where(old, table.c.id.between(ids[0], ids[-1]))
            )
            deleted_total += deleted.rowcount
            after = ids[-1]


async def prune(
    engine: AsyncEngine,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    batch: int = 10_000,
    now: datetime | None = None,
) -> PruneReport:
    """Delete the history finished more than `older_than` before `now` (default: now).

    With `dry_run`, delete nothing and count what would go."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass a UTC-aware `now`")
    before = (now - older_than).astimezone(UTC)
    if dry_run:
        return await _dry(engine, before)
    commands, calls = await _prune_commands(engine, before, batch)
    letters = await _prune_old(engine, DEAD_LETTERS, DEAD_LETTERS.c.at < before, batch)
    results = await _prune_old(engine, RESULTS, _published(before), batch)
    return PruneReport(commands, calls, letters, before, results)
