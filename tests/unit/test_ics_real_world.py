"""What real producers export (tests/fixtures/ics/real, README.md there says where each file
comes from): every file is parsed and checked for what is planned, what is skipped as
unusable (UID and reason) and what is refused whole; and the README's table of them
("Calendar feeds") is this table, rendered.

Each file has its own window: the copied ones keep the dates their producers wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.calendar.fetch import FeedError
from connectors.calendar.ics import ParsedFeed, parse_feed
from connectors.calendar.isolate import KINDS
from service.calendar.translate import diff_feed
from service.domain.commands import Kind
from service.domain.feeds import Feed

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "ics" / "real"
FEED = Feed(
    feed_id="real", url="https://x/real.ics", organizer_email="owner@example.com", tenant="t"
)


@dataclass(frozen=True)
class Expect:
    producer: str
    start: str  # the window's start (UTC), 30 days unless `days`
    occurrences: int = 0  # in the window
    meetings: int = 0  # schedule_meeting commands for a new feed (no all-day, cancelled)
    skipped: tuple[tuple[str, str], ...] = ()  # (UID, "" for none; how the reason starts)
    refused: str | None = None
    days: int = 30


EXPECTED: dict[str, Expect] = {
    "google_weekday_series.ics": Expect("Google Calendar", "2026-10-01", 22, 22),
    "google_event_with_alarms.ics": Expect("Google Calendar", "2024-10-01", 1, 1),
    "google_no_uid_empty_exdate.ics": Expect(
        "Google Calendar",
        "2008-03-01",
        20,
        0,
        (("", "EXDATE: Expected datetime, date, or time. Got: ''"),),
    ),
    "exchange2010_all_day_series.ics": Expect("Exchange 2010", "2024-07-01", 5, 1, days=100),
    "exchange2010_pacific_quoted_tzid.ics": Expect("Exchange 2010", "2017-02-01", 1, 1),
    "exchange2010_eastern.ics": Expect("Exchange 2010", "2024-10-01", 1, 1),
    "exchange_cdo_byday_with_spaces.ics": Expect(
        "Microsoft CDO (Exchange)",
        "2015-07-01",
        skipped=(("", "RRULE: Expected weekday abbreviation, got: TU"),),
    ),
    "outlook16_desktop_export.ics": Expect("Outlook 2016 (desktop)", "2026-10-01", 7, 6),
    "apple_icloud_work.ics": Expect("Apple Calendar / iCloud", "2026-10-01", 6, 5),
    "nextcloud_personal_export.ics": Expect("Nextcloud (SabreDAV)", "2026-10-01", 12, 10),
    "thunderbird_event_with_alarms.ics": Expect("Thunderbird", "2024-10-01", 1, 1),
    "thunderbird_lightning_series.ics": Expect("Thunderbird (Lightning)", "2026-10-01", 3, 3),
    "etar_android_event.ics": Expect("Etar (Android)", "2024-10-01", 1, 1),
    "khal_override_with_rdate_periods.ics": Expect("khal", "2018-03-20", 1, 1),
    "podio_tab_folded.ics": Expect("Podio", "2022-02-01", 1, 1),
    "custom_vtimezone_utc11.ics": Expect("a booking system", "2017-02-01", 1, 1),
    "vtimezone_less_tzids.ics": Expect(
        "odd (icalendar's tests)", "2014-08-01", 1, 1, (("", "no DTSTART"), ("", "no DTSTART"))
    ),
    "invalid_rrule_freq.ics": Expect(
        "odd (icalendar's tests)",
        "2025-01-01",
        skipped=(("test-123", "RRULE: Expected frequency, got: INVALID_TYPE_CAUSES_ERROR"),),
    ),
    "broken_dtstart_two_semicolons.ics": Expect(
        "odd (icalendar's tests)",
        "2014-04-01",
        skipped=(("abc", "no DTSTART (a line could not be read: Content line could not"),),
    ),
    "broken_stray_line.ics": Expect("odd (icalendar's tests)", "2014-03-25", 1, 1),
    "broken_truncated.ics": Expect(
        "odd (icalendar's tests)", "2026-10-01", refused="truncated: no END:VCALENDAR at the end"
    ),
    "odd_good_and_broken_events.ics": Expect(
        "odd (Google-shaped, LF)",
        "2026-10-01",
        15,
        13,
        (
            ("no-start@odd.example", "no DTSTART"),
            ("bad-byday@odd.example", "RRULE: Expected weekday abbreviation, got: XX"),
            ("unknown-zone@odd.example", "DTSTART: unknown time zone 'Customized Time Zone'"),
            ("bad-end@odd.example", "DTEND: Wrong datetime format: 20261032T100000Z"),
            ("every-five-minutes@odd.example", "RRULE FREQ=MINUTELY repeats too fast"),
        ),
    ),
    "odd_unclosed_vevent.ics": Expect(
        "odd (hand-rolled)",
        "2026-10-01",
        2,
        2,
        (
            (
                "never-closed-with-a-uid-long-enough-to-be-folded-by-the-exporter@unclosed.example",
                "broken VEVENT: no END:VEVENT before the next BEGIN:VEVENT",
            ),
        ),
    ),
    "outage_page.html": Expect(
        "an outage page (HTTP 200)",
        "2026-10-01",
        refused="not iCalendar: the body looks like HTML",
    ),
}


def window(expect: Expect) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(expect.start).replace(tzinfo=UTC)
    return start, start + timedelta(days=expect.days)


def parsed(name: str) -> ParsedFeed:
    start, end = window(EXPECTED[name])
    return parse_feed((REAL / name).read_bytes(), start=start, end=end)


def test_every_fixture_is_described() -> None:
    assert sorted(p.name for p in REAL.iterdir() if p.suffix != ".md") == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_what_each_real_world_file_plans_skips_or_refuses(name: str) -> None:
    expect = EXPECTED[name]
    if expect.refused is not None:
        with pytest.raises(FeedError) as caught:
            parsed(name)
        assert caught.value.reason.startswith(expect.refused)
        return
    found = parsed(name)
    assert len(found.occurrences) == expect.occurrences
    start, _ = window(expect)
    translation = diff_feed(FEED, found.occurrences, None, start, None, found.skipped_uids)
    assert [c.kind for c in translation.commands] == [Kind.SCHEDULE_MEETING] * expect.meetings
    assert [s.uid for s in found.skipped] == [uid for uid, _ in expect.skipped]
    for skipped, (_, reason) in zip(found.skipped, expect.skipped, strict=True):
        assert skipped.reason.startswith(reason), skipped.reason
        assert skipped.kind in KINDS and "\n" not in skipped.reason
    assert found.plannable == (found.events > 0 or not found.skipped)


def test_the_odd_file_plans_its_good_events_as_written() -> None:
    found = {o.key: o for o in parsed("odd_good_and_broken_events.ics").occurrences}
    two_rules = sorted(o.start.day for o in found.values() if o.uid == "two-rules@odd.example")
    assert two_rules == [5, 7, 12, 14, 19, 26]  # both rules, as recurring-ical-events
    assert found["dup@odd.example"].summary == "Planning (new copy)"  # the higher SEQUENCE
    new_york = found["new-york-without-vtimezone@odd.example"]
    assert (new_york.start.hour, new_york.zone) == (15, "America/New_York")  # no VTIMEZONE
    floating = found["floating@odd.example"]
    assert (floating.start.hour, floating.zone) == (10, "Europe/Berlin")  # X-WR-TIMEZONE
    assert found["standup@odd.example@20261007T070000Z"].cancelled
    assert found["all-day@odd.example"].all_day


def test_producers_zones_are_read() -> None:
    outlook = {o.summary: o for o in parsed("outlook16_desktop_export.ics").occurrences}
    assert outlook["Fabrikam Analytics \u2013 Demo"].start == datetime(2026, 10, 14, 16, tzinfo=UTC)
    assert outlook["Fabrikam Analytics \u2013 Demo"].zone == "America/Los_Angeles"
    assert outlook["Teamrunde"].zone == "Europe/Berlin"
    apple = [o for o in parsed("apple_icloud_work.ics").occurrences if o.summary]
    moved = next(o for o in apple if o.summary == "Jour fixe (verschoben)")
    assert moved.start == datetime(2026, 10, 12, 12, tzinfo=UTC)
    assert moved.key.endswith("@20261012T080000Z")  # the original start
    thunderbird = parsed("thunderbird_lightning_series.ics").occurrences
    assert [o.start for o in thunderbird if o.uid.startswith("3c1e")] == [
        datetime(2026, 10, 1, 13, tzinfo=UTC),
        datetime(2026, 10, 29, 15, tzinfo=UTC),  # moved to 16:00, CET by then
    ]


# --- the README's table ------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table() -> str:
    """The README's table: what each fixture gives (reasons as they start)."""
    lines = [
        "| producer | file | window | occurrences (meetings) | skipped (why) | refused whole |",
        "|---|---|---|---|---|---|",
    ]
    for name, expect in EXPECTED.items():
        planned = "" if expect.refused else f"{expect.occurrences} ({expect.meetings})"
        why = "; ".join(f"{uid or '(no UID)'}: {reason}" for uid, reason in expect.skipped)
        skipped = f"{len(expect.skipped)}: {why}" if expect.skipped else ""
        cells = [
            expect.producer,
            f"`{name}`",
            f"{expect.start} +{expect.days} d",
            planned,
            skipped,
            expect.refused or "",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def test_the_readme_shows_this_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- ics-fixtures -->\n(.*?)\n<!-- /ics-fixtures -->", readme, re.S)
    assert found is not None, "README.md: the ics-fixtures table is missing"
    assert found.group(1) == table(), "README.md: paste the output of `python -m " + __name__ + "`"


if __name__ == "__main__":
    print(table())
