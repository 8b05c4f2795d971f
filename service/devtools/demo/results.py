"""The demo's results check: the result events on the topic, next to what was done.

Read back from the broker (not from the `result` table): one distinct event id per
command done or dead, each naming its command. A repeat of an id (a re-send) is allowed;
a second id for one command, or a command without a result, is not.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.kafka_security import KafkaConnection
from service.devtools.demo.summary import Row
from service.devtools.local_broker import read_all
from service.outbox.tables import OUTBOX, RESULTS
from service.results.model import HELD

WAIT_S = 20.0


async def published_everything(engine: AsyncEngine) -> bool:
    """Until the relay has published every result written (or the wait is over)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            left = await conn.scalar(
                sa.select(sa.func.count()).where(RESULTS.c.published_at.is_(None))
            )
        if not left:
            return True
        await asyncio.sleep(0.2)
    return False


async def results_row(
    engine: AsyncEngine, connection: KafkaConnection, topics: tuple[str, ...]
) -> Row:
    relayed = await published_everything(engine)
    async with engine.connect() as conn:
        finished = set(
            await conn.scalars(sa.select(OUTBOX.c.id).where(OUTBOX.c.status.in_(("done", "dead"))))
        )
    ids: dict[int, set[str]] = defaultdict(set)
    for value in await read_all(connection, topics):
        event = orjson.loads(value)
        if event.get("type") != HELD and isinstance(event.get("commandid"), int):
            ids[int(str(event["commandid"]))].add(str(event["id"]))
    distinct = sum(len(found) for found in ids.values())
    ok = relayed and set(ids) == finished and all(len(found) == 1 for found in ids.values())
    return Row("results published (one id per command done)", str(len(finished)), str(distinct), ok)
