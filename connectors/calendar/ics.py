"""An iCalendar feed to the occurrences inside a time window (icalendar +
recurring-ical-events). Pure and bounded: no I/O, caps on events and occurrences.

Handled: RRULE, RDATE, EXDATE, RECURRENCE-ID overrides (RANGE=THISANDFUTURE too),
STATUS:CANCELLED events and instances, DTEND or DURATION (neither: zero length), all-day
events, floating times (in the calendar's X-WR-TIMEZONE, else UTC; a zone named by TZID
is never overridden by X-WR-TIMEZONE), VTIMEZONE definitions and the Windows zone names
Outlook writes as TZID (mapped to IANA names for display).

Each occurrence has a stable key: the UID for a single event; the UID and the original
start (RECURRENCE-ID) for an occurrence of a series, so a moved instance stays the same
meeting.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import icalendar
import recurring_ical_events
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.calendar.fetch import FeedError

FAST_FREQUENCIES = ("SECONDLY", "MINUTELY")


@dataclass(frozen=True)
class ParseLimits:
    max_events: int = 20_000  # VEVENT components in the file
    max_occurrences: int = 10_000  # occurrences inside the window


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


def parse_feed(
    body: bytes, *, start: datetime, end: datetime, limits: ParseLimits | None = None
) -> list[Occurrence]:
    """The occurrences overlapping [start, end], sorted by start; FeedError if unusable."""
    limits = limits or ParseLimits()
    calendar = _calendar(body, limits)
    floating = _zone(str(calendar.get("X-WR-TIMEZONE", "") or "")) or UTC
    series = _recurring_uids(calendar)
    found: list[Occurrence] = []
    try:
        query = recurring_ical_events.of(calendar, components=["VEVENT"])
        for component in query.after(start):
            occurrence = _occurrence(component, floating, series)
            if occurrence.start > end:
                break
            found.append(occurrence)
            if len(found) > limits.max_occurrences:
                raise FeedError(
                    f"expands to more than {limits.max_occurrences} occurrences in the window"
                )
    except FeedError:
        raise
    except Exception as exc:  # the libraries raise many kinds for broken dates and rules
        raise FeedError(f"invalid dates or recurrence: {_first_line(exc)}") from None
    return _keyed(found)


def _recurring_uids(calendar: icalendar.Calendar) -> set[str]:
    """UIDs of series (RRULE, RDATE or overridden instances): their occurrences are keyed
    by original start; a single event is keyed by its UID alone, so moving it is an edit."""
    return {
        str(event.get("UID", "")).strip()
        for event in calendar.walk("VEVENT")
        if any(event.get(name) is not None for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    }


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def _calendar(body: bytes, limits: ParseLimits) -> icalendar.Calendar:
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if not head.upper().startswith(b"BEGIN:VCALENDAR"):
        kind = "HTML" if b"<" in head[:20] else "something else"
        raise FeedError(f"not iCalendar: the body looks like {kind}")
    if b"END:VCALENDAR" not in body[-200:].upper():
        raise FeedError("truncated: no END:VCALENDAR at the end")
    events = body.upper().count(b"BEGIN:VEVENT")
    if events > limits.max_events:
        raise FeedError(f"{events} events; at most {limits.max_events} are taken")
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except Exception as exc:  # icalendar raises ValueError and friends for broken text
        raise FeedError(f"invalid iCalendar: {_first_line(exc)}") from None
    for event in calendar.walk("VEVENT"):
        rule = event.get("RRULE")
        for frequency in rule.get("FREQ", []) if rule else []:
            if str(frequency).upper() in FAST_FREQUENCIES:
                uid = event.get("UID", "?")
                raise FeedError(
                    f"event {uid}: RRULE FREQ={frequency} repeats too fast for meetings"
                )
    return calendar


def _zone(name: str) -> tzinfo | None:
    name = WINDOWS_TO_OLSON.get(name.strip(), name.strip())
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zone_name(value: tzinfo | None) -> str:
    """The IANA name of a zone as icalendar hands it: a ZoneInfo, or a VTIMEZONE
    definition named by its TZID (an IANA or Windows name, or a custom one)."""
    if value is None:
        return "UTC"
    key = getattr(value, "key", None)
    if isinstance(key, str):
        return "UTC" if key in ("Etc/UTC", "Z") else key
    tzid = str(getattr(value, "_tzid", "") or "")  # dateutil's VTIMEZONE zone
    if tzid and _zone(tzid) is not None:
        return WINDOWS_TO_OLSON.get(tzid, tzid)
    return _by_offset(value)


def _by_offset(value: tzinfo) -> str:
    """A zone with an unknown name: the fixed-offset Etc zone of its current offset."""
    offset = value.utcoffset(datetime.now()) or timedelta(0)
    hours = int(offset.total_seconds() // 3600)
    return f"Etc/GMT{-hours:+d}" if hours else "UTC"


def _aware(value: datetime | date, floating: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=floating)
    return value


def _occurrence(component: Any, floating: tzinfo, series: set[str]) -> Occurrence:
    raw_start = component["DTSTART"].dt
    all_day = not isinstance(raw_start, datetime)
    start = _aware(raw_start, floating)
    raw_end = component.get("DTEND")
    if raw_end is not None:
        end = _aware(raw_end.dt, floating)
    elif component.get("DURATION") is not None:
        end = start + component["DURATION"].dt
    else:
        end = start + (timedelta(days=1) if all_day else timedelta(0))
    uid = str(component.get("UID", "")).strip() or f"no-uid-{start.isoformat()}"
    recurrence = component.get("RECURRENCE-ID") if uid in series else None
    original = _aware(recurrence.dt, floating).astimezone(UTC) if recurrence is not None else None
    return Occurrence(
        uid=uid,
        key=uid if original is None else f"{uid}@{original:%Y%m%dT%H%M%SZ}",
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        zone=zone_name(start.tzinfo) if not all_day else zone_name(floating),
        summary=_text(component.get("SUMMARY")),
        description=_text(component.get("DESCRIPTION")),
        attendees=tuple(_mail(a) for a in _list(component.get("ATTENDEE")) if _mail(a)),
        organizer=_mail(component.get("ORGANIZER")) or None,
        cancelled=str(component.get("STATUS", "")).upper() == "CANCELLED",
        all_day=all_day,
    )


def _keyed(found: list[Occurrence]) -> list[Occurrence]:
    """Occurrences after a THISANDFUTURE override all carry the override's RECURRENCE-ID;
    give each the start it had before the override moved it, so keys stay one per slot."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for index, occurrence in enumerate(found):
        by_key[occurrence.key].append(index)
    for key, indexes in by_key.items():
        if len(indexes) < 2 or "@" not in key:
            continue
        uid, _, original = key.rpartition("@")
        first = datetime.strptime(original, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        shift = found[indexes[0]].start - first
        for index in indexes[1:]:
            slot = found[index].start - shift
            found[index] = replace(found[index], key=f"{uid}@{slot:%Y%m%dT%H%M%SZ}")
    found.sort(key=lambda o: (o.start, o.key))
    return found


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _mail(value: Any) -> str:
    text = str(value or "").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.lower() if "@" in text else ""
