"""An iCalendar feed to the occurrences inside a time window (icalendar +
recurring-ical-events). Pure and bounded: no I/O, caps on events and occurrences, on the
steps a rule takes from its DTSTART to the window, and on the time the expansion takes.

Handled: RRULE, RDATE, EXDATE, RECURRENCE-ID overrides (RANGE=THISANDFUTURE too),
STATUS:CANCELLED events and instances, DTEND or DURATION (neither: zero length), all-day
events, floating times (in the calendar's X-WR-TIMEZONE, else UTC; a zone named by TZID
is never overridden by X-WR-TIMEZONE), VTIMEZONE definitions and the Windows zone names
Outlook writes as TZID (mapped to IANA names for display).

An event that cannot be used (no DTSTART, a date or rule that does not parse, an unknown
TZID, a rule too fast or too long, a VEVENT whose text does not parse: isolate.py) is
skipped with its UID and reason and the rest of the feed is planned; only a body that is
not iCalendar, is truncated, or is over the limits is refused whole (FeedError).

Each occurrence has a stable key: the UID for a single event; the UID and the original
start (RECURRENCE-ID) for an occurrence of a series, so a moved instance stays the same
meeting.
"""

from __future__ import annotations

import hashlib
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar

from connectors.calendar.collector import collector_paused
from connectors.calendar.fetch import FeedError
from connectors.calendar.isolate import (
    FAST_FREQUENCIES,
    Skipped,
    first_line,
    isolate,
    salvage,
    series_of,
)
from connectors.calendar.occurrences import (
    Occurrence,
    Occurrences,
    naive_or,
    this_and_future,
    utc_id,
    zone_name,
    zone_of,
)
from connectors.calendar.prescan import prescan
from connectors.calendar.reuse import PARSED, ParsedEvents, parse_calendar

__all__ = [
    "FAST_FREQUENCIES",
    "Occurrence",
    "ParseLimits",
    "ParsedFeed",
    "Skipped",
    "parse_feed",
    "zone_name",
]

_WIDEST_OFFSET = timedelta(hours=14)


@dataclass(frozen=True)
class ParseLimits:
    max_events: int = 20_000  # VEVENT components in the file
    max_occurrences: int = 10_000  # occurrences inside the window
    # Instants one RRULE may step through from its DTSTART to the window's end (the
    # expansion always starts at DTSTART): a daily rule from the year 1 is 740,000.
    # A rule beyond it is skipped, not expanded.
    max_rule_steps: int = 1_000_000
    # CPU time of the expanding thread (not wall time: parses in threads share the GIL)
    max_seconds: float = 10.0


@dataclass(frozen=True)
class ParsedFeed:
    """What a feed gives: its occurrences in the window, sorted by start; the events it
    has that cannot be used (one entry per UID); and how many usable events (single
    events and series) it has, in the window or not."""

    occurrences: tuple[Occurrence, ...]
    skipped: tuple[Skipped, ...] = ()
    events: int = 0

    @property
    def skipped_uids(self) -> frozenset[str]:
        """The UIDs of the skipped events (those that have one)."""
        return frozenset(s.uid for s in self.skipped if s.uid)

    @property
    def plannable(self) -> bool:
        """Anything could be used: a usable event, or a calendar with nothing skipped."""
        return self.events > 0 or not self.skipped


def parse_feed(
    body: bytes,
    *,
    start: datetime,
    end: datetime,
    limits: ParseLimits | None = None,
    reuse: ParsedEvents | None = PARSED,
) -> ParsedFeed:
    """The occurrences overlapping [start, end] and the events skipped as unusable, each
    with its UID and reason; FeedError if the body cannot be used at all: not iCalendar,
    truncated, or over the limits (events, occurrences, CPU time). VEVENTs parsed before
    are taken from `reuse` (reuse.py; None: every VEVENT parsed)."""
    with collector_paused():  # a fifth of a cold parse was the collector's (collector.py)
        return _parse(body, start, end, limits or ParseLimits(), reuse)


