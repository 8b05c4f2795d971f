"""The whole HR population at once, for reconcile: a SCIM ListResponse (RFC 7644 section
3.4.2) read from a file, or the latest record of each key of a compacted Kafka topic of
hr.user.* CloudEvents (a tombstone, a null value, says HR no longer has the person).

Resources are kept as they came (JSON values): each is mapped to a person on its own, so
one bad resource is reported and skipped rather than refusing the whole snapshot.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.events.cloudevents import Record
from connectors.events.kafka_security import KafkaConnection
from connectors.events.topic_reader import TopicError, read_to_end

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
    try:
        records = await read_to_end(bootstrap, topic, timeout_s=timeout_s)
    except TopicError as exc:
        raise SnapshotError(str(exc)) from None
    latest: dict[bytes, Record] = {}
    keyless: list[Record] = []
    for record in records:
        if record.key is None:
            keyless.append(record)
        elif _later(record, latest.get(record.key)):
            latest[record.key] = record
    return sorted([*latest.values(), *keyless], key=lambda r: (r.partition, r.offset))


def _later(record: Record, known: Record | None) -> bool:
    """One key stays in one partition (offsets order it); should it have moved, the later
    timestamp wins."""
    if known is None:
        return True
    if known.partition == record.partition:
        return record.offset > known.offset
    return (record.timestamp_ms or 0) >= (known.timestamp_ms or 0)
