"""The pre-scan (prescan.py, lean.py) and the reuse of parsed VEVENTs (reuse.py) change
how much work a parse does, never what it gives.

The main check is a comparison: random feeds (single events and series of every kind the
pre-scan reads or refuses to read: past and future, zones by IANA or Windows name or
unknown, floating, all-day, DURATION, COUNT, UNTIL of each form, BYDAY, INTERVAL,
EXDATE, RDATE, overrides moved into the window, THISANDFUTURE, cancellations, attendees
of every kind, alarms, broken values, missing UIDs) parsed with the pre-scan and without
it (and without reuse) must give the same occurrences, skipped events and event count.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from connectors.calendar import ics as ics_module
from connectors.calendar.ics import ParsedFeed, parse_feed
from connectors.calendar.lean import INVITED
from connectors.calendar.prescan import Prescanned, prescan
from connectors.calendar.reuse import ParsedEvents
from connectors.calendar.verdicts import Verdicts

NOW = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
END = NOW + timedelta(days=30)
ZONES = [None, "Europe/Paris", "America/New_York", "W. Europe Standard Time", "Nowhere/Else"]
WINDOWS_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\n"
    "DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def calendar(*events: str, head: str = "") -> bytes:
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n" + head
    return (text + "".join(events) + "END:VCALENDAR\r\n").encode()


def event(uid: str | None, *lines: str) -> str:
    head = ["BEGIN:VEVENT"] + ([f"UID:{uid}"] if uid is not None else [])
    return "".join(f"{line}\r\n" for line in (*head, *lines, "END:VEVENT"))


def full(body: bytes, monkeypatch: pytest.MonkeyPatch, now: datetime = NOW) -> ParsedFeed:
    """The parse without the pre-scan and without reuse: every VEVENT parsed as written."""
    with monkeypatch.context() as patch:
        patch.setattr(ics_module, "prescan", lambda body, *_: Prescanned(body, 0))
        return parse_feed(body, start=now, end=now + timedelta(days=30), reuse=None)


def fast(body: bytes, now: datetime = NOW, reuse: ParsedEvents | None = None) -> ParsedFeed:
    fresh = ParsedEvents() if reuse is None else reuse
    return parse_feed(body, start=now, end=now + timedelta(days=30), reuse=fresh)


# --- random feeds: the same with the pre-scan and without --------------------------------------


def stamp(rng: random.Random, at: datetime, zone: str | None, all_day: bool) -> tuple[str, str]:
    """A time property's parameters and value."""
    if all_day:
        return ";VALUE=DATE", f"{at:%Y%m%d}"
    if zone is None:
        return "", f"{at:%Y%m%dT%H%M%S}" + ("Z" if rng.random() < 0.7 else "")
    return f";TZID={zone}", f"{at:%Y%m%dT%H%M%S}"


def attendees(rng: random.Random) -> list[str]:
    people = [
        "ATTENDEE;CN=Ann;PARTSTAT=ACCEPTED:mailto:ann@acme.example",
        "ATTENDEE;CUTYPE=ROOM;CN=Room 1:mailto:room1@acme.example",
        'ATTENDEE;CN="Doe, John: Esq";PARTSTAT=DECLINED:mailto:john@acme.example',
        "ATTENDEE;CUTYPE=RESOURCE:mailto:beamer@acme.example",
        "ATTENDEE;ROLE=OPT-PARTICIPANT;RSVP=TRUE:MAILTO:Bob@Partner.example",
        "ATTENDEE;PARTSTAT=TENTATIVE;CUTYPE=GROUP:mailto:team@acme.example",
        "ATTENDEE:mailto:no-at-sign",
        'ATTENDEE;CUTYPE="INDIVIDUAL";PARTSTAT="declined":mailto:eve@acme.example',
        "ATTENDEE;CN=Odd^'quoted^':mailto:odd@acme.example",
        "attendee;cn=lower:mailto:lower@acme.example",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:comma\\,name@acme.example",
    ]
    return rng.sample(people, rng.randint(0, 4))


