"""Kafka records to CloudEvents 1.0 envelopes, in structured (JSON) or binary (`ce_`
headers) content mode, with the `cloudevents` library doing the attribute validation.

Anything that is not a usable CloudEvent raises `InvalidRecordError` with a short error
code (what went to the dead-letter topic and why) and a one-line reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

MAX_RECORD_BYTES = 1024 * 1024
MAX_ATTRIBUTE_CHARS = 255
# Events are a few levels deep. orjson reads up to 1024 levels but writes at most 254, and
# the intake writes the data again (its fingerprint): a record nested between the two
# failed its whole batch, again and again. Refused here, before anything is written.
MAX_DEPTH = 64
STRUCTURED_CONTENT_TYPE = "application/cloudevents"
_KEPT = ("id", "source", "subject")
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
    headers = {name.lower(): raw for name, raw in record.headers}
    try:
        if _is_binary(headers):
            event, given_time = _binary(headers, value)
        else:
            event, given_time = _structured(value)
    except InvalidRecordError:
        raise
    except BaseCloudEventException as exc:
        raise InvalidRecordError("not_cloudevent", _first_line(exc)) from None
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRecordError("not_cloudevent", _first_line(exc)) from None
    attributes = _attributes(event)
    for name in _KEPT:  # the inbox keeps these in columns of 255 characters
        found = attributes.get(name)
        if isinstance(found, str) and len(found) > MAX_ATTRIBUTE_CHARS:
            raise InvalidRecordError(
                "not_cloudevent", f"{name} is longer than {MAX_ATTRIBUTE_CHARS} characters"
            )
        if isinstance(found, str) and has_control(found):
            # a NUL, say, is valid JSON but PostgreSQL refuses it in a text column
            raise InvalidRecordError("not_cloudevent", f"{name} holds control characters")
    return Envelope(
        id=str(attributes["id"]),
        source=str(attributes["source"]),
        type=str(attributes["type"]),
        subject=attributes.get("subject"),
        # the library fills a missing time with "now": not what the producer said
        time=attributes.get("time") if given_time else None,
        data=event.get_data(),
        record=record,
    )


def _is_binary(headers: dict[str, bytes]) -> bool:
    """Binary mode has `ce_` headers; a structured record says so in its content type
    (it may carry `ce_` headers too, which the JSON body then overrides)."""
    content_type = headers.get("content-type", b"").decode("latin-1").strip().lower()
    if content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return False
    return any(name.startswith("ce_") for name in headers)


def _structured(value: bytes) -> tuple[CloudEvent, bool]:
    document = _json(value)
    if not isinstance(document, dict):
        raise InvalidRecordError(
            "not_cloudevent", f"a JSON {type(document).__name__}, not an object"
        )
    for required in ("specversion", "id"):  # the library would default them
        if required not in document:
            raise InvalidRecordError("not_cloudevent", f"no {required} attribute")
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
    given_time = "time" in document
    return CloudEvent(document, data), given_time


def _binary(headers: dict[str, bytes], value: bytes) -> tuple[CloudEvent, bool]:
    for required in ("ce_specversion", "ce_id"):  # the library would default them
        if required not in headers:
            raise InvalidRecordError("not_cloudevent", f"no {required} header")
    content_type = headers.get("content-type", b"application/json").decode("latin-1").lower()
    if "json" not in content_type:
        raise InvalidRecordError("not_json", f"data of type {content_type!r}, not JSON")
    # The data is ours to decode: the library would hand back a string that is not JSON.
    data = _json(value) if value.strip() else None
    # Only the CloudEvents headers, and no key: the library decodes every header it is
    # given and the key as UTF-8, and other headers (tracing, for one) may be binary.
    ours = {k: v for k, v in headers.items() if k.startswith("ce_") or k == "content-type"}
    message = KafkaMessage(headers=ours, key=None, value=b"")
    event = from_binary(message, _FORMAT, CloudEvent)
    if not isinstance(event, CloudEvent):  # pragma: no cover - the factory makes one
        raise InvalidRecordError("not_cloudevent", "not a CloudEvents 1.0 event")
    return CloudEvent(event.get_attributes(), data), "ce_time" in headers


def _json(value: bytes) -> Any:
    try:
        document = orjson.loads(value)  # refuses nesting deeper than 1024
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError("not_json", _first_line(exc)) from None
    # Nesting needs an opening bracket per level: a record with fewer brackets than the
    # limit (every HR or CRM event) cannot nest too deep, and is not walked.
    if value.count(b"{") + value.count(b"[") > MAX_DEPTH and too_deep(document, MAX_DEPTH):
        raise InvalidRecordError("not_json", f"nested deeper than {MAX_DEPTH} levels")
    return document


def too_deep(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (a loop, not recursion)."""
    if not isinstance(document, dict | list):
        return False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def has_control(text: str) -> bool:
    """Control characters (NUL, escapes, newlines) have no place in ids and names."""
    return _CONTROL.search(text) is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