def _parse(
    body: bytes, start: datetime, end: datetime, limits: ParseLimits, reuse: ParsedEvents | None
) -> ParsedFeed:
    calendar, skipped, events = _calendar(body, limits, start, end, reuse)
    found: list[Occurrence] = []
    deadline = time.thread_time() + limits.max_seconds
    try:
        skipped += isolate(calendar, end, limits.max_rule_steps)
        floating = zone_of(str(calendar.get("X-WR-TIMEZONE", "") or "")) or UTC
        made = Occurrences(floating, _recurring_uids(calendar), _moves(calendar))
        # One parse expands the series of `reuse` at a time: dateutil's cache of a rule's
        # instances, shared by the parses that reuse the series, is not safe to fill from
        # two threads (a thread that completes it keeps its lock).
        with reuse.expanding if reuse is not None else nullcontext():
            events += _expand(calendar, skipped, reuse, made, (start, end), limits, deadline, found)
    except FeedError:
        raise
    except Exception as exc:  # never another exception: `plan` and the poller say why
        raise FeedError(f"invalid dates or recurrence: {first_line(exc)}") from None
    found.sort(key=lambda o: (o.start, o.key))
    return ParsedFeed(tuple(found), tuple(skipped), events)


def _expand(
    calendar: icalendar.Calendar,
    skipped: list[Skipped],
    reuse: ParsedEvents | None,
    made: Occurrences,
    window: tuple[datetime, datetime],
    limits: ParseLimits,
    deadline: float,
    found: list[Occurrence],
) -> int:
    """The series' occurrences in the window added to `found`; how many series gave
    theirs (an expansion error skips its series)."""
    start, end = window
    events = 0
    # Series by series, each over the whole window at once (`after` would query every
    # series again for each small slice of time), within the caps and the deadline.
    ticks = 0
    for uid, each in series_of(calendar, skipped, reuse):
        ticks = _in_time(deadline, limits, ticks)
        mine: list[Occurrence] = []
        try:
            # Floating times are compared as wall-clock times by the library: ask for
            # a window wider by the largest UTC offset and cut it exactly here.
            for item in each.between(start - _WIDEST_OFFSET, end + _WIDEST_OFFSET):
                ticks = _in_time(deadline, limits, ticks)
                occurrence = made.of(item)
                if occurrence.start >= end or (
                    occurrence.end <= start and occurrence.start < start
                ):
                    continue
                mine.append(occurrence)
        except FeedError:
            raise
        except Exception as exc:  # the libraries raise many kinds for broken rules
            reason = f"invalid dates or recurrence: {first_line(exc)}"
            skipped.append(Skipped(uid, reason, "expansion"))
            continue
        events += 1
        found.extend(mine)
        if len(found) > limits.max_occurrences:
            raise FeedError(
                f"expands to more than {limits.max_occurrences} occurrences in the window"
            )
    return events


def _in_time(deadline: float, limits: ParseLimits, ticks: int) -> int:
    """The deadline, checked at the first step and every 16th (series or occurrence):
    reading a thread's CPU clock is a system call, and one a step was 5% of the work."""
    ticks += 1
    if ticks % 16 == 1 and time.thread_time() > deadline:
        raise FeedError(
            f"expanding the recurrences takes more than {limits.max_seconds:g} s of CPU time"
        )
    return ticks


