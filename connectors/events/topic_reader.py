"""A topic read whole: every partition from its beginning up to the end offsets it had
when the read started (records written meanwhile may come along), with no
consumer group: nothing is committed, and the read does not wait for a group join. What
`dlq replay`, `reconcile --hr-snapshot kafka:TOPIC` and the results checks read with.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from connectors.events.cloudevents import Record
from connectors.events.kafka_security import KafkaConnection, as_connection, probe


class TopicError(ValueError):
    """The topic cannot be read or written: no such topic, the broker refused or did not
    answer in time. The message is one line, with no credential."""


async def read_to_end(
    bootstrap: KafkaConnection | str, topic: str, *, timeout_s: float = 60.0
) -> list[Record]:
    """Every record of `topic`, in (partition, offset) order, up to the end offsets seen
    at the start. TopicError if the topic does not exist or the broker does not answer."""
    conn = as_connection(bootstrap)
    try:
        await probe(conn)  # a refused certificate or password is said as such
    except ConnectionError as exc:  # KafkaUnreachableError, KafkaSettingsError: one line
        raise TopicError(f"topic {topic}: {exc}") from None
    try:
        return await asyncio.wait_for(_read(conn, topic), timeout_s)
    except TimeoutError:
        raise TopicError(f"topic {topic}: not read within {timeout_s:.0f} s") from None
    except KafkaError as exc:
        raise TopicError(f"topic {topic} at {conn.bootstrap}: {type(exc).__name__}") from None


async def _read(conn: KafkaConnection, topic: str) -> list[Record]:
    # "earliest": assign() starts a reset of its own, to the default "latest", which could
    # finish after seek_to_beginning() and leave the read at the end (a third of the reads
    # found nothing on Tansu)
    consumer = AIOKafkaConsumer(
        **conn.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        left = {tp for tp in partitions if end[tp] > await consumer.position(tp)}
        found: list[Record] = []
        while left:
            batches = await consumer.getmany(*left, timeout_ms=500)
            for records in batches.values():
                found += [
                    Record(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple((k, v or b"") for k, v in r.headers),
                        r.timestamp,
                    )
                    # Not cut at the end offset: Tansu 0.6 answers the end of a partition
                    # whose last batch holds several records as short of its last record
                    # (seen: 5 where a sixth was there). A record written meanwhile may
                    # come along; every reader here takes that as the next run would.
                    for r in records
                ]
            left = {tp for tp in left if await consumer.position(tp) < end[tp]}
        return sorted(found, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + 5.0
    while True:
        await consumer.topics()  # a metadata refresh
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise TopicError(f"topic {topic} does not exist (or has no partitions)")
        await asyncio.sleep(0.2)
