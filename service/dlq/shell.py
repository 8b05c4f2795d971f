"""`dlq replay`: read the dead-letter topic, decide (model.py), produce the replays, and
mark their `dead_letter` rows.

The topic is read from its beginning to the end offsets it had at the start, with no
consumer group. Replays go out in the topic's order, a chunk at a time; a chunk's rows are
marked `replayed_at` only after the broker acknowledged its records, and after a record
the broker did not take nothing more is sent (one entity's events stay in order).
At least once: a run that dies between the acknowledgement and the marking sends those
records again next time, and the inbox then recognises each event id already taken.
A real run (not --dry-run) is recorded in the audit log, after it, in its own transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.kafka_security import KafkaConnection
from connectors.events.replay import Outgoing, Republisher, read_to_end
from service.dlq.model import (
    Decision,
    Filters,
    Origin,
    Report,
    decide,
    letter_of,
    replayed,
    source_of,
)
from service.outbox import audit
from service.outbox.audit import Actor
from service.outbox.sql import chunks, insert_for
from service.outbox.tables import DEAD_LETTERS, utcnow

ACTION = "dlq-replay"  # the audit log's action


class NotADeadLetterTopicError(ValueError):
    pass


class Publisher(Protocol):
    """What is used of connectors/events/replay.py's Republisher (tests give a fake)."""

    async def check(self, topic: str) -> None: ...
    async def send(self, records: Sequence[Outgoing]) -> list[str | None]: ...


Publishing = Callable[[KafkaConnection], AbstractAsyncContextManager[Publisher]]


@dataclass(frozen=True)
class Row:
    id: int
    replayed_at: datetime | None


async def replay(
    engine: AsyncEngine,
    bootstrap: KafkaConnection,
    dlq_topic: str,
    *,
    suffix: str,
    filters: Filters,
    dry_run: bool,
    actor: Actor,
    publishing: Publishing = Republisher,
) -> Report:
    """Replay the dead letters of `dlq_topic` that `filters` admit and no run replayed."""
    source = source_of(dlq_topic, suffix)
    if source is None:
        raise NotADeadLetterTopicError(
            f"{dlq_topic}: not a dead-letter topic (their names end with {suffix!r})"
        )
    letters = [letter_of(r) for r in await read_to_end(bootstrap, dlq_topic)]
    rows = await rows_of(engine, source)
    decisions, left_out = decide(
        letters, {o: r.replayed_at for o, r in rows.items()}, filters, source
    )
    report = Report(dlq_topic, dry_run, decisions, left_out)
    if dry_run:
        return report
    try:
        if report.to_replay:
            await send_and_mark(engine, publishing(bootstrap), source, report, rows)
    except Exception as exc:
        with contextlib.suppress(Exception):  # the database may be what failed
            detail = f"{type(exc).__name__} after: {report.summary()}"
            await audit.record_alone(engine, actor, ACTION, dlq_topic, "failed", detail)
        raise
    result: audit.Result = "failed" if report.failed else "ok"
    await audit.record_alone(engine, actor, ACTION, dlq_topic, result, _detail(report, filters))
    return report


def _detail(report: Report, filters: Filters) -> str:
    said = [report.summary()]
    if filters.since is not None:
        said.append(f"since {filters.since.isoformat()}")
    if filters.errors:
        said.append(f"error {', '.join(sorted(filters.errors))}")
    if filters.include_unrecorded:
        said.append("unrecorded included")
    return "; ".join(said)


async def send_and_mark(
    engine: AsyncEngine,
    publisher: AbstractAsyncContextManager[Publisher],
    source: str,
    report: Report,
    rows: dict[Origin, Row],
) -> None:
    """Produce the report's replays a chunk at a time and mark each chunk's acknowledged
    ones; after a record not acknowledged, send nothing more. `report.failed` says why."""
    acked: set[str] = set()
    async with publisher as out:
        await out.check(source)
        for chunk in chunks(report.to_replay):
            answers = await out.send([replayed(d.letter) for d in chunk])
            taken = [d for d, why in zip(chunk, answers, strict=True) if why is None]
            report.marked += await mark(engine, taken, rows, utcnow())
            acked.update(d.letter.where for d in taken)
            for decision, why in zip(chunk, answers, strict=True):
                if why is not None:
                    report.failed[decision.letter.where] = why
            if report.failed:
                break
    for decision in report.to_replay:
        where = decision.letter.where
        if where not in acked and where not in report.failed:
            report.failed[where] = "not sent: an earlier record was not acknowledged"


async def rows_of(engine: AsyncEngine, source: str) -> dict[Origin, Row]:
    """The dead_letter rows of `source`, by origin."""
    table = DEAD_LETTERS
    query = sa.select(table.c.id, table.c.partition, table.c.offset, table.c.replayed_at).where(
        table.c.topic == source
    )
    async with engine.connect() as conn:
        found = (await conn.execute(query)).all()
    return {Origin(source, r.partition, r.offset): Row(r.id, r.replayed_at) for r in found}


async def mark(
    engine: AsyncEngine, acked: Sequence[Decision], rows: dict[Origin, Row], at: datetime
) -> int:
    """Set `replayed_at` on the rows of the acknowledged replays; a replay with no row
    (--include-unrecorded) gets one again, so the next run skips it. The number marked."""
    if not acked:
        return 0
    pairs = [(d, d.letter.origin) for d in acked if d.letter.origin is not None]
    ids = [rows[o].id for _, o in pairs if o in rows]
    unrecorded = [(d, o) for d, o in pairs if o not in rows]
    marked = 0
    async with engine.begin() as conn:
        for some in chunks(ids):
            done = await conn.execute(
                DEAD_LETTERS.update()
                .where(DEAD_LETTERS.c.id.in_(some), DEAD_LETTERS.c.replayed_at.is_(None))
                .values(replayed_at=at)
            )
            marked += done.rowcount
        if unrecorded:  # a row the consumers wrote meanwhile is marked all the same
            statement = insert_for(engine.dialect.name)(DEAD_LETTERS)
            statement = statement.on_conflict_do_update(
                index_elements=["topic", "partition", "offset"],
                set_={"replayed_at": statement.excluded.replayed_at},
            )
            await conn.execute(statement, [_row(d, o, at) for d, o in unrecorded])
            marked += len(unrecorded)
    return marked


def _row(decision: Decision, origin: Origin, at: datetime) -> dict[str, object]:
    letter = decision.letter
    return {
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "key": (letter.key or "")[:255] or None,
        "event_id": None,
        "error": (letter.error or "unknown")[:40],
        "reason": (letter.reason or "")[:1000],
        "at": letter.at or at,
        "replayed_at": at,
    }