def _recurring_uids(calendar: icalendar.Calendar) -> set[str]:
    """UIDs of series (RRULE, RDATE or overridden instances): their occurrences are keyed
    by original start; a single event is keyed by its UID alone, so moving it is an edit."""
    return {
        str(event.get("UID", "")).strip()
        for event in calendar.walk("VEVENT")
        if any(event.get(name) is not None for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    }


def _moves(calendar: icalendar.Calendar) -> dict[tuple[str, datetime], timedelta]:
    """(UID, RECURRENCE-ID in UTC) of each RANGE=THISANDFUTURE override -> how far it
    moves the occurrences from it on (its DTSTART less its RECURRENCE-ID, computed as
    recurring-ical-events computes it, so the original start can be had back)."""
    moves: dict[tuple[str, datetime], timedelta] = {}
    for event in calendar.walk("VEVENT"):
        recurrence: Any = event.get("RECURRENCE-ID")
        dtstart: Any = event.get("DTSTART")
        if recurrence is None or dtstart is None or not this_and_future(recurrence):
            continue
        moved, original = _comparable(dtstart.dt, recurrence.dt)
        moves[(str(event.get("UID", "")).strip(), utc_id(recurrence.dt))] = moved - original
    return moves


def _comparable(first: datetime | date, second: datetime | date) -> tuple[Any, Any]:
    """The two as recurring-ical-events compares them: dates stay dates; else datetimes,
    a floating one taking the other's zone."""
    if not isinstance(first, datetime) and not isinstance(second, datetime):
        return first, second
    zone = next((v.tzinfo for v in (first, second) if isinstance(v, datetime) and v.tzinfo), None)
    return naive_or(first, zone), naive_or(second, zone)


def _calendar(
    body: bytes, limits: ParseLimits, start: datetime, end: datetime, reuse: ParsedEvents | None
) -> tuple[icalendar.Calendar, list[Skipped], int]:
    """The calendar without the events that cannot reach the window (prescan.py), the
    VEVENTs skipped because their text does not parse (when icalendar refuses the body
    whole, its VEVENTs are tried one by one), and how many usable events were left out."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if not head.upper().startswith(b"BEGIN:VCALENDAR"):
        kind = "HTML" if b"<" in head[:20] else "something else"
        raise FeedError(f"not iCalendar: the body looks like {kind}")
    if b"END:VCALENDAR" not in body[-200:].upper():
        raise FeedError("truncated: no END:VCALENDAR at the end")
    events = body.upper().count(b"BEGIN:VEVENT")
    if events > limits.max_events:
        raise FeedError(f"{events} events; at most {limits.max_events} are taken")
    verdicts = reuse.verdicts if reuse is not None else None
    scanned = prescan(body, start, end, limits.max_rule_steps, verdicts)
    body = _own_zones(scanned.body)
    skipped: list[Skipped] = []
    try:
        calendar = parse_calendar(body, reuse)
    except Exception as exc:  # icalendar raises ValueError and friends for broken text
        body, skipped = salvage(body)
        try:
            calendar = icalendar.Calendar.from_ical(body)
        except Exception:
            raise FeedError(f"invalid iCalendar: {first_line(exc)}") from None
    scale = str(calendar.get("CALSCALE", "GREGORIAN") or "GREGORIAN").upper()
    if scale != "GREGORIAN":
        raise FeedError(f"CALSCALE {scale}: only Gregorian calendars are read")
    return calendar, skipped, scanned.left_out


_VTIMEZONE = re.compile(rb"^BEGIN:VTIMEZONE\r?$.*?^END:VTIMEZONE\r?\n?", re.M | re.S | re.I)
_TZID_PROPERTY = re.compile(rb"^TZID[^:\r\n]*:([^\r\n]*)", re.M | re.I)
_FOLD = re.compile(rb"\r?\n[ \t]")


def _own_zones(body: bytes) -> bytes:
    """The feed with each VTIMEZONE made safe to hand to icalendar, which keeps the zones
    it builds from VTIMEZONE blocks in one cache per process, keyed by TZID, first
    definition wins: a zone whose TZID is an IANA or Windows name is dropped and the name
    used (zoneinfo is exact and fast where dateutil's VTIMEZONE zones, from 1601 in
    Outlook's files, take most of an expansion's time); a custom one ("Customized Time
    Zone") is renamed by a hash of its definition, so two feeds' zones of the same name
    never stand in for each other."""
    if b"BEGIN:VTIMEZONE" not in body.upper():
        return body
    body = _FOLD.sub(b"", body)
    renames: dict[bytes, bytes] = {}

    def own(block: re.Match[bytes]) -> bytes:
        found = _TZID_PROPERTY.search(block.group(0))
        if found is None:
            return block.group(0)
        tzid = found.group(1).strip()
        known = zone_of(tzid.decode("utf-8", "replace"))
        if known is not None:
            renames[tzid] = str(getattr(known, "key", tzid.decode())).encode()
            return b""
        digest = hashlib.sha256(block.group(0)).hexdigest()[:12].encode()
        renames[tzid] = renamed = tzid.strip(b'"') + b" ~" + digest
        return block.group(0).replace(found.group(0), b"TZID:" + renamed, 1)

    body = _VTIMEZONE.sub(own, body)
    for tzid, renamed in renames.items():
        bare = re.escape(tzid.strip(b'"'))
        body = re.sub(
            rb";TZID=(\"?)" + bare + rb"\1(?=[;:])", b";TZID=" + renamed, body, flags=re.I
        )
    return body
