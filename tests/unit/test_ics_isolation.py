"""Bad events isolated (issue 14): an event that cannot be used is skipped with its UID and
a one-line reason, and the rest of the feed is planned. Only a body that is not iCalendar,
is truncated or is over the limits is refused whole.

Each case puts the bad event between two good ones and checks both: the good ones are
planned (exactly), the bad one is skipped with its UID, reason and kind.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import recurring_ical_events
from icalendar import Calendar

from connectors.calendar import isolate as isolate_module
from connectors.calendar.fetch import FeedError
from connectors.calendar.ics import ParsedFeed, ParseLimits, Skipped, parse_feed
from connectors.calendar.isolate import KINDS
from connectors.calendar.occurrences import Occurrences
from service.observability import metrics

NOW = datetime(2026, 10, 1, tzinfo=UTC)
BEFORE = ("DTSTART:20261005T100000Z", "DURATION:PT1H", "SUMMARY:Before")
AFTER = ("DTSTART:20261020T100000Z", "DURATION:PT1H", "SUMMARY:After")


def calendar(*events: str, head: str = "", eol: str = "\r\n") -> bytes:
    text = f"BEGIN:VCALENDAR{eol}VERSION:2.0{eol}PRODID:-//tests//EN{eol}" + head
    return (text + "".join(events) + f"END:VCALENDAR{eol}").encode()


def event(uid: str | None, *lines: str, eol: str = "\r\n") -> str:
    named = () if uid is None else (f"UID:{uid}",)
    return "".join(f"{line}{eol}" for line in ("BEGIN:VEVENT", *named, *lines, "END:VEVENT"))


def parse(body: bytes, days: float = 30, **limits: Any) -> ParsedFeed:
    return parse_feed(body, start=NOW, end=NOW + timedelta(days=days), limits=ParseLimits(**limits))


def between(*bad: str) -> bytes:
    return calendar(event("before@x", *BEFORE), *bad, event("after@x", *AFTER))


def assert_good_ones_planned(parsed: ParsedFeed) -> None:
    assert [(o.uid, o.start) for o in parsed.occurrences] == [
        ("before@x", datetime(2026, 10, 5, 10, tzinfo=UTC)),
        ("after@x", datetime(2026, 10, 20, 10, tzinfo=UTC)),
    ]
    assert parsed.events == 2 and parsed.plannable


def only_skipped(parsed: ParsedFeed) -> Skipped:
    [skipped] = parsed.skipped
    assert "\n" not in skipped.reason and len(skipped.reason) <= 300
    assert skipped.kind in KINDS
    return skipped


# --- each rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "kind", "reason"),
    [
        (("SUMMARY:Lunch",), "no_dtstart", "no DTSTART"),
        (
            ("DTSTART;;VALUE=DATE-TIME:20261009T093000", "SUMMARY:Two semicolons"),
            "no_dtstart",
            "no DTSTART (a line could not be read: Content line could not be parsed",
        ),
        (("DTSTART:20261345T250000Z",), "bad_value", "DTSTART: Wrong datetime format"),
        (("DTSTART:2026",), "bad_value", "DTSTART: Expected datetime, date, or time"),
        (("DTSTART:20261008T100000Z", "DTEND:20261032T100000Z"), "bad_value", "DTEND: "),
        (("DTSTART:20261008T100000Z", "DURATION:soon"), "bad_value", "DURATION: "),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=DAILY", "EXDATE:2026garbage"),
            "bad_value",
            "EXDATE: ",
        ),
        (
            ("DTSTART:20261008T100000Z", "RDATE:20261009T1000"),
            "bad_value",
            "RDATE: ",
        ),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=WEEKLY;BYDAY=XX"),
            "bad_rrule",
            "RRULE: Expected weekday abbreviation, got: XX",
        ),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=DAILY;BYDAY=MO, TU, WE"),
            "bad_rrule",
            "RRULE: Expected weekday abbreviation",
        ),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=FORTNIGHTLY"),
            "bad_rrule",
            "RRULE: Expected frequency, got: FORTNIGHTLY",
        ),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=DAILY;INTERVAL=0"),
            "bad_rrule",
            "RRULE INTERVAL=0: not a positive number",
        ),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=SECONDLY"),
            "rrule_too_fast",
            "RRULE FREQ=SECONDLY repeats too fast for meetings",
        ),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=MINUTELY;INTERVAL=15"),
            "rrule_too_fast",
            "RRULE FREQ=MINUTELY repeats too fast for meetings",
        ),
        (
            ("DTSTART:19000101T090000Z", "RRULE:FREQ=HOURLY"),
            "rrule_too_long",
            "RRULE would step through about 1,111,767 instants from 1900-01-01 (at most 1,000,000)",
        ),
        (
            ("DTSTART;TZID=Customized Time Zone:20261008T100000", "DURATION:PT1H"),
            "unknown_tzid",
            "DTSTART: unknown time zone 'Customized Time Zone' (no usable VTIMEZONE, no known",
        ),
        (
            ("DTSTART:20261008T100000Z", "DTEND;TZID=Mars/Olympus_Mons:20261008T110000"),
            "unknown_tzid",
            "DTEND: unknown time zone 'Mars/Olympus_Mons'",
        ),
        (
            ("DTSTART:20261008T100000Z", "RRULE:FREQ=DAILY", "EXDATE;TZID=Nowhere:20261009T100000"),
            "unknown_tzid",
            "EXDATE: unknown time zone 'Nowhere'",
        ),
    ],
    ids=[
        "no-dtstart",
        "dtstart-line-unreadable",
        "impossible-date",
        "short-date",
        "bad-dtend",
        "bad-duration",
        "bad-exdate",
        "bad-rdate",
        "byday-xx",
        "byday-with-spaces",
        "unknown-freq",
        "interval-0",
        "secondly",
        "minutely",
        "hourly-since-1900",
        "unknown-tzid",
        "unknown-tzid-on-dtend",
        "unknown-tzid-on-exdate",
    ],
)
def test_an_unusable_event_is_skipped_and_the_rest_planned(
    lines: tuple[str, ...], kind: str, reason: str
) -> None:
    started = time.perf_counter()
    parsed = parse(between(event("bad@x", *lines)))
    assert time.perf_counter() - started < 2.0  # a runaway rule is never expanded
    assert_good_ones_planned(parsed)
    skipped = only_skipped(parsed)
    assert (skipped.uid, skipped.kind) == ("bad@x", kind)
    assert skipped.reason.startswith(reason), skipped.reason
    assert parsed.skipped_uids == {"bad@x"}


def test_the_same_calendar_without_the_bad_event_plans_the_same() -> None:
    """The bad event changes nothing for the others (keys, times, zones, titles)."""
    alone = parse(calendar(event("before@x", *BEFORE), event("after@x", *AFTER)))
    mixed = parse(between(event("bad@x", "DTSTART:20261345T250000Z")))
    assert mixed.occurrences == alone.occurrences


def test_zones_without_vtimezone_that_have_a_known_name_are_used() -> None:
    """IANA and Windows names without a VTIMEZONE block, and UTC as a TZID: resolved."""
    parsed = parse(
        calendar(
            event("iana@x", "DTSTART;TZID=America/New_York:20261013T110000", "DURATION:PT1H"),
            event("windows@x", "DTSTART;TZID=Pacific Standard Time:20261014T090000"),
            event("quoted@x", 'DTSTART;TZID="W. Europe Standard Time":20261015T100000'),
            event("utc@x", "DTSTART;TZID=UTC:20261016T100000"),
        )
    )
    assert parsed.skipped == ()
    assert [(o.uid, o.start.hour, o.zone) for o in parsed.occurrences] == [
        ("iana@x", 15, "America/New_York"),
        ("windows@x", 16, "America/Los_Angeles"),
        ("quoted@x", 8, "Europe/Berlin"),
        ("utc@x", 10, "UTC"),
    ]


@pytest.mark.parametrize(
    ("tzid", "zone"),
    [
        ("Empty Zone", ""),
        (
            "Customized Time Zone",
            "BEGIN:STANDARD\r\nDTSTART:garbage\r\nTZOFFSETTO:+0100\r\n"
            "TZOFFSETFROM:+0100\r\nEND:STANDARD\r\n",
        ),
    ],
    ids=["no-standard-or-daylight", "bad-dtstart"],
)
def test_a_vtimezone_icalendar_cannot_build_skips_only_its_events(tzid: str, zone: str) -> None:
    """icalendar refuses the whole file for one bad VTIMEZONE; the zone is dropped and
    the events in it are skipped as in a zone nobody defined."""
    head = f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n{zone}END:VTIMEZONE\r\n"
    lines = (f"DTSTART;TZID={tzid}:20261008T100000", "DURATION:PT1H")
    parsed = parse(
        calendar(
            event("before@x", *BEFORE),
            event("zoned@x", *lines),
            event("after@x", *AFTER),
            head=head,
        )
    )
    assert_good_ones_planned(parsed)
    skipped = only_skipped(parsed)
    assert (skipped.uid, skipped.kind) == ("zoned@x", "unknown_tzid")
    assert skipped.reason == (
        f"DTSTART: unknown time zone {tzid!r} (no usable VTIMEZONE, no known name)"
    )


def test_a_broken_override_puts_its_whole_series_aside() -> None:
    """One UID is one event: a bad instance (here its DTEND) skips the series, whose
    meetings are then kept as they were rather than half updated."""
    body = between(
        event("series@x", "DTSTART:20261006T090000Z", "DURATION:PT30M", "RRULE:FREQ=DAILY"),
        event(
            "series@x",
            "RECURRENCE-ID:20261008T090000Z",
            "DTSTART:20261008T150000Z",
            "DTEND:20261008T1530",
        ),
    )
    parsed = parse(body)
    assert_good_ones_planned(parsed)
    skipped = only_skipped(parsed)
    assert (skipped.uid, skipped.kind) == ("series@x", "bad_value")
    assert skipped.reason.startswith("DTEND: ")


def test_events_without_a_uid_are_skipped_one_by_one() -> None:
    body = between(event(None, "SUMMARY:No start"), event(None, "DTSTART:2026"))
    parsed = parse(body)
    assert_good_ones_planned(parsed)
    assert [(s.uid, s.kind) for s in parsed.skipped] == [("", "no_dtstart"), ("", "bad_value")]
    assert str(parsed.skipped[0]) == "(no UID): no DTSTART"
    assert parsed.skipped_uids == frozenset()


def test_crlf_lf_and_folded_lines_give_the_same_result() -> None:
    lines = (
        "DTSTART;TZID=Europe/Berlin:20261008T100000",
        "DURATION:PT1H",
        "SUMMARY:A title long enough to be folded over two lines by a careful produc",
        " er",
        "RRULE:FREQ=WEEKLY;BYDAY=X",
        " X",
    )
    results = []
    for eol in ("\r\n", "\n"):
        body = calendar(
            event("good@x", "DTSTART:20261005T100000Z", eol=eol),
            event("folded@x", *lines, eol=eol),
            eol=eol,
        )
        parsed = parse(body)
        results.append(parsed)
        assert [o.uid for o in parsed.occurrences] == ["good@x"]
        assert only_skipped(parsed).reason == "RRULE: Expected weekday abbreviation, got: XX"
    assert results[0] == results[1]


# --- several RRULEs, duplicate UIDs: not faults ----------------------------------------------


def test_two_rrules_are_expanded_as_recurring_ical_events_does() -> None:
    """RFC 2445 allowed several RRULEs, RFC 5545 discourages them; producers still write
    them. The library expands their union (DTSTART counted once); so do we."""
    lines = (
        "DTSTART:20261005T140000Z",
        "DURATION:PT1H",
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4",
        "RRULE:FREQ=WEEKLY;BYDAY=WE;COUNT=2",
    )
    body = calendar(event("two@x", *lines))
    parsed = parse(body)
    assert parsed.skipped == ()
    expected = sorted(
        o["DTSTART"].dt
        for o in recurring_ical_events.of(Calendar.from_ical(body)).between(
            NOW, NOW + timedelta(days=30)
        )
    )
    assert [o.start for o in parsed.occurrences] == expected
    assert [o.start.day for o in parsed.occurrences] == [5, 7, 12, 14, 19, 26]
    assert len({o.key for o in parsed.occurrences}) == 6


def test_one_of_two_rrules_too_fast_skips_the_event() -> None:
    lines = ("DTSTART:20261008T100000Z", "RRULE:FREQ=DAILY", "RRULE:FREQ=MINUTELY")
    parsed = parse(between(event("mixed@x", *lines)))
    assert_good_ones_planned(parsed)
    assert only_skipped(parsed).kind == "rrule_too_fast"


def test_two_copies_of_a_uid_the_higher_sequence_wins_as_in_the_library() -> None:
    old = ("DTSTART:20261006T100000Z", "SUMMARY:Old copy", "SEQUENCE:3")
    new = ("DTSTART:20261007T100000Z", "SUMMARY:New copy", "SEQUENCE:4")
    for order in ((old, new), (new, old)):
        parsed = parse(calendar(*(event("dup@x", *lines) for lines in order)))
        assert parsed.skipped == ()
        assert [(o.key, o.summary) for o in parsed.occurrences] == [("dup@x", "New copy")]
    same = ("DTSTART:20261008T100000Z", "SUMMARY:Second of equals")
    parsed = parse(calendar(event("dup@x", *old[:2]), event("dup@x", *same)))
    assert [o.summary for o in parsed.occurrences] == ["Old copy"]  # the first of equals


# --- VEVENTs whose text icalendar refuses ----------------------------------------------------


def test_an_unclosed_vevent_is_skipped_and_the_others_planned() -> None:
    broken = "".join(
        f"{line}\r\n"
        for line in (
            "BEGIN:VEVENT",
            "UID:never-closed-with-a-uid-long-enough-to-be-folded-over-two-lines@exampl",
            " e.org",
            "DTSTART:20261008T100000Z",
        )
    )
    parsed = parse(calendar(event("before@x", *BEFORE), broken, event("after@x", *AFTER)))
    assert_good_ones_planned(parsed)
    skipped = only_skipped(parsed)
    assert (
        skipped.uid == "never-closed-with-a-uid-long-enough-to-be-folded-over-two-lines@example.org"
    )
    assert skipped.reason == "broken VEVENT: no END:VEVENT before the next BEGIN:VEVENT"
    assert skipped.kind == "broken_vevent"


def test_a_vevent_cut_off_by_end_vcalendar_is_skipped() -> None:
    body = calendar(
        event("before@x", *BEFORE), event("after@x", *AFTER), "BEGIN:VEVENT\r\nUID:x\r\n"
    )
    parsed = parse(body)
    assert_good_ones_planned(parsed)
    assert only_skipped(parsed) == Skipped(
        "x", "broken VEVENT: no END:VEVENT before END:VCALENDAR", "broken_vevent"
    )


def test_a_stray_line_between_components_is_dropped() -> None:
    """icalendar refuses a calendar with a line that is no content line between its
    components (tests/fixtures/ics/real/broken_stray_line.ics); the events are fine."""
    parsed = parse(between("garbage without a colon\r\n"))
    assert_good_ones_planned(parsed)
    assert parsed.skipped == ()


# --- the libraries refusing one series -------------------------------------------------------


def test_an_expansion_error_skips_that_series_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Occurrences.of

    def failing(self: Occurrences, item: Any) -> Any:
        if str(item.uid) == "bad@x":
            raise ValueError("year 10000 is out of range\nsecond line")
        return real(self, item)

    monkeypatch.setattr(Occurrences, "of", failing)
    body = between(event("bad@x", "DTSTART:20261006T090000Z", "RRULE:FREQ=DAILY;COUNT=3"))
    parsed = parse(body)
    assert_good_ones_planned(parsed)
    assert only_skipped(parsed) == Skipped(
        "bad@x", "invalid dates or recurrence: year 10000 is out of range", "expansion"
    )


def test_a_calendar_the_library_refuses_whole_is_tried_uid_by_uid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = recurring_ical_events.CalendarQuery

    def picky(calendar: Any, **kwargs: Any) -> Any:
        if any(str(e.get("UID")) == "bad@x" for e in calendar.walk("VEVENT")):
            raise recurring_ical_events.InvalidCalendar("something the library dislikes")
        return real(calendar, **kwargs)

    monkeypatch.setattr(isolate_module.recurring_ical_events, "CalendarQuery", picky)
    parsed = parse(between(event("bad@x", "DTSTART:20261006T090000Z")))
    assert_good_ones_planned(parsed)
    assert only_skipped(parsed) == Skipped(
        "bad@x", "invalid dates or recurrence: something the library dislikes", "expansion"
    )


# --- refused whole: not iCalendar, truncated, over the limits --------------------------------


@pytest.mark.parametrize(
    ("body", "limits", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Maintenance</body></html>", {}, "not iCalendar"),
        (between()[:-40], {}, "truncated: no END:VCALENDAR at the end"),
        (between(event("bad@x", "SUMMARY:x")), {"max_events": 2}, "3 events; at most 2"),
        (
            between(event("daily@x", "DTSTART:20261001T090000Z", "RRULE:FREQ=DAILY")),
            {"max_occurrences": 20},
            "expands to more than 20 occurrences",
        ),
    ],
    ids=["html", "truncated", "too-many-events", "too-many-occurrences"],
)
def test_only_bodies_over_the_limits_or_not_icalendar_are_refused_whole(
    body: bytes, limits: dict[str, int], reason: str
) -> None:
    with pytest.raises(FeedError) as caught:
        parse(body, **limits)
    assert reason in caught.value.reason


def test_skipped_events_count_towards_the_event_limit_and_nothing_else() -> None:
    bad = [event(f"bad-{n}@x", "SUMMARY:no start") for n in range(5)]
    parsed = parse(between(*bad), max_events=7)
    assert_good_ones_planned(parsed)
    assert [s.uid for s in parsed.skipped] == [f"bad-{n}@x" for n in range(5)]


def test_plannable_means_something_could_be_used() -> None:
    assert parse(calendar()).plannable  # an empty calendar: nothing to skip either
    assert not parse(calendar(event("bad@x", "SUMMARY:x"))).plannable
    # usable but outside the window: plannable, to nothing
    later = parse(between(event("bad@x", "SUMMARY:x")), days=1)
    assert later.occurrences == () and later.events == 2 and later.plannable


def test_the_metric_knows_every_kind() -> None:
    assert set(metrics.SKIP_KINDS) == set(KINDS)
