"""dlq replay's marks (service/dlq/shell.py) on SQLite and PostgreSQL: the rows of the
source topic read by origin; acknowledged replays marked once; a replay without a row
(--include-unrecorded) given one, marked, even when the consumers write it meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Record
from service.dlq.model import Decision, Origin, letter_of
from service.dlq.shell import mark, rows_of
from service.outbox.tables import DEAD_LETTERS

AT = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
EARLIER = AT - timedelta(days=1)


def row(topic: str, offset: int, replayed_at: datetime | None = None) -> dict[str, object]:
    return {
        "topic": topic,
        "partition": 0,
        "offset": offset,
        "key": "E1",
        "error": "invalid_data",
        "reason": "no e-mail",
        "at": EARLIER,
        "replayed_at": replayed_at,
    }


def acked(offset: int, *, recorded: bool) -> Decision:
    headers = {
        "dlq.error": "invalid_data",
        "dlq.reason": "no e-mail",
        "dlq.topic": "hr.events",
        "dlq.partition": "0",
        "dlq.offset": str(offset),
        "dlq.at": EARLIER.isoformat(),
    }
    record = Record(
        "hr.events.dlq", 0, offset, b"E1", b"{}", tuple((k, v.encode()) for k, v in headers.items())
    )
    return Decision(letter_of(record), None, recorded)


async def replayed_at(engine: AsyncEngine) -> dict[tuple[str, int], datetime | None]:
    query = sa.select(DEAD_LETTERS.c.topic, DEAD_LETTERS.c.offset, DEAD_LETTERS.c.replayed_at)
    async with engine.connect() as conn:
        return {(r.topic, r.offset): r.replayed_at for r in (await conn.execute(query)).all()}


async def test_replays_are_marked_once_and_unrecorded_ones_get_their_row_back(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            DEAD_LETTERS.insert(),
            [row("hr.events", 5), row("hr.events", 6, EARLIER), row("crm.events", 5)],
        )
    rows = await rows_of(engine, "hr.events")
    assert set(rows) == {Origin("hr.events", 0, 5), Origin("hr.events", 0, 6)}
    assert rows[Origin("hr.events", 0, 6)].replayed_at == EARLIER

    marked = await mark(engine, [acked(5, recorded=True), acked(9, recorded=False)], rows, AT)
    assert marked == 2
    assert await replayed_at(engine) == {
        ("hr.events", 5): AT,
        ("hr.events", 6): EARLIER,  # an earlier run's mark stays
        ("hr.events", 9): AT,  # its row again, marked
        ("crm.events", 5): None,  # another topic's
    }
    assert await mark(engine, [acked(5, recorded=True)], rows, AT + timedelta(hours=1)) == 0
    assert (await replayed_at(engine))[("hr.events", 5)] == AT

    # A row the consumers wrote after the read, unmarked: the replay's row marks it.
    async with engine.begin() as conn:
        await conn.execute(DEAD_LETTERS.insert(), [row("hr.events", 12)])
    assert await mark(engine, [acked(12, recorded=False)], rows, AT) == 1
    assert (await replayed_at(engine))[("hr.events", 12)] == AT
