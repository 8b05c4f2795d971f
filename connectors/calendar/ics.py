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
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.calendar.fetch import FeedError
from connectors.calendar.isolate import (
    FAST_FREQUENCIES,
    Skipped,
    aware,
    first_line,
    isolate,
    salvage,
    series_of,
)

__all__ = ["FAST_FREQUENCIES", "Occurrence", "ParseLimits", "ParsedFeed", "Skipped", "parse_feed"]

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
class Occurrence:
    uid: str
    key: str
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC
    zone: str  # IANA name of the event's zone, for display
    summary: str | None
    description: str | None
    attendees: tuple[str, ...]  # e-mail addresses, lower case
    organizer: str | None
    cancelled: bool
    all_day: bool


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
    body: bytes, *, start: datetime, end: datetime, limits: ParseLimits | None = None
) -> ParsedFeed:
    """The occurrences overlapping [start, end] and the events skipped as unusable, each
    with its UID and reason; FeedError if the body cannot be used at all: not iCalendar,
    truncated, or over the limits (events, occurrences, CPU time)."""
    limits = limits or ParseLimits()
    calendar, skipped = _calendar(body, limits)
    found: list[Occurrence] = []
    events = 0
    deadline = time.thread_time() + limits.max_seconds
    try:
        skipped += isolate(calendar, end, limits.max_rule_steps)
        floating = _zone(str(calendar.get("X-WR-TIMEZONE", "") or "")) or UTC
        series = _recurring_uids(calendar)
        moves = _moves(calendar)
        # Series by series, each over the whole window at once (`after` would query every
        # series again for each small slice of time), within the caps and the deadline.
        for uid, each in series_of(calendar, skipped):
            _in_time(deadline, limits)
            mine: list[Occurrence] = []
            try:
                # Floating times are compared as wall-clock times by the library: ask for
                # a window wider by the largest UTC offset and cut it exactly here.
                for item in each.between(start - _WIDEST_OFFSET, end + _WIDEST_OFFSET):
                    _in_time(deadline, limits)
                    occurrence = _occurrence(item.as_component(False), floating, series, moves)
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
    except FeedError:
        raise
    except Exception as exc:  # never another exception: `plan` and the poller say why
        raise FeedError(f"invalid dates or recurrence: {first_line(exc)}") from None
    found.sort(key=lambda o: (o.start, o.key))
    return ParsedFeed(tuple(found), tuple(skipped), events)


def _in_time(deadline: float, limits: ParseLimits) -> None:
    if time.thread_time() > deadline:
        raise FeedError(
            f"expanding the recurrences takes more than {limits.max_seconds:g} s of CPU time"
        )


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
        if recurrence is None or dtstart is None or not _this_and_future(recurrence):
            continue
        moved, original = _comparable(dtstart.dt, recurrence.dt)
        moves[(str(event.get("UID", "")).strip(), _utc(recurrence.dt))] = moved - original
    return moves


def _this_and_future(recurrence: Any) -> bool:
    return str(recurrence.params.get("RANGE", "")).upper() == "THISANDFUTURE"


def _comparable(first: datetime | date, second: datetime | date) -> tuple[Any, Any]:
    """The two as recurring-ical-events compares them: dates stay dates; else datetimes,
    a floating one taking the other's zone."""
    if not isinstance(first, datetime) and not isinstance(second, datetime):
        return first, second
    zone = next((v.tzinfo for v in (first, second) if isinstance(v, datetime) and v.tzinfo), None)
    return _naive_or(first, zone), _naive_or(second, zone)


def _naive_or(value: datetime | date, zone: tzinfo | None) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=zone) if value.tzinfo is None and zone is not None else value


