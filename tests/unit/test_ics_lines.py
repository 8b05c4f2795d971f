"""lines.py reads a content line's head once per distinct head: it must give what
icalendar's own walk over the whole line gives, for every line, and the same calendar.

Compared over every line of the test feeds (real producers' exports: Google, Outlook
with Windows zone names, Exchange, Apple, Nextcloud, Thunderbird, broken ones), of the
benchmark's generated feed, of the pre-scan's random feeds, and over lines made to sit
on the edges of the walk (quotes, backslashes, colons in values and parameters, no
colon, empty parameters, lower case, spaces, RFC 6868 escapes, lists)."""

from __future__ import annotations

import importlib.util
import random
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import icalendar
import pytest
from icalendar.parser import Contentline, Contentlines

from connectors.calendar.lines import _Line, lines_of, parse_text
from tests.unit.test_ics_prescan import random_feed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ics"
FEEDS = sorted(FIXTURES.glob("*.ics")) + sorted((FIXTURES / "real").glob("*.ics"))
EDGES = [
    "DTSTART;TZID=Europe/Paris:20261001T100000",
    'DTSTART;TZID="W. Europe Standard Time":20261001T100000',
    "SUMMARY:a: b: c",
    "SUMMARY:with\\, comma\\; and \\n newline",
    'DESCRIPTION;ALTREP="cid:part1.0001@example.org":The Fall\'98 Wild',
    'ATTENDEE;CN="Doe, John: Esq";PARTSTAT=DECLINED:mailto:john@acme.example',
    "ATTENDEE;CN=Odd^'quoted^';ROLE=REQ-PARTICIPANT:mailto:odd@acme.example",
    "ATTENDEE;MEMBER=a@x,b@x;PARTSTAT=ACCEPTED:mailto:c@x",
    "attendee;cn=lower;partstat=accepted:MAILTO:Bob@Partner.example",
    "DTSTART ; TZID = Europe/Paris :20261001T100000",
    "DTSTART;TZID=Europe/Paris;:20261001T100000",
    "DTSTART;:20261001T100000",
    "DTSTART;;TZID=X:20261001T100000",
    "DTSTART;TZID:20261001T100000",
    "DTSTART;TZID=:20261001T100000",
    ":no name",
    "no colon at all",
    "NAME;PARAM=1",
    "X-EMPTY:",
    "X-EMPTY;X-P=1:",
    "BAD NAME:value",
    "BAD_NAME:value",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20261231T235959Z",
    "URL:http://example.com/a%3Ab?c=d;e",
    "X-ODD;X-P=a\\,b:value",
    "X-ODD;X-P=a:b:value",
    "GEO:37.386013;-122.082932",
    "ÜMLAUT:value",
    "SUMMARY;LANGUAGE=de:Grüße",
]


def _bench_lines() -> list[str]:
    path = Path(__file__).resolve().parents[2] / "bench" / "calendar_feeds.py"
    spec = importlib.util.spec_from_file_location("bench_calendar_feeds", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    body: bytes = module.body_of(module.generate(400, date(2026, 10, 1)))
    return [str(line) for line in Contentlines.from_ical(body) if line]


def _feed_lines() -> list[str]:
    found: list[str] = []
    for path in FEEDS:
        found += [str(line) for line in Contentlines.from_ical(path.read_bytes()) if line]
    for seed in range(6):
        found += [str(line) for line in Contentlines.from_ical(random_feed(seed)) if line]
    return found


def _parts(line: Contentline) -> tuple[str, Any, Any]:
    try:
        name, params, value = line.raw_parts()
    except ValueError as exc:
        return "raised", type(exc), str(exc)
    return name, (type(params), list(params.items())), (type(value), value)


def _mutated(rng: random.Random, line: str) -> str:
    """The line with a character of the walk's own inserted or changed somewhere."""
    at = rng.randrange(len(line) + 1)
    return line[:at] + rng.choice(':;="\\,^ \t') + line[at + rng.randint(0, 1) :]


def test_every_line_of_the_test_feeds_gives_the_same_parts() -> None:
    lines = _feed_lines() + _bench_lines() + EDGES
    assert len(lines) > 5_000
    for text in lines:
        for strict in (False, True):
            assert _parts(_Line(text, strict=strict)) == _parts(Contentline(text, strict=strict))


def test_lines_with_the_walks_own_characters_anywhere_give_the_same_parts() -> None:
    rng = random.Random(17)
    base = _feed_lines()[:3000] + EDGES
    for _ in range(20_000):
        text = _mutated(rng, rng.choice(base))
        if rng.random() < 0.3:
            text = _mutated(rng, text)
        assert _parts(_Line(text)) == _parts(Contentline(text)), text


def test_a_property_owns_its_parameters() -> None:
    first, second = (_Line("DTSTART;TZID=Europe/Paris:2026100{n}T100000") for n in (1, 2))
    one, other = first.raw_parts()[1], second.raw_parts()[1]
    assert one == other and one is not other


@pytest.mark.parametrize("path", FEEDS, ids=lambda p: p.name)
def test_every_test_feed_parses_to_the_same_calendar(path: Path) -> None:
    body = path.read_bytes()
    expected: Any = None
    try:
        expected = icalendar.Calendar.from_ical(body)
    except Exception as exc:
        error: Exception = exc
    if expected is None:
        with pytest.raises(type(error), match=re.escape(str(error))):
            parse_text(body)
        return
    found = parse_text(body)
    assert found == expected
    assert [(c.name, c.errors) for c in found.walk()] == [
        (c.name, c.errors) for c in expected.walk()
    ]
    assert [str(line) for line in lines_of(body)] == list(Contentlines.from_ical(body))


def test_the_benchmark_feed_parses_to_the_same_calendar() -> None:
    body = "\r\n".join(_bench_lines()) + "\r\n"
    assert parse_text(body) == icalendar.Calendar.from_ical(body)
