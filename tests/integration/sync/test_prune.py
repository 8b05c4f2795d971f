"""Pruning finished history (service/outbox/prune.py) on SQLite and PostgreSQL: only old
done and dropped commands, their calls and old dead letters go; everything open, the
mappings, entity states and the inbox stay; a dry run counts the same and deletes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.outbox.followers import BLOCKED
from service.outbox.prune import DEAD_LETTERS, PruneReport, blocking_ids, prune
from service.outbox.store import OutboxStore
from service.outbox.tables import (
    CALLS,
    INBOX,
    MAPPING,
    OUTBOX,
    STATES,
    TERMINAL,
    CommandStatus,
)

NOW = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
KEEP = timedelta(days=30)
CUT_OFF = NOW - KEEP
OLD = CUT_OFF - timedelta(days=1)
NEW = CUT_OFF + timedelta(days=1)


@dataclass(frozen=True)
class Seeded:
    outbox: set[int]
    calls: set[int]
    dead_letters: set[int]
    gone_commands: set[int]
    gone_calls: set[int]
    gone_dead_letters: set[int]


async def _command(
    engine: AsyncEngine, status: str, done_at: datetime | None, hold_reason: str | None = None
) -> int:
    async with engine.begin() as conn:
        row_id = await conn.scalar(
            OUTBOX.insert()
            .values(
                entity=f"user:T:{status}-{done_at}",
                kind="create_user",
                tenant="T",
                payload={},
                status=status,
                hold_reason=hold_reason,
                next_attempt_at=OLD - timedelta(days=5),
                created_at=OLD - timedelta(days=5),
                updated_at=OLD - timedelta(days=5),
                done_at=done_at,
            )
            .returning(OUTBOX.c.id)
        )
    assert isinstance(row_id, int)
    return row_id


async def _calls(engine: AsyncEngine, command_id: int, count: int) -> set[int]:
    ids: set[int] = set()
    async with engine.begin() as conn:
        for n in range(count):
            call_id = await conn.scalar(
                CALLS.insert()
                .values(
                    command_id=command_id,
                    entity="user:T:x",
                    method="POST",
                    route="/users",
                    status=201,
                    latency_ms=1.0,
                    at=OLD - timedelta(minutes=n),
                )
                .returning(CALLS.c.id)
            )
            assert isinstance(call_id, int)
            ids.add(call_id)
    return ids


async def _dead_letter(engine: AsyncEngine, offset: int, at: datetime) -> int:
    async with engine.begin() as conn:
        letter_id = await conn.scalar(
            DEAD_LETTERS.insert()
            .values(
                topic="hr.events",
                partition=0,
                offset=offset,
                error="not_json",
                reason="Expecting value",
                at=at,
            )
            .returning(DEAD_LETTERS.c.id)
        )
    assert isinstance(letter_id, int)
    return letter_id


async def seed(engine: AsyncEngine) -> Seeded:
    """Commands of every status, old and new, some with calls; held rows behind a dead and
    a done command; old and new dead letters; an old mapping, entity state and inbox row."""
    gone: set[int] = set()
    gone_calls: set[int] = set()
    kept_calls: set[int] = set()
    for done_at in (OLD, OLD - timedelta(days=100), OLD):
        done = await _command(engine, CommandStatus.DONE.value, done_at)
        gone.add(done)
        gone_calls |= await _calls(engine, done, 3)
    gone.add(await _command(engine, CommandStatus.DROPPED.value, OLD))
    gone_calls |= await _calls(engine, max(gone), 1)
    gone.add(await _command(engine, CommandStatus.DONE.value, OLD))  # without calls

    kept_done = await _command(engine, CommandStatus.DONE.value, NEW)
    kept_calls |= await _calls(engine, kept_done, 2)
    await _command(engine, CommandStatus.DROPPED.value, NEW)
    await _command(engine, CommandStatus.DONE.value, CUT_OFF)  # not before the cut-off
    # Open rows, even with an old done_at (set by no path today): their status keeps them.
    for status in (
        CommandStatus.PENDING,
        CommandStatus.WAITING,
        CommandStatus.IN_FLIGHT,
        CommandStatus.DEAD,
    ):
        open_id = await _command(engine, status.value, OLD)
        kept_calls |= await _calls(engine, open_id, 1)
    dead = await _command(engine, CommandStatus.DEAD.value, None)
    await _command(engine, CommandStatus.HELD.value, None, BLOCKED.format(dead))
    named_done = await _command(engine, CommandStatus.DONE.value, OLD)
    kept_calls |= await _calls(engine, named_done, 2)
    await _command(engine, CommandStatus.HELD.value, None, BLOCKED.format(named_done))
    await _command(engine, CommandStatus.HELD.value, None, "approval: 25 deprovisioning in 1 h")

    gone_letters = {await _dead_letter(engine, 1, OLD), await _dead_letter(engine, 2, OLD)}
    await _dead_letter(engine, 3, NEW)

    async with engine.begin() as conn:
        await conn.execute(
            MAPPING.insert().values(
                kind="user", tenant="T", external_id="E-1", ucaas_id="u-1", state={}, updated_at=OLD
            )
        )
        await conn.execute(
            STATES.insert().values(entity="user:T:E-1", kind="user", state={}, updated_at=OLD)
        )
        await conn.execute(
            INBOX.insert().values(
                source="hr",
                event_id="evt-1",
                type="hr.employee.hired",
                outcome="accepted",
                commands=1,
                received_at=OLD,
            )
        )
    snapshot = await _ids(engine)
    return Seeded(
        outbox=snapshot["outbox"],
        calls=snapshot["calls"],
        dead_letters=snapshot["dead_letters"],
        gone_commands=gone,
        gone_calls=gone_calls,
        gone_dead_letters=gone_letters,
    )


async def _ids(engine: AsyncEngine) -> dict[str, set[int]]:
    async with engine.connect() as conn:
        return {
            "outbox": set((await conn.scalars(sa.select(OUTBOX.c.id))).all()),
            "calls": set((await conn.scalars(sa.select(CALLS.c.id))).all()),
            "dead_letters": set((await conn.scalars(sa.select(DEAD_LETTERS.c.id))).all()),
        }


async def _others(engine: AsyncEngine) -> list[Any]:
    """Everything prune must not touch, row by row."""
    async with engine.connect() as conn:
        return [
            (await conn.execute(sa.select(table).order_by(*table.primary_key.columns))).all()
            for table in (MAPPING, STATES, INBOX)
        ]


async def _open_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(OUTBOX).where(OUTBOX.c.status.not_in(TERMINAL)).order_by(OUTBOX.c.id)
        )
        return list(rows.all())


@pytest.mark.parametrize("batch", [10_000, 2])
async def test_prune_deletes_old_finished_history_and_nothing_else(
    store: OutboxStore, batch: int
) -> None:
    engine = store.engine
    seeded = await seed(engine)
    others = await _others(engine)
    open_rows = await _open_rows(engine)

    deleted_per_statement: list[int] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM OUTBOX"):
            deleted_per_statement.append(cursor.rowcount)

    sa.event.listen(engine.sync_engine, "after_cursor_execute", seen)
    try:
        report = await prune(engine, KEEP, batch=batch, now=NOW)
    finally:
        sa.event.remove(engine.sync_engine, "after_cursor_execute", seen)

    # one transaction per batch, never more than `batch` commands in one
    assert sum(deleted_per_statement) == 5
    assert max(deleted_per_statement) <= batch
    assert len(deleted_per_statement) == -(-5 // batch)
    assert report == PruneReport(
        commands=len(seeded.gone_commands),
        calls=len(seeded.gone_calls),
        dead_letters=len(seeded.gone_dead_letters),
        before=CUT_OFF,
    )
    assert report.commands == 5
    assert report.calls == 10
    assert report.dead_letters == 2
    left = await _ids(engine)
    assert left["outbox"] == seeded.outbox - seeded.gone_commands
    assert left["calls"] == seeded.calls - seeded.gone_calls
    assert left["dead_letters"] == seeded.dead_letters - seeded.gone_dead_letters
    assert await _open_rows(engine) == open_rows  # untouched, column for column
    assert await _others(engine) == others

    again = await prune(engine, KEEP, batch=batch, now=NOW)
    assert (again.commands, again.calls, again.dead_letters) == (0, 0, 0)
    assert await _ids(engine) == left


async def test_a_dry_run_counts_the_same_and_deletes_nothing(store: OutboxStore) -> None:
    engine = store.engine
    await seed(engine)
    before = await _ids(engine)

    dry = await prune(engine, KEEP, dry_run=True, now=NOW)

    assert await _ids(engine) == before
    assert (dry.commands, dry.calls, dry.dead_letters) == (5, 10, 2)
    assert await prune(engine, KEEP, batch=3, now=NOW) == dry


async def test_the_cut_off_follows_older_than(store: OutboxStore) -> None:
    engine = store.engine
    await seed(engine)
    # a cut-off before every done_at: nothing is old enough
    nothing = await prune(engine, KEEP + timedelta(days=200), now=NOW)
    assert (nothing.commands, nothing.calls, nothing.dead_letters) == (0, 0, 0)
    # a cut-off after every time: all finished rows go but the one a held row names
    everything = await prune(engine, timedelta(0), now=NOW + timedelta(days=1))
    assert (everything.commands, everything.calls, everything.dead_letters) == (5 + 3, 10 + 2, 3)


def test_blocking_ids_reads_only_blocked_by_reasons() -> None:
    reasons = [BLOCKED.format(7), BLOCKED.format(12), "approval: 30 in 1 h", None, "blocked by #x"]
    assert blocking_ids(reasons) == {7, 12}


async def test_prune_refuses_a_naive_now_and_an_empty_batch(store: OutboxStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await prune(store.engine, KEEP, now=datetime(2026, 1, 1))  # naive on purpose
    with pytest.raises(ValueError, match="batch"):
        await prune(store.engine, KEEP, batch=0)


async def test_published_results_past_the_cut_off_go_and_unpublished_ones_stay(
    store: OutboxStore,
) -> None:
    from service.outbox.tables import RESULTS

    def row(n: int, published_at: datetime | None) -> dict[str, Any]:
        return {
            "event_id": f"r-{n}",
            "type": "ucaas.user.provisioned",
            "subject": "user:T:E1",
            "command_id": n,
            "topic": "ucaas.results",
            "cloudevent": {"id": f"r-{n}"},
            "created_at": OLD - timedelta(days=2),
            "published_at": published_at,
        }

    async with store.engine.begin() as conn:
        await conn.execute(RESULTS.insert(), [row(1, OLD), row(2, NEW), row(3, None)])
    dry = await prune(store.engine, KEEP, dry_run=True, now=NOW)
    assert dry.results == 1
    done = await prune(store.engine, KEEP, now=NOW, batch=1)
    assert done.results == 1
    async with store.engine.connect() as conn:
        kept = set((await conn.scalars(sa.select(RESULTS.c.event_id))).all())
    assert kept == {"r-2", "r-3"}  # published lately, and owed by the relay