def random_event(rng: random.Random, n: int) -> str:
    zone = rng.choice(ZONES)
    all_day = rng.random() < 0.1
    start = NOW + timedelta(days=rng.randint(-900, 60), hours=rng.randint(-12, 12))
    start = start.replace(tzinfo=None, minute=rng.choice((0, 30)), second=0, microsecond=0)
    params, value = stamp(rng, start, zone, all_day)
    lines = [f"DTSTART{params}:{value}", "DTSTAMP:20260101T000000Z", f"SUMMARY:Event {n}"]
    if rng.random() < 0.7:
        params, value = stamp(rng, start + timedelta(hours=1, days=int(all_day)), zone, all_day)
        lines.append(f"DTEND{params}:{value}")
    elif rng.random() < 0.5:
        lines.append(rng.choice(["DURATION:PT45M", "DURATION:P1D", "DURATION:P2W", "DURATION:PT"]))
    kind = rng.random()
    if kind < 0.55:
        freq = rng.choice(["DAILY", "WEEKLY", "WEEKLY", "MONTHLY", "YEARLY"])
        parts = [f"FREQ={freq}"]
        if rng.random() < 0.3:
            parts.append(f"INTERVAL={rng.choice([1, 2, 3, 7])}")
        if rng.random() < 0.4:
            parts.append("BYDAY=" + ",".join(rng.sample(["MO", "TU", "WE", "TH", "FR"], 2)))
        end = rng.random()
        if end < 0.35:
            parts.append(f"COUNT={rng.randint(1, 150)}")
        elif end < 0.75:
            until = start + timedelta(days=rng.randint(0, 1000))
            form = rng.choice(["%Y%m%dT%H%M%SZ", "%Y%m%d", "%Y%m%dT%H%M%S"])
            parts.append(f"UNTIL={until:{form}}")
        lines.append("RRULE:" + ";".join(parts))
        if rng.random() < 0.3:
            skip = start + timedelta(days=7 * rng.randint(1, 200))
            lines.append(
                f"EXDATE{stamp(rng, skip, zone, all_day)[0]}:" + stamp(rng, skip, zone, all_day)[1]
            )
        if rng.random() < 0.05:
            params, value = stamp(rng, NOW + timedelta(days=5), zone, all_day)
            lines.append(f"RDATE{params}:{value}")
    if rng.random() < 0.05:
        lines.append(
            rng.choice(["DTEND:garbage", "EXDATE:", "SEQUENCE:x", "DTSTART:20260101T100000Z"])
        )
    if rng.random() < 0.05:
        lines.append("STATUS:CANCELLED")
    if rng.random() < 0.05:
        lines += [
            "BEGIN:VALARM",
            "ACTION:EMAIL",
            "ATTENDEE:mailto:alarm@acme.example",
            "END:VALARM",
        ]
    lines += attendees(rng)
    lines.append("ORGANIZER;CN=Org:mailto:org@acme.example")
    uid = None if rng.random() < 0.03 else f"ev-{n}@x"
    return event(uid, *lines)


def random_override(rng: random.Random, uid: str, n: int) -> str:
    """An override of a series' instance (it may not be one), perhaps moved into the window."""
    original = NOW + timedelta(days=rng.randint(-400, 40))
    original = original.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    moved = original if rng.random() < 0.3 else NOW.replace(tzinfo=None) + timedelta(days=3)
    rid = "RECURRENCE-ID" + (";RANGE=THISANDFUTURE" if rng.random() < 0.1 else "")
    lines = [
        f"{rid}:{original:%Y%m%dT%H%M%S}Z",
        f"DTSTART:{moved:%Y%m%dT%H%M%S}Z",
        f"DTEND:{moved + timedelta(hours=1):%Y%m%dT%H%M%S}Z",
        f"SUMMARY:Override {n}",
    ]
    if rng.random() < 0.2:
        lines.append("STATUS:CANCELLED")
    return event(uid, *lines + attendees(rng))


