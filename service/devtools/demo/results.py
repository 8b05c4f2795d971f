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
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.kafka_security import KafkaConnection
from service.devtools.demo.summary import Row
from service.outbox.tables import OUTBOX, RESULTS
from service.results.model import HELD

WAIT_S = 20.0


async def read_all(connection: KafkaConnection, topics: tuple[str, ...]) -> list[dict[str, object]]:
    """Every record of `topics` up to the end offsets seen at the start, as JSON."""
    consumer = AIOKafkaConsumer(
        **connection.client_kwargs(), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    found: list[dict[str, object]] = []
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and await _behind(consumer, ends):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [orjson.loads(r.value) for r in records if r.value]
    finally:
        await consumer.stop()
    return found


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return any([await consumer.position(tp) < end for tp, end in ends.items()])


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
    for event in await read_all(connection, topics):
        if event.get("type") != HELD and isinstance(event.get("commandid"), int):
            ids[int(str(event["commandid"]))].add(str(event["id"]))
    distinct = sum(len(found) for found in ids.values())
    ok = relayed and set(ids) == finished and all(len(found) == 1 for found in ids.values())
    return Row("results published (one id per command done)", str(len(finished)), str(distinct), ok)
