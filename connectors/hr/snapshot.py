"""The whole HR population at once, for reconcile: a SCIM ListResponse (RFC 7644 section
3.4.2) read from a file, or the latest record of each key of a compacted Kafka topic of
hr.user.* CloudEvents (a tombstone, a null value, says HR no longer has the person).

Resources are kept as they came (JSON values): each is mapped to a person on its own, so
one bad resource is reported and skipped rather than refusing the whole snapshot.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.events.cloudevents import Record
from connectors.events.kafka_security import KafkaConnection, as_connection, probe

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


class SnapshotError(ValueError):
    """The snapshot cannot be read at all: not JSON, not a ListResponse, no such topic."""


class ListResponse(BaseModel):
    """RFC 7644 section 3.4.2: `totalResults` is the number of results the query matched,
    `Resources` those on this page (paging: `startIndex`, 1-based, and `itemsPerPage`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    schemas: list[str]
    total_results: int = Field(alias="totalResults", ge=0)
    resources: list[Any] = Field(default_factory=list, alias="Resources")
    start_index: int | None = Field(None, alias="startIndex", ge=1)
    items_per_page: int | None = Field(None, alias="itemsPerPage", ge=0)

    @field_validator("schemas")
    @classmethod
    def _list_response(cls, value: list[str]) -> list[str]:
        if LIST_RESPONSE not in value:
            raise ValueError(f"schemas must name {LIST_RESPONSE}")
        return value


def list_response(document: bytes) -> ListResponse:
    """A ListResponse from JSON bytes, or SnapshotError saying what is wrong."""
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"not JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(parsed, dict):
        raise SnapshotError(f"a JSON {type(parsed).__name__}, not a SCIM ListResponse")
    try:
        return ListResponse.model_validate(parsed)
    except ValueError as exc:
        raise SnapshotError(f"not a SCIM ListResponse: {_first_error(exc)}") from None


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "document"
        return f"{where}: {first.get('msg')}"
    return str(exc).splitlines()[0]


# -- a compacted topic ---------------------------------------------------------------------
async def latest_records(
    bootstrap: KafkaConnection | str, topic: str, *, timeout_s: float = 60.0
) -> list[Record]:
    """Every partition of `topic` read from its beginning up to the end offsets it had when
    the read started (records written meanwhile are left for the next run), no consumer
    group; the last record of each key, tombstones included (value None). Keyless records
    are kept as they are: nothing can replace them. SnapshotError if the topic does not
    exist or the broker does not answer in time."""
    conn = as_connection(bootstrap)
    try:
        # first one bounded connection: a refused certificate or password is said as such
        await probe(conn)
    except ConnectionError as exc:  # KafkaUnreachableError, KafkaSettingsError: one line
        raise SnapshotError(f"topic {topic}: {exc}") from None
    try:
        return await asyncio.wait_for(_latest(conn, topic), timeout_s)
    except TimeoutError:
        raise SnapshotError(f"topic {topic}: not read within {timeout_s:.0f} s") from None
    except KafkaError as exc:
        raise SnapshotError(f"topic {topic} at {conn.bootstrap}: {type(exc).__name__}") from None


async def _latest(conn: KafkaConnection, topic: str) -> list[Record]:
    # "earliest": assign() starts a reset of its own, to the default "latest", which could
    # finish after seek_to_beginning() and leave the read at the end (an empty snapshot)
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
        latest: dict[bytes, Record] = {}
        keyless: list[Record] = []
        while left:
            batches = await consumer.getmany(*left, timeout_ms=500)
            for tp, records in batches.items():
                for r in records:
                    if r.offset >= end[tp]:
                        continue  # written after the read started
                    record = Record(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple((k, v or b"") for k, v in r.headers),
                        r.timestamp,
                    )
                    if r.key is None:
                        keyless.append(record)
                    elif _later(record, latest.get(r.key)):
                        latest[r.key] = record
            left = {tp for tp in left if await consumer.position(tp) < end[tp]}
        return sorted([*latest.values(), *keyless], key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def _later(record: Record, known: Record | None) -> bool:
    """One key stays in one partition (offsets order it); should it have moved, the later
    timestamp wins."""
    if known is None:
        return True
    if known.partition == record.partition:
        return record.offset > known.offset
    return (record.timestamp_ms or 0) >= (known.timestamp_ms or 0)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + 5.0
    while True:
        await consumer.topics()  # a metadata refresh
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise SnapshotError(f"topic {topic} does not exist (or has no partitions)")
        await asyncio.sleep(0.2)
