"""A topic read whole and records written back, for `dlq replay`: what the shell needs of
Kafka, nothing of the service.

`read_to_end` reads every partition from its beginning up to the end offsets it had when
the read started (records written meanwhile are left for the next run), with no consumer
group: nothing is committed, and the read does not wait for a group join.
`Republisher` produces records with a non-idempotent producer (Tansu takes no other),
`acks=1`, and answers, record by record, whether the broker acknowledged it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from connectors.events.cloudevents import Record
from connectors.events.kafka_security import KafkaConnection, as_connection, probe


class TopicError(ValueError):
    """The topic cannot be read or written: no such topic, the broker refused or did not
    answer in time. The message is one line, with no credential."""


@dataclass(frozen=True)
class Outgoing:
    """A record to produce: value and key as they were, headers in order."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


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
            for tp, records in batches.items():
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
                    for r in records
                    if r.offset < end[tp]  # not what was written after the read started
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


class Republisher:
    """`async with Republisher(conn) as out: await out.send(records)`."""

    def __init__(self, bootstrap: KafkaConnection | str) -> None:
        self.connection = as_connection(bootstrap)
        self.producer = AIOKafkaProducer(
            **self.connection.client_kwargs(),
            enable_idempotence=False,  # Tansu takes no idempotent producer; acks=1 is enough
            acks=1,
            linger_ms=5,
        )

    async def __aenter__(self) -> Republisher:
        try:
            await self.producer.start()
        except KafkaError as exc:
            await self.producer.stop()
            where = self.connection.bootstrap
            raise TopicError(f"producer at {where}: {type(exc).__name__}") from None
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.producer.stop()

    async def check(self, topic: str) -> None:
        """TopicError unless the broker knows `topic` (a send to a topic it does not know
        would wait for its metadata until the request times out)."""
        try:
            found = await asyncio.wait_for(
                self.producer.partitions_for(topic), self.connection.timeout_s
            )
        except (TimeoutError, KafkaError):
            found = None
        if not found:
            raise TopicError(f"topic {topic} does not exist (or has no partitions)")

    async def send(self, records: Sequence[Outgoing]) -> list[str | None]:
        """Produce `records` (one partition's in order: the producer keeps one request in
        flight per partition) and wait for each acknowledgement: per record, None when the
        broker acknowledged it, else why not (one line). After a record that could not
        be queued, none is sent."""
        futures: list[asyncio.Future[object]] = []
        refused: str | None = None
        for r in records:
            try:
                futures.append(
                    await self.producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                )
            except KafkaError as exc:
                refused = _why(exc)
                break
        answers = await asyncio.gather(*futures, return_exceptions=True)
        said = [_why(a) if isinstance(a, BaseException) else None for a in answers]
        return said + [refused or "not sent"] * (len(records) - len(said))


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)[:300]