def _utc(value: datetime | date) -> datetime:
    """A RECURRENCE-ID as recurring-ical-events identifies it: UTC if it has a zone."""
    value = _naive_or(value, None)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _calendar(body: bytes, limits: ParseLimits) -> tuple[icalendar.Calendar, list[Skipped]]:
    """The calendar, and the VEVENTs skipped because their text does not parse (when
    icalendar refuses the body whole, its VEVENTs are tried one by one)."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if not head.upper().startswith(b"BEGIN:VCALENDAR"):
        kind = "HTML" if b"<" in head[:20] else "something else"
        raise FeedError(f"not iCalendar: the body looks like {kind}")
    if b"END:VCALENDAR" not in body[-200:].upper():
        raise FeedError("truncated: no END:VCALENDAR at the end")
    events = body.upper().count(b"BEGIN:VEVENT")
    if events > limits.max_events:
        raise FeedError(f"{events} events; at most {limits.max_events} are taken")
    body = _own_zones(body)
    skipped: list[Skipped] = []
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except Exception as exc:  # icalendar raises ValueError and friends for broken text
        body, skipped = salvage(body)
        try:
            calendar = icalendar.Calendar.from_ical(body)
        except Exception:
            raise FeedError(f"invalid iCalendar: {first_line(exc)}") from None
    scale = str(calendar.get("CALSCALE", "GREGORIAN") or "GREGORIAN").upper()
    if scale != "GREGORIAN":
        raise FeedError(f"CALSCALE {scale}: only Gregorian calendars are read")
    return calendar, skipped


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
        known = _zone(tzid.decode("utf-8", "replace"))
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


def _zone(name: str) -> tzinfo | None:
    name = WINDOWS_TO_OLSON.get(name.strip(), name.strip())
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zone_name(value: tzinfo | None, at: datetime | None = None) -> str:
    """The IANA name of a zone as icalendar hands it: a ZoneInfo, or a VTIMEZONE
    definition named by its TZID (an IANA or Windows name, or a custom one: then the
    fixed-offset zone of its offset at `at`, the event's start)."""
    if value is None:
        return "UTC"
    key = getattr(value, "key", None)
    if isinstance(key, str):
        return "UTC" if key in ("Etc/UTC", "Z") else key
    tzid = str(getattr(value, "_tzid", "") or "")  # dateutil's VTIMEZONE zone
    if tzid and _zone(tzid) is not None:
        return WINDOWS_TO_OLSON.get(tzid, tzid)
    return _by_offset(value, at)


def _by_offset(value: tzinfo, at: datetime | None = None) -> str:
    """A zone with an unknown name: the fixed-offset Etc zone of its offset at `at` (not
    of today's, which would rename the zone of every meeting at each change of season)."""
    offset = value.utcoffset((at or datetime.now(UTC)).replace(tzinfo=None)) or timedelta(0)
    hours = int(offset.total_seconds() // 3600)
    return f"Etc/GMT{-hours:+d}" if hours else "UTC"


def _occurrence(
    component: Any,
    floating: tzinfo,
    series: set[str],
    moves: dict[tuple[str, datetime], timedelta],
) -> Occurrence:
    raw_start = component["DTSTART"].dt
    all_day = not isinstance(raw_start, datetime)
    start = aware(raw_start, floating)
    raw_end = component.get("DTEND")
    if raw_end is not None:
        end = aware(raw_end.dt, floating)
    elif component.get("DURATION") is not None:
        end = start + component["DURATION"].dt
    else:
        end = start + (timedelta(days=1) if all_day else timedelta(0))
    uid = str(component.get("UID", "")).strip() or f"no-uid-{start.isoformat()}"
    recurrence = component.get("RECURRENCE-ID") if uid in series else None
    original = None
    if recurrence is not None:
        move = moves.get((uid, _utc(recurrence.dt))) if _this_and_future(recurrence) else None
        # An occurrence after a THISANDFUTURE override carries the override's RECURRENCE-ID;
        # its own slot is where the series had it before the override moved it.
        slot = recurrence.dt if move is None else raw_start - move
        original = aware(slot, floating).astimezone(UTC)
    return Occurrence(
        uid=uid,
        key=uid if original is None else f"{uid}@{original:%Y%m%dT%H%M%SZ}",
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        zone=_display_zone(start, floating, all_day),
        summary=_text(component.get("SUMMARY")),
        description=_text(component.get("DESCRIPTION")),
        attendees=tuple(_mail(a) for a in _list(component.get("ATTENDEE")) if _invited(a)),
        organizer=_mail(component.get("ORGANIZER")) or None,
        cancelled=str(component.get("STATUS", "")).upper() == "CANCELLED",
        all_day=all_day,
    )


def _display_zone(start: datetime, floating: tzinfo, all_day: bool) -> str:
    """The event's own zone; the calendar's for an all-day event or a time in UTC (Google
    writes single events in UTC and means them in its X-WR-TIMEZONE)."""
    own = "UTC" if all_day else zone_name(start.tzinfo, start)
    return zone_name(floating, start) if own == "UTC" else own


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _invited(attendee: Any) -> bool:
    """A person who has not declined: rooms and equipment have addresses too."""
    params = getattr(attendee, "params", {})
    kind = str(params.get("CUTYPE", "INDIVIDUAL")).upper()
    return (
        bool(_mail(attendee))
        and kind not in ("ROOM", "RESOURCE")
        and str(params.get("PARTSTAT", "")).upper() != "DECLINED"
    )


def _mail(value: Any) -> str:
    text = str(value or "").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.lower() if "@" in text else ""
