"""Kafka records to CloudEvents 1.0 envelopes, in structured (JSON) or binary (`ce_`
headers) content mode, with the `cloudevents` library doing the attribute validation.

Anything that is not a usable CloudEvent raises `InvalidRecordError` with a short error
code (what went to the dead-letter topic and why) and a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

MAX_RECORD_BYTES = 1024 * 1024
_FORMAT = JSONFormat()


class InvalidRecordError(Exception):
    """The record cannot be taken: `error` names the kind of problem, `reason` says what."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(f"{error}: {reason}")
        self.error = error
        self.reason = reason[:500]


@dataclass(frozen=True)
class Record:
    """A Kafka record as the consumer got it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    subject: str | None
    time: datetime | None
    data: Any
    record: Record

    @property
    def key(self) -> str | None:
        return self.record.key.decode("utf-8", "replace") if self.record.key else None


def _attributes(event: CloudEvent) -> dict[str, Any]:
    return event.get_attributes()


def parse(record: Record) -> Envelope:
    """The CloudEvent in a record, or InvalidRecordError."""
    value = record.value or b""
    if len(value) > MAX_RECORD_BYTES:
        raise InvalidRecordError("too_large", f"{len(value)} bytes; at most {MAX_RECORD_BYTES}")
    headers = dict(record.headers)
    try:
        if any(name.lower().startswith("ce_") for name in headers):
            event = _binary(headers, record.key, value)
        else:
            event = _structured(value)
    except InvalidRecordError:
        raise
    except BaseCloudEventException as exc:
        raise InvalidRecordError("not_cloudevent", _first_line(exc)) from None
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRecordError("not_cloudevent", _first_line(exc)) from None
    attributes = _attributes(event)
    return Envelope(
        id=str(attributes["id"]),
        source=str(attributes["source"]),
        type=str(attributes["type"]),
        subject=attributes.get("subject"),
        time=attributes.get("time"),
        data=event.get_data(),
        record=record,
    )


def _structured(value: bytes) -> CloudEvent:
    try:
        document = orjson.loads(value)  # refuses nesting deeper than 1024
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError("not_json", _first_line(exc)) from None
    if not isinstance(document, dict):
        raise InvalidRecordError(
            "not_cloudevent", f"a JSON {type(document).__name__}, not an object"
        )
    if "specversion" not in document:
        raise InvalidRecordError("not_cloudevent", "no specversion attribute")
    data = document.pop("data", None)
    if "data_base64" in document:
        raise InvalidRecordError("not_cloudevent", "data_base64: binary data is not accepted")
    if isinstance(document.get("time"), str):
        try:
            document["time"] = datetime.fromisoformat(document["time"].replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRecordError(
                "not_cloudevent", "time is not an RFC 3339 timestamp"
            ) from None
    return CloudEvent(document, data)


def _binary(headers: dict[str, bytes], key: bytes | None, value: bytes) -> CloudEvent:
    message = KafkaMessage(headers=headers, key=key, value=value)
    event = from_binary(message, _FORMAT, CloudEvent)
    if not isinstance(event, CloudEvent):  # pragma: no cover - the factory makes one
        raise InvalidRecordError("not_cloudevent", "not a CloudEvents 1.0 event")
    return event


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
