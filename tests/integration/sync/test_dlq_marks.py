"""dlq replay's marks (service/dlq/shell.py) on SQLite and PostgreSQL: the rows of the
source topic read by origin; acknowledged replays marked once; a replay without a row
(--include-unrecorded) given one, marked, even when the consumers write it meanwhile; a
record the broker does not acknowledge left unmarked, and nothing sent after its chunk
(a fake broker: the real one is in tests/e2e/test_dlq_replay.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Record
from connectors.events.replay import Outgoing
from service.dlq.model import REPLAYED_FROM, Decision, Filters, Origin, Report, decide, letter_of
from service.dlq.shell import mark, rows_of, send_and_mark
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
    # what `dead list` and /api/dead-letters show: the replay's mark beside the reason
    from service.outbox.store import OutboxStore
    from service.settings import Settings
    from service.views import Operations

    shown = await Operations(engine, OutboxStore(engine), Settings()).dead_letters()
    assert {(d.topic, d.offset): d.replayed_at for d in shown} == await replayed_at(engine)
    assert await mark(engine, [acked(5, recorded=True)], rows, AT + timedelta(hours=1)) == 0
    assert (await replayed_at(engine))[("hr.events", 5)] == AT

    # A row the consumers wrote after the read, unmarked: the replay's row marks it.
    async with engine.begin() as conn:
        await conn.execute(DEAD_LETTERS.insert(), [row("hr.events", 12)])
    assert await mark(engine, [acked(12, recorded=False)], rows, AT) == 1
    assert (await replayed_at(engine))[("hr.events", 12)] == AT


class Broker:
    """Acknowledges every record but the `refused`-th (counted from 1)."""

    def __init__(self, refused: int) -> None:
        self.refused = refused
        self.sent: list[Outgoing] = []
        self.checked: list[str] = []

    async def __aenter__(self) -> Broker:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def check(self, topic: str) -> None:
        self.checked.append(topic)

    async def send(self, records: Sequence[Outgoing]) -> list[str | None]:
        answers: list[str | None] = []
        for record in records:
            self.sent.append(record)
            refused = len(self.sent) == self.refused
            answers.append("KafkaTimeoutError: no answer" if refused else None)
        return answers


async def test_only_acknowledged_replays_are_marked_and_nothing_is_sent_after_a_refusal(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.outbox.sql.CHUNK", 2)  # chunks [1, 2], [3, 4], [5]
    async with engine.begin() as conn:
        await conn.execute(DEAD_LETTERS.insert(), [row("hr.events", o) for o in range(1, 6)])
    rows = await rows_of(engine, "hr.events")
    letters = [acked(o, recorded=True).letter for o in range(1, 6)]
    decisions, _ = decide(
        letters, {o: r.replayed_at for o, r in rows.items()}, Filters(), "hr.events"
    )
    report = Report("hr.events.dlq", False, decisions, 0)
    broker = Broker(refused=3)

    await send_and_mark(engine, broker, "hr.events", report, rows)

    assert broker.checked == ["hr.events"]
    assert [dict(r.headers)[REPLAYED_FROM] for r in broker.sent] == [
        f"hr.events.dlq/0/{o}".encode() for o in (1, 2, 3, 4)
    ]
    assert report.failed == {
        "hr.events.dlq/0/3": "KafkaTimeoutError: no answer",
        "hr.events.dlq/0/5": "not sent: an earlier record was not acknowledged",
    }
    assert (report.replayed, report.marked) == (3, 3)
    marks = await replayed_at(engine)
    assert [o for o in range(1, 6) if marks[("hr.events", o)] is not None] == [1, 2, 4]
    assert [report.outcome(d) for d in decisions] == [
        "replayed",
        "replayed",
        "failed",
        "replayed",
        "failed",
    ]
