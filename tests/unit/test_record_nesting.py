"""Nesting: a record orjson reads (up to 1024 levels) but cannot write again (over 254)
once failed the intake's fingerprint, and so its whole batch, for ever. Records nested
deeper than MAX_DEPTH are refused as they are parsed; those within it go all the way."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from connectors.events.cloudevents import (
    MAX_DEPTH,
    InvalidRecordError,
    Record,
    parse,
    too_deep,
)
from service.intake.shell import fingerprint

BINARY = (
    ("ce_specversion", b"1.0"),
    ("ce_id", b"e-1"),
    ("ce_source", b"/tests"),
    ("ce_type", b"hr.user.joined"),
    ("content-type", b"application/json"),
)


def nested(levels: int) -> bytes:
    """An object `levels` deep, written by hand: orjson would not write it."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def structured(data: bytes) -> Record:
    head = b'{"specversion":"1.0","id":"e-1","source":"/tests","type":"hr.user.joined","data":'
    return Record("hr.events", 0, 0, None, head + data + b"}")


@pytest.mark.parametrize("levels", [MAX_DEPTH, 255, 300, 1000])
def test_data_nested_deeper_than_the_limit_is_refused(levels: int) -> None:
    # The envelope is one level, so its data may be MAX_DEPTH - 1 deep.
    for record in (structured(nested(levels)), Record("hr", 0, 0, None, nested(levels), BINARY)):
        depth = levels + (record.value or b"").startswith(b'{"specversion"')
        if depth <= MAX_DEPTH:
            continue
        with pytest.raises(InvalidRecordError) as caught:
            parse(record)
        assert (caught.value.error, caught.value.reason) == (
            "not_json",
            f"nested deeper than {MAX_DEPTH} levels",
        )


def test_data_within_the_limit_is_parsed_and_fingerprinted() -> None:
    for record in (
        structured(nested(MAX_DEPTH - 1)),
        Record("hr", 0, 0, None, nested(MAX_DEPTH), BINARY),
    ):
        envelope = parse(record)
        assert len(fingerprint(envelope)) == 64  # orjson writes what was let through


def test_an_extension_attribute_counts_too() -> None:
    value = b'{"specversion":"1.0","id":"e","source":"s","type":"t","ext":' + nested(300) + b"}"
    with pytest.raises(InvalidRecordError):
        parse(Record("hr", 0, 0, None, value))


@pytest.mark.parametrize(
    ("document", "limit", "deep"),
    [
        (1, 1, False),
        ([], 1, False),
        ([[]], 1, True),
        ({"a": {"b": [1]}}, 3, False),
        ({"a": {"b": [1]}}, 2, True),
        ([1, "x", {"k": []}], 3, False),
    ],
)
def test_depth(document: Any, limit: int, deep: bool) -> None:
    assert too_deep(document, limit) is deep


def test_depth_of_a_very_deep_document_needs_no_recursion() -> None:
    document: Any = []
    for _ in range(100_000):
        document = [document]
    assert too_deep(document, MAX_DEPTH)
    assert orjson.loads(b"[" * 1000 + b"]" * 1000)  # what orjson still reads, for reference


@pytest.mark.parametrize("brackets_in_strings", [0, MAX_DEPTH * 3])
def test_the_bracket_count_shortcut_decides_as_the_walk_does(brackets_in_strings: int) -> None:
    # A record with few brackets is not walked; one with many (wide, or brackets inside
    # strings) is, and only real nesting over the limit is refused.
    text = "{[" * brackets_in_strings
    wide = orjson.dumps({"name": text, "items": [{"k": [i]} for i in range(MAX_DEPTH)]})
    parse(structured(wide))
    deep = nested(MAX_DEPTH + 1)[:-1] + b',"name":' + orjson.dumps(text) + b"}"
    with pytest.raises(InvalidRecordError):
        parse(Record("hr", 0, 0, None, deep, BINARY))
