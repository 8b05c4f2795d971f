"""Kafka records to CloudEvents envelopes: structured and binary mode, and each way a
record can fail (the error code is what the dead-letter topic gets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from connectors.events.cloudevents import (
    MAX_RECORD_BYTES,
    InvalidRecordError,
    Record,
    parse,
)

DATA = {"userName": "ann@acme.example", "tenant": "CRM-1"}
EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "ev-1",
    "source": "/hr/workday",
    "type": "hr.user.joined",
    "subject": "E1",
    "time": "2026-11-29T09:00:00Z",
    "datacontenttype": "application/json",
    "data": DATA,
}
HEADERS: tuple[tuple[str, bytes], ...] = (
    ("ce_specversion", b"1.0"),
    ("ce_id", b"ev-2"),
    ("ce_source", b"/hr/workday"),
    ("ce_type", b"hr.user.updated"),
    ("ce_subject", b"E2"),
    ("content-type", b"application/json"),
)


def record(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> Record:
    return Record("hr.events", 3, 42, b"E1", value, headers)


def structured(**changes: Any) -> Record:
    document = {**EVENT, **changes}
    return record(orjson.dumps({k: v for k, v in document.items() if v is not ...}))


def binary(value: bytes = b'{"a": 1}', **headers: bytes | None) -> Record:
    merged = dict(HEADERS)
    merged.update({k: v for k, v in headers.items() if v is not None})
    for name in [k for k, v in headers.items() if v is None]:
        merged.pop(name, None)
    return record(value, tuple(merged.items()))


def error_of(rec: Record) -> InvalidRecordError:
    with pytest.raises(InvalidRecordError) as caught:
        parse(rec)
    return caught.value


# -- valid events -------------------------------------------------------------------------
def test_structured_event_keeps_its_attributes_and_data() -> None:
    rec = structured()
    envelope = parse(rec)
    assert envelope.id == "ev-1"
    assert envelope.source == "/hr/workday"
    assert envelope.type == "hr.user.joined"
    assert envelope.subject == "E1"
    assert envelope.time == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    assert envelope.data == DATA
    assert envelope.record is rec
    assert envelope.key == "E1"


def test_structured_event_without_optional_attributes() -> None:
    envelope = parse(structured(subject=..., time=..., datacontenttype=...))
    assert envelope.subject is None
    assert envelope.time is None  # not "now": the producer did not say when
    assert envelope.data == DATA


def test_structured_event_with_an_offset_time_and_an_extension() -> None:
    envelope = parse(structured(time="2026-11-29T11:00:00+02:00", traceparent="00-abc"))
    assert envelope.time == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_structured_content_type_wins_over_stray_ce_headers() -> None:
    rec = Record(
        "hr.events",
        0,
        0,
        None,
        orjson.dumps(EVENT),
        (("content-type", b"application/cloudevents+json"), ("ce_id", b"other")),
    )
    envelope = parse(rec)
    assert envelope.id == "ev-1"
    assert envelope.data == DATA


def test_binary_event_from_ce_headers() -> None:
    envelope = parse(binary(orjson.dumps(DATA), ce_time=b"2026-11-29T09:00:00Z"))
    assert envelope.id == "ev-2"
    assert envelope.source == "/hr/workday"
    assert envelope.type == "hr.user.updated"
    assert envelope.subject == "E2"
    assert envelope.time == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    assert envelope.data == DATA


def test_binary_headers_are_case_insensitive_and_other_headers_may_be_binary() -> None:
    headers = tuple((name.upper(), value) for name, value in HEADERS)
    headers += (("traceparent-bin", b"\xff\x00\xfe"),)
    rec = Record("hr.events", 0, 0, b"\xff\xfe", orjson.dumps(DATA), headers)
    envelope = parse(rec)
    assert (envelope.id, envelope.subject, envelope.data) == ("ev-2", "E2", DATA)
    assert envelope.time is None


def test_binary_event_without_content_type_is_json_and_may_have_no_data() -> None:
    assert parse(binary(b'{"x": [1]}', **{"content-type": None})).data == {"x": [1]}
    assert parse(binary(b"")).data is None


# -- not JSON -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(None, id="no-value"),
        pytest.param(b"{not json", id="broken"),
        pytest.param(b'{"id": NaN}', id="nan"),
        pytest.param(b'\xff\xfe{"a": 1}', id="invalid-utf8"),
        pytest.param(b"[" * 2000 + b"]" * 2000, id="deeply-nested-array"),
        pytest.param(b'{"a":' * 1100 + b"1" + b"}" * 1100, id="deeply-nested-object"),
    ],
)
def test_not_json(value: bytes | None) -> None:
    error = error_of(record(value))
    assert error.error == "not_json"
    assert error.reason
    assert "\n" not in error.reason


@pytest.mark.parametrize(
    ("value", "content_type"),
    [
        pytest.param(b"{nope", b"application/json", id="broken-body"),
        pytest.param(b"\xff\xfe", b"application/json", id="invalid-utf8-body"),
        pytest.param(b"hello", b"text/plain", id="text-body"),
    ],
)
def test_binary_data_that_is_not_json(value: bytes, content_type: bytes) -> None:
    assert error_of(binary(value, **{"content-type": content_type})).error == "not_json"


# -- not a CloudEvent ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rec", "said"),
    [
        pytest.param(record(b"[1, 2]"), "list", id="json-array"),
        pytest.param(record(b'"text"'), "str", id="json-string"),
        pytest.param(record(b"42"), "int", id="json-number"),
        pytest.param(structured(id=...), "id", id="missing-id"),
        pytest.param(structured(id=""), "id", id="empty-id"),
        pytest.param(structured(id=7), "id", id="id-not-a-string"),
        pytest.param(structured(source=...), "source", id="missing-source"),
        pytest.param(structured(type=...), "type", id="missing-type"),
        pytest.param(structured(specversion=...), "specversion", id="missing-specversion"),
        pytest.param(structured(specversion="0.3"), "specversion", id="specversion-0.3"),
        pytest.param(structured(specversion="2.0"), "specversion", id="specversion-2.0"),
        pytest.param(structured(time="yesterday"), "time", id="time-not-rfc3339"),
        pytest.param(structured(time="2026-11-29T09:00:00"), "time", id="time-without-zone"),
        pytest.param(structured(time=12), "time", id="time-a-number"),
        pytest.param(structured(data=..., data_base64="aGk="), "data_base64", id="data-base64"),
        pytest.param(structured(subject=5), "subject", id="subject-not-a-string"),
        pytest.param(structured(**{"bad-name": "x"}), "bad-name", id="bad-extension-name"),
        pytest.param(structured(id="x" * 256), "id", id="id-too-long"),
        pytest.param(structured(source="/" * 256), "source", id="source-too-long"),
        pytest.param(structured(subject="E" * 256), "subject", id="subject-too-long"),
        pytest.param(binary(ce_id=None), "ce_id", id="binary-missing-id"),
        pytest.param(binary(ce_specversion=None), "ce_specversion", id="binary-no-specversion"),
        pytest.param(binary(ce_specversion=b"0.3"), "specversion", id="binary-specversion"),
        pytest.param(binary(ce_source=None), "source", id="binary-missing-source"),
        pytest.param(binary(ce_type=None), "type", id="binary-missing-type"),
        pytest.param(binary(ce_time=b"soon"), "", id="binary-bad-time"),
        pytest.param(binary(ce_subject=b"\xff"), "", id="binary-header-not-utf8"),
    ],
)
def test_not_a_cloudevent(rec: Record, said: str) -> None:
    error = error_of(rec)
    assert error.error == "not_cloudevent"
    assert said in error.reason
    assert "\n" not in error.reason
    assert str(error).startswith("not_cloudevent: ")


def test_id_of_255_characters_is_taken() -> None:
    assert parse(structured(id="x" * 255)).id == "x" * 255


# -- too large ----------------------------------------------------------------------------
def test_too_large_before_any_parsing() -> None:
    error = error_of(record(b"{" * (MAX_RECORD_BYTES + 1)))
    assert error.error == "too_large"
    assert str(MAX_RECORD_BYTES) in error.reason


def test_largest_record_is_parsed() -> None:
    padding = "p" * (MAX_RECORD_BYTES - len(orjson.dumps({**EVENT, "data": {"p": ""}})))
    value = orjson.dumps({**EVENT, "data": {"p": padding}})
    assert len(value) == MAX_RECORD_BYTES
    assert parse(record(value)).data == {"p": padding}


def test_reason_is_bounded() -> None:
    error = InvalidRecordError("not_json", "x" * 2000)
    assert len(error.reason) == 500