def random_feed(seed: int, count: int = 80) -> bytes:
    rng = random.Random(seed)
    events = [random_event(rng, n) for n in range(count)]
    events += [random_override(rng, f"ev-{rng.randrange(count)}@x", n) for n in range(count // 5)]
    rng.shuffle(events)
    head = "X-WR-TIMEZONE:Europe/Berlin\r\n" if seed % 2 else ""
    return calendar(*events, head=head + (WINDOWS_ZONE if seed % 3 else ""))


@pytest.mark.parametrize("seed", range(12))
def test_the_pre_scan_changes_no_result(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    body = random_feed(seed)
    for now in (NOW, NOW - timedelta(days=200)):
        assert fast(body, now) == full(body, monkeypatch, now)


@pytest.mark.parametrize("seed", range(4))
def test_the_pre_scan_leaves_out_most_of_a_feed_with_history(seed: int) -> None:
    """The comparison above must not pass by leaving nothing out."""
    body = random_feed(seed)
    scanned = prescan(body, NOW, END, 1_000_000)
    assert scanned.left_out > 20
    assert len(scanned.body) < len(body)


# --- what must stay ---------------------------------------------------------------------------


def test_a_series_from_long_ago_without_end_still_gives_its_occurrences() -> None:
    body = calendar(
        event("old@x", "DTSTART:20190107T090000Z", "DTEND:20190107T100000Z", "RRULE:FREQ=WEEKLY"),
        event("gone@x", "DTSTART:20190107T090000Z", "RRULE:FREQ=WEEKLY;COUNT=10"),
        event("ended@x", "DTSTART:20190107T090000Z", "RRULE:FREQ=DAILY;UNTIL=20200101T000000Z"),
    )
    parsed = fast(body)
    assert [o.key for o in parsed.occurrences][:2] == [
        "old@x@20261005T090000Z",
        "old@x@20261012T090000Z",
    ]
    assert len(parsed.occurrences) == 4  # the Mondays of the window (October 5 to 26)
    assert parsed.events == 3  # the ended series are left out of the parse, not of the count
    scanned = prescan(body, NOW, END, 1_000_000)
    assert scanned.left_out == 2
    assert b"old@x" in scanned.body and b"gone@x" not in scanned.body


def test_an_override_moved_into_the_window_keeps_its_ended_series() -> None:
    body = calendar(
        event("s@x", "DTSTART:20200106T090000Z", "RRULE:FREQ=WEEKLY;COUNT=4", "SUMMARY:Series"),
        event(
            "s@x",
            "RECURRENCE-ID:20200113T090000Z",
            "DTSTART:20261006T090000Z",
            "DTEND:20261006T100000Z",
            "SUMMARY:Moved",
        ),
    )
    assert prescan(body, NOW, END, 1_000_000).left_out == 0
    (moved,) = fast(body).occurrences
    assert (moved.key, moved.summary) == ("s@x@20200113T090000Z", "Moved")


def test_an_event_that_ends_in_the_window_is_kept() -> None:
    """A long event that started months ago and is still going on."""
    body = calendar(
        event("long@x", "DTSTART;VALUE=DATE:20260101", "DTEND;VALUE=DATE:20261010"),
        event("dur@x", "DTSTART:20260901T090000Z", "DURATION:P5W"),
    )
    assert prescan(body, NOW, END, 1_000_000).left_out == 0
    assert {o.uid for o in fast(body).occurrences} == {"long@x", "dur@x"}


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("DTEND:20200101Tgarbage", "bad_value"),
        ("DTSTART;TZID=Nowhere/Else:20200101T090000", "unknown_tzid"),
        ("RRULE:FREQ=MINUTELY;COUNT=3", "rrule_too_fast"),
    ],
)
def test_a_broken_event_of_the_past_is_still_reported(line: str, kind: str) -> None:
    """The pre-scan leaves out only what the parse would take without a word: a broken
    event goes to the parse, which reports it, however old it is."""
    lines = [line] if line.startswith("DTSTART") else ["DTSTART:20200101T090000Z", line]
    body = calendar(event("bad@x", *lines), event("good@x", "DTSTART:20261005T090000Z"))
    parsed = fast(body)
    assert [(s.uid, s.kind) for s in parsed.skipped] == [("bad@x", kind)]
    assert [o.uid for o in parsed.occurrences] == ["good@x"]


def test_attendees_read_from_the_lean_line_are_those_of_the_attendee_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = calendar(
        event(
            "m@x",
            "DTSTART:20261005T090000Z",
            "ATTENDEE;CN=Ann;PARTSTAT=ACCEPTED:mailto:Ann@Acme.example",
            "ATTENDEE;CUTYPE=ROOM:mailto:room@acme.example",
            'ATTENDEE;CN="Doe, John";PARTSTAT=DECLINED:mailto:john@acme.example',
            "ATTENDEE;CUTYPE=GROUP:MAILTO:team@acme.example",
        )
    )
    assert INVITED.encode() in prescan(body, NOW, END, 1_000_000).body
    (meeting,) = fast(body).occurrences
    assert meeting.attendees == ("ann@acme.example", "team@acme.example")
    assert fast(body) == full(body, monkeypatch)


def test_a_feed_cannot_write_the_attendees_line_itself() -> None:
    """Its name has a random part chosen per process: a feed's X- line of that form is
    any other X- line, and the ATTENDEE lines are read."""
    forged = "X-UCAAS-SYNC-INVITED-000000000000:mallory@evil.example"
    body = calendar(
        event("m@x", "DTSTART:20261005T090000Z", forged, "ATTENDEE:mailto:ann@acme.example")
    )
    (meeting,) = fast(body).occurrences
    assert meeting.attendees == ("ann@acme.example",)
    assert forged.split(":", maxsplit=1)[0] != INVITED


# --- parsed VEVENTs reused ----------------------------------------------------------------------


def test_a_new_version_parses_only_its_changed_events_and_gives_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = random_feed(3, count=60)
    second = first.replace(b"SUMMARY:Event 7\r\n", b"SUMMARY:Event 7 (moved)\r\n")
    assert second != first
    reuse = ParsedEvents()
    fast(first, reuse=reuse)
    kept = len(reuse)
    assert kept > 0
    reuse.hits = reuse.misses = 0
    again = fast(second, reuse=reuse)
    assert again == full(second, monkeypatch)
    assert reuse.misses <= 1 and reuse.hits >= kept - 1
    assert fast(second, reuse=reuse) == again  # every VEVENT from the cache now


def test_the_pre_scan_reads_kept_give_the_same_text_whatever_the_window() -> None:
    """What the pre-scan read of a VEVENT (verdicts.py) is kept whatever the window: the
    window is applied afterwards, so text read for one window serves every other, the
    step limit (which depends on the window's end) included."""
    verdicts = Verdicts(10_000)
    for seed in (1, 2, 3):
        body = random_feed(seed, count=60)
        for days in (0, 1, 9, 40, -200, 400):
            for steps in (1_000_000, 800):  # 800: some rules near the limit in some windows
                now = NOW + timedelta(days=days)
                end = now + timedelta(days=30)
                assert prescan(body, now, end, steps, verdicts) == prescan(body, now, end, steps)
    assert len(verdicts) > 0


def test_the_pre_scan_reads_kept_are_bounded() -> None:
    verdicts = Verdicts(7)
    prescan(random_feed(4, count=60), NOW, END, 1_000_000, verdicts)
    assert len(verdicts) == 7


def test_the_cache_keeps_at_most_its_size() -> None:
    reuse = ParsedEvents(max_events=5)
    fast(random_feed(5, count=60), reuse=reuse)
    assert len(reuse) == 5


def test_series_built_once_give_the_same_occurrences_as_the_window_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = random_feed(7, count=60)
    reuse = ParsedEvents()
    for days in (0, 1, 9, 40, 400):  # the window moving on, the series reused each time
        now = NOW + timedelta(days=days)
        assert fast(body, now, reuse) == full(body, monkeypatch, now)
    assert len(reuse._series) > 0


def test_parses_in_threads_share_the_cache_without_harm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The poller parses several feeds at once in worker threads, one cache for all."""
    bodies = [random_feed(seed, count=40) for seed in (8, 9)] * 3
    expected = [full(body, monkeypatch) for body in bodies]
    reuse = ParsedEvents()
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda body: fast(body, NOW, reuse), bodies, timeout=60))
    assert found == expected


def test_an_old_open_ended_series_starts_near_the_window_and_gives_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its DTSTART moved on by whole weeks (shift.py): across changes of daylight saving
    time, with days of the week, an interval, an EXDATE and an override in the window."""
    body = calendar(
        event(
            "weekly@x",
            "DTSTART;TZID=Europe/Paris:20160104T090000",
            "DTEND;TZID=Europe/Paris:20160104T100000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
            "EXDATE;TZID=Europe/Paris:20261012T090000",
        ),
        event(
            "weekly@x",
            "RECURRENCE-ID;TZID=Europe/Paris:20261014T090000",
            "DTSTART;TZID=Europe/Paris:20261014T150000",
            "DTEND;TZID=Europe/Paris:20261014T160000",
        ),
    )
    scanned = prescan(body, NOW, END, 1_000_000).body
    assert b"DTSTART;TZID=Europe/Paris:2016" not in scanned  # moved on
    assert b"DTSTART;TZID=Europe/Paris:2026" in scanned
    parsed = fast(body)
    assert parsed == full(body, monkeypatch)
    assert [o.start.strftime("%m-%d %H:%M") for o in parsed.occurrences] == [
        "10-14 13:00",  # the override, 15:00 in Paris
        "10-26 08:00",  # 09:00 in Paris after the change to winter time
        "10-28 08:00",
    ]


@pytest.mark.parametrize("count", [560, 561, 562, 563, 565])
@pytest.mark.parametrize("freq", ["WEEKLY", "DAILY;INTERVAL=7"])
def test_a_counted_series_moved_on_ends_where_it_ended(
    count: int, freq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From 2016-01-04 weekly, the 561st instance is on 2026-09-28, the 562nd in the
    window: its count, lessened by the instances left behind, ends it on the same one."""
    body = calendar(
        event("counted@x", "DTSTART:20160104T090000Z", f"RRULE:FREQ={freq};COUNT={count}")
    )
    scanned = prescan(body, NOW, END, 1_000_000).body
    assert b"DTSTART:2016" not in scanned and f"COUNT={count}".encode() not in scanned
    parsed = fast(body)
    assert parsed == full(body, monkeypatch)
    assert len(parsed.occurrences) == min(4, max(0, count - 561))
