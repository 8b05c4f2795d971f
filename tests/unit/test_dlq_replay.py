"""dlq replay's model: which dead letters go back, and the record that goes.

Dead letters are made as the consumers make them (`DeadLetter.headers`), plus what the
dead-letter producer (faststream) adds to every record. Pure: no broker, no database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.events.cloudevents import Record, parse
from service.cli.audit import since_of
from service.dlq.model import (
    REPLAYED_FROM,
    Decision,
    Filters,
    Origin,
    Report,
    Skip,
    decide,
    letter_of,
    replayed,
    source_of,
)
from service.entrypoints.consumers import DeadLetter

SOURCE = "hr.events"
DLQ = "hr.events.dlq"
NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
STRUCTURED = ("content-type", b"application/cloudevents+json")
EVENT = b'{"specversion": "1.0", "id": "e-1", "source": "/hr", "type": "hr.user.joined"}'


def original(offset: int, *, key: bytes | None = b"E1", headers: tuple = (STRUCTURED,)) -> Record:
    return Record(SOURCE, 2, offset, key, EVENT, headers, 1_700_000_000_000)


def dead_letter(
    record: Record,
    dlq_offset: int,
    *,
    error: str = "invalid_data",
    at: datetime | None = None,
    extra: dict[str, str] | None = None,
) -> Record:
    """The record as the consumers send it to the dead-letter topic (and faststream's
    producer adds its correlation_id, and an empty content-type when there was none)."""
    headers = DeadLetter(record, error, "first_name is required").headers()
    if at is not None:
        headers["dlq.at"] = at.isoformat()
    sent = {"content-type": "", **headers, "correlation_id": "c0ffee", **(extra or {})}
    return Record(
        DLQ,
        0,
        dlq_offset,
        record.key,
        record.value,
        tuple((k, v.encode()) for k, v in sent.items()),
        1_700_000_001_000,
    )


def rows(*offsets: int, replayed_at: datetime | None = None) -> dict[Origin, datetime | None]:
    return {Origin(SOURCE, 2, o): replayed_at for o in offsets}


def decided(letters: list[Record], known: dict, filters: Filters | None = None) -> list[Decision]:
    decisions, _ = decide([letter_of(r) for r in letters], known, filters or Filters(), SOURCE)
    return decisions


# -- reading a dead letter -------------------------------------------------------------------
def test_a_dead_letter_says_where_it_came_from_why_and_when() -> None:
    letter = letter_of(dead_letter(original(7), 3, at=NOW))
    assert letter.origin == Origin(SOURCE, 2, 7)
    assert str(letter.origin) == "hr.events/2/7"
    assert (letter.error, letter.reason) == ("invalid_data", "first_name is required")
    assert letter.at == NOW
    assert letter.where == "hr.events.dlq/0/3"
    assert letter.key == "E1"
    assert not letter.value_dropped


def test_a_record_without_the_dlq_headers_has_no_origin_and_its_own_time() -> None:
    foreign = Record(DLQ, 1, 0, b"k", b"{}", (("dlq.topic", b"hr.events"),), 1_700_000_000_000)
    letter = letter_of(foreign)
    assert letter.origin is None
    assert letter.at == datetime.fromtimestamp(1_700_000_000, UTC)


# -- the replayed record -----------------------------------------------------------------------
def test_the_replay_has_the_key_value_and_own_headers_and_says_where_it_was() -> None:
    record = original(7, headers=(STRUCTURED, ("traceparent", b"00-ab-cd-01")))
    out = replayed(letter_of(dead_letter(record, 3)))
    assert out.topic == SOURCE
    assert (out.key, out.value) == (record.key, record.value)
    assert out.headers == (
        STRUCTURED,
        ("traceparent", b"00-ab-cd-01"),
        (REPLAYED_FROM, b"hr.events.dlq/0/3"),
    )
    assert parse(Record(SOURCE, 0, 0, out.key, out.value, out.headers)).id == "e-1"


def test_a_binary_event_without_content_type_is_not_given_the_empty_one() -> None:
    """faststream adds `content-type: ""` to a dead letter of a record that had none: kept,
    the replayed binary-mode event would be refused as not JSON."""
    headers = (("ce_specversion", b"1.0"), ("ce_id", b"b-1"), ("ce_source", b"/hr"))
    headers += (("ce_type", b"hr.user.joined"),)
    record = Record(SOURCE, 2, 9, b"E1", b'{"a": 1}', headers)
    letter = dead_letter(record, 4)
    assert ("content-type", b"") in letter.headers
    out = replayed(letter_of(letter))
    assert [name for name, _ in out.headers] == [*(n for n, _ in headers), REPLAYED_FROM]
    assert parse(Record(SOURCE, 0, 0, out.key, out.value, out.headers)).id == "b-1"


def test_a_record_refused_again_after_a_replay_carries_one_replayed_from_header() -> None:
    first = replayed(letter_of(dead_letter(original(7), 3)))
    again = Record(SOURCE, 2, 40, first.key, first.value, first.headers)
    out = replayed(letter_of(dead_letter(again, 12)))
    assert [v for k, v in out.headers if k == REPLAYED_FROM] == [b"hr.events.dlq/0/12"]


def test_a_keyless_record_goes_back_keyless() -> None:
    out = replayed(letter_of(dead_letter(original(7, key=None), 3)))
    assert out.key is None


def test_a_record_with_no_origin_cannot_be_replayed() -> None:
    with pytest.raises(ValueError, match="not a dead letter"):
        replayed(letter_of(Record(DLQ, 0, 5, b"k", b"{}")))


# -- which go back -----------------------------------------------------------------------------
def test_a_recorded_dead_letter_not_replayed_yet_goes_back() -> None:
    (d,) = decided([dead_letter(original(7), 0)], rows(7))
    assert d.replays and d.recorded


def test_one_already_replayed_is_skipped() -> None:
    (d,) = decided([dead_letter(original(7), 0)], rows(7, replayed_at=NOW))
    assert d.skip is Skip.REPLAYED


def test_one_without_a_row_goes_back_only_when_asked() -> None:
    letters = [dead_letter(original(7), 0)]
    (d,) = decided(letters, {})
    assert d.skip is Skip.NO_ROW
    (d,) = decided(letters, {}, Filters(include_unrecorded=True))
    assert d.replays and not d.recorded


def test_the_same_record_dead_lettered_twice_goes_back_once() -> None:
    """A batch taken again after a failure dead-letters its records again (one row)."""
    first, copy = decided([dead_letter(original(7), 0), dead_letter(original(7), 1)], rows(7))
    assert first.replays
    assert copy.skip is Skip.COPY


def test_records_not_of_the_topic_or_without_value_are_skipped() -> None:
    other = Record("crm.events", 0, 7, b"C", b"{}")
    too_large = dead_letter(original(8), 2, extra={"dlq.value_dropped": "2000000 bytes"})
    letters = [dead_letter(other, 0), Record(DLQ, 0, 1, b"k", b"{}"), too_large]
    skips = [d.skip for d in decided(letters, rows(7, 8))]
    assert skips == [Skip.OTHER_TOPIC, Skip.NOT_A_DEAD_LETTER, Skip.VALUE_DROPPED]


def test_since_and_error_leave_letters_out_and_count_them() -> None:
    old = dead_letter(original(1), 0, at=NOW - timedelta(hours=5))
    recent = dead_letter(original(2), 1, at=NOW - timedelta(minutes=10))
    unknown = dead_letter(original(3), 2, at=NOW, error="unknown_type")
    letters = [letter_of(r) for r in (old, recent, unknown)]
    since = since_of("2h", NOW)
    decisions, left_out = decide(letters, rows(1, 2, 3), Filters(since=since), SOURCE)
    assert [d.letter.origin.offset for d in decisions if d.letter.origin] == [2, 3]
    assert left_out == 1
    only = Filters(since=since, errors=frozenset({"invalid_data"}))
    decisions, left_out = decide(letters, rows(1, 2, 3), only, SOURCE)
    assert [d.letter.where for d in decisions] == ["hr.events.dlq/0/1"]
    assert left_out == 2


def test_the_source_topic_is_the_dead_letter_topic_without_its_suffix() -> None:
    assert source_of("hr.events.dlq", ".dlq") == "hr.events"
    assert source_of("hr.events", ".dlq") is None
    assert source_of(".dlq", ".dlq") is None


# -- what is said ------------------------------------------------------------------------------
def test_the_report_counts_and_words_each_outcome() -> None:
    letters = [
        dead_letter(original(1), 0),
        dead_letter(original(2), 1),
        dead_letter(original(3), 2),
    ]
    known = {**rows(1, 2), **rows(3, replayed_at=NOW)}
    decisions, _ = decide([letter_of(r) for r in letters], known, Filters(), SOURCE)
    dry = Report(DLQ, True, decisions, left_out=1)
    assert (
        dry.summary()
        == "would replay 2 of 4 dead letter(s); skipped 1 replayed; 1 left out by --since/--error"
    )
    assert [dry.outcome(d) for d in decisions] == ["would replay", "would replay", "skipped"]
    assert dry.as_json()["replayed"] == 0 and dry.as_json()["would_replay"] == 2

    real = Report(
        DLQ, False, decisions, left_out=0, failed={"hr.events.dlq/0/1": "KafkaTimeoutError"}
    )
    assert real.replayed == 1
    assert [real.outcome(d) for d in decisions] == ["replayed", "failed", "skipped"]
    line = real.line(decisions[1])
    assert line == {
        "record": "hr.events.dlq/0/1",
        "origin": "hr.events/2/2",
        "key": "E1",
        "error": "invalid_data",
        "at": line["at"],
        "outcome": "failed",
        "why": "KafkaTimeoutError",
    }
    assert real.line(decisions[2])["why"] == "already replayed"
    assert "1 not acknowledged by the broker" in real.summary()
