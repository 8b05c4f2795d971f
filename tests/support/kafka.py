"""Kafka for end-to-end tests: CloudEvents on the wire (structured JSON, from
service/devtools/local_broker.py, or binary `ce_` headers), and reading a topic back (a
dead-letter topic, say). Topics of one's own: `Topics` in service/devtools/local_broker.py.

The broker may be Tansu: topics are created up front, the producer is not idempotent,
and nothing here joins a consumer group (a reader assigns itself the partitions), so
reading costs no group join.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.events.cloudevents import Envelope, Record, parse
from connectors.events.kafka_security import KafkaConnection, as_connection
from connectors.events.lag import group_offsets as offsets_of
from service.devtools.local_broker import structured

Headers = list[tuple[str, bytes]]
Broker = KafkaConnection | str  # a bare host:port is plaintext; a connection carries TLS/SASL
SOURCE = "/tests/e2e"


# -- CloudEvents -------------------------------------------------------------------------------
def cloudevent(
    type_: str, subject: str, data: Any, *, event_id: str | None = None, source: str = SOURCE
) -> dict[str, Any]:
    """A CloudEvents 1.0 event as a dict (structured mode's JSON document)."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


_offsets = itertools.count()


def envelope(
    type_: str, subject: str, data: Any, *, event_id: str | None = None, source: str = SOURCE
) -> Envelope:
    """A CloudEvent as the consumers hand it to the intake: a structured-mode record of its
    topic (hr.events or crm.events), parsed."""
    document = cloudevent(type_, subject, data, event_id=event_id, source=source)
    topic = "hr.events" if type_.startswith("hr.") else "crm.events"
    return parse(Record(topic, 0, next(_offsets), subject.encode(), orjson.dumps(document)))


def binary(event: dict[str, Any]) -> tuple[bytes, Headers]:
    """Binary content mode: attributes in `ce_` headers, the data alone is the value."""
    headers: Headers = [
        (f"ce_{name}", str(value).encode())
        for name, value in event.items()
        if name not in ("data", "datacontenttype")
    ]
    headers.append(("content-type", event.get("datacontenttype", "application/json").encode()))
    return orjson.dumps(event["data"]), headers


@dataclass(frozen=True)
class Sent:
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: dict[str, str]


class EventProducer:
    """A non-idempotent producer (Tansu takes no other) that waits for each record."""

    def __init__(self, bootstrap: Broker) -> None:
        self.producer = AIOKafkaProducer(
            **as_connection(bootstrap).client_kwargs(),
            enable_idempotence=False,
            acks=1,
            linger_ms=0,
        )

    async def start(self) -> EventProducer:
        await self.producer.start()
        return self

    async def stop(self) -> None:
        await self.producer.stop()

    async def __aenter__(self) -> EventProducer:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def event(self, topic: str, event: dict[str, Any], *, mode: str = "structured") -> Sent:
        """Send a CloudEvent keyed by its subject (one entity stays in one partition)."""
        value, headers = binary(event) if mode == "binary" else structured(event)
        key = str(event.get("subject") or "").encode() or None
        return await self.raw(topic, value, key=key, headers=headers)

    async def raw(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Sent:
        meta = await self.producer.send_and_wait(topic, value, key=key, headers=list(headers))
        decoded = {k: v.decode("utf-8", "replace") for k, v in headers}
        return Sent(topic, meta.partition, meta.offset, value or b"", decoded)


# -- reading back ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


async def read_topic(
    bootstrap: Broker, topic: str, *, expect: int, timeout_s: float = 15.0
) -> list[ReadRecord]:
    """Every record of `topic` from the start, once at least `expect` are there (or the
    time is up: then what there is), in (partition, offset) order. No consumer group."""
    consumer = AIOKafkaConsumer(
        **as_connection(bootstrap).client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # assign()'s own reset must not end at the end
    )
    await consumer.start()
    found: list[ReadRecord] = []
    try:
        partitions = sorted(await _partitions(consumer, topic))
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while len(found) < expect and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found += [
                    ReadRecord(
                        r.partition,
                        r.offset,
                        r.key,
                        r.value or b"",
                        {k: (v or b"").decode("utf-8", "replace") for k, v in r.headers},
                    )
                    for r in records
                ]
    finally:
        await consumer.stop()
    return sorted(found, key=lambda r: (r.partition, r.offset))


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer.topics()  # a metadata refresh
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} has no partitions")


async def group_offsets(
    bootstrap: Broker, group: str, topics: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Per topic, (records committed by the group, records in the topic)."""
    found = dict.fromkeys(topics, (0, 0))
    for (topic, _), (done, end) in (await offsets_of(bootstrap, group, topics)).items():
        found[topic] = (found[topic][0] + done, found[topic][1] + end)
    return found


async def group_lag(bootstrap: Broker, group: str, topics: Sequence[str]) -> dict[str, int]:
    """Per topic, how many records the group has not committed yet."""
    offsets = await group_offsets(bootstrap, group, topics)
    return {topic: total - done for topic, (done, total) in offsets.items()}


async def rewind(
    bootstrap: Broker, group: str, topic: str, by: int, *, timeout_s: float = 30.0
) -> int:
    """Move the group's committed offsets of `topic` back by up to `by` records per
    partition, as a consumer that died between its database commit and its offset commit
    leaves them; the number of records the group will be given again.

    Only a member may commit for a group that has (or had) members: this joins the group
    (after the dead member's session expires, the partitions are all ours), commits, and
    leaves. No record is taken."""
    consumer = AIOKafkaConsumer(
        topic,
        **as_connection(bootstrap).client_kwargs(),
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"never joined group {group}"
            await asyncio.sleep(0.1)
        partitions = sorted(consumer.assignment())
        committed = {tp: await consumer.committed(tp) or 0 for tp in partitions}
        back = {tp: max(0, done - by) for tp, done in committed.items() if done}
        if back:
            await consumer.commit(back)
        for tp, offset in back.items():
            assert await consumer.committed(tp) == offset, f"{tp} was not rewound"
        return sum(committed[tp] - offset for tp, offset in back.items())
    finally:
        await consumer.stop()  # leaves the group
