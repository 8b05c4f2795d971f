"""One occurrence of an expanded series as the service reads it, and the zones' names.

What an occurrence takes from its VEVENT (UID, title, text, people, status, its own
RECURRENCE-ID) is the same for every occurrence of that VEVENT: it is read once per
VEVENT (`Occurrences`), and each occurrence adds only its start and end. The library's
`as_component` would copy the whole VEVENT for each of them, which was a fifth of the
expansion's time; what it would give is reproduced exactly (DTSTART and DTEND the
occurrence's, the VEVENT's RECURRENCE-ID or else the start as one).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.calendar.isolate import aware
from connectors.calendar.lean import INVITED


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
class _Fixed:
    """What every occurrence of one VEVENT shares."""

    uid: str
    recurrence: Any  # the VEVENT's RECURRENCE-ID property, or None
    summary: str | None
    description: str | None
    attendees: tuple[str, ...]
    organizer: str | None
    cancelled: bool


class Occurrences:
    """Occurrences of one feed's series, each VEVENT read once."""

    def __init__(
        self,
        floating: tzinfo,
        series: set[str],
        moves: dict[tuple[str, datetime], timedelta],
    ) -> None:
        self.floating = floating  # the zone of floating times
        self.series = series  # UIDs keyed by original start
        self.moves = moves  # RANGE=THISANDFUTURE overrides: how far they move the rest
        self._fixed: dict[int, tuple[Any, _Fixed]] = {}  # by id(), the VEVENT held alive

    def of(self, item: Any) -> Occurrence:
        """The occurrence of a recurring-ical-events Occurrence."""
        # The VEVENT the library made the occurrence from (private in 3.x: should it move,
        # the copy the library's public as_component makes is read instead, slower).
        source = getattr(getattr(item, "_adapter", None), "_component", None)
        if source is None:
            component = item.as_component(False)
            return self._make(item.start, item.end, self._read(component), component)
        found = self._fixed.get(id(source))
        if found is None:
            found = self._fixed[id(source)] = (source, self._read(source))
        return self._make(item.start, item.end, found[1], None)

    def _read(self, component: Any) -> _Fixed:
        return _Fixed(
            uid=str(component.get("UID", "")).strip(),
            recurrence=component.get("RECURRENCE-ID"),
            summary=_text(component.get("SUMMARY")),
            description=_text(component.get("DESCRIPTION")),
            attendees=_attendees(component),
            organizer=_mail(component.get("ORGANIZER")) or None,
            cancelled=str(component.get("STATUS", "")).upper() == "CANCELLED",
        )

    def _make(
        self, raw_start: datetime | date, raw_end: datetime | date, fixed: _Fixed, copy: Any
    ) -> Occurrence:
        floating = self.floating
        all_day = not isinstance(raw_start, datetime)
        start = aware(raw_start, floating)
        end = aware(raw_end, floating)
        uid = fixed.uid or f"no-uid-{start.isoformat()}"
        original = None
        if uid in self.series:
            # The library's copy carries the VEVENT's RECURRENCE-ID, else its start as one.
            recurrence = fixed.recurrence if copy is None else copy.get("RECURRENCE-ID")
            moment = raw_start if recurrence is None else recurrence.dt
            move = None
            if recurrence is not None and this_and_future(recurrence):
                move = self.moves.get((uid, utc_id(moment)))
            # An occurrence after a THISANDFUTURE override carries the override's
            # RECURRENCE-ID; its own slot is where the series had it before the move.
            slot = moment if move is None else raw_start - move
            original = aware(slot, floating).astimezone(UTC)
        return Occurrence(
            uid=uid,
            key=uid if original is None else f"{uid}@{original:%Y%m%dT%H%M%SZ}",
            start=start.astimezone(UTC),
            end=end.astimezone(UTC),
            zone=_display_zone(start, floating, all_day),
            summary=fixed.summary,
            description=fixed.description,
            attendees=fixed.attendees,
            organizer=fixed.organizer,
            cancelled=fixed.cancelled,
            all_day=all_day,
        )


def _attendees(component: Any) -> tuple[str, ...]:
    """The addresses of the attendees taking part: from the line lean.py made of them,
    or else from the ATTENDEE lines."""
    invited = component.get(INVITED)
    if invited is not None:
        return tuple(str(invited).split())
    return tuple(_mail(a) for a in _list(component.get("ATTENDEE")) if _invited(a))


def this_and_future(recurrence: Any) -> bool:
    return str(recurrence.params.get("RANGE", "")).upper() == "THISANDFUTURE"


def naive_or(value: datetime | date, zone: tzinfo | None) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=zone) if value.tzinfo is None and zone is not None else value


def utc_id(value: datetime | date) -> datetime:
    """A RECURRENCE-ID as recurring-ical-events identifies it: UTC if it has a zone."""
    value = naive_or(value, None)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def zone_of(name: str) -> tzinfo | None:
    """The zone of an IANA or Windows name, None for another name."""
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
    if tzid and zone_of(tzid) is not None:
        return WINDOWS_TO_OLSON.get(tzid, tzid)
    return _by_offset(value, at)


def _by_offset(value: tzinfo, at: datetime | None = None) -> str:
    """A zone with an unknown name: the fixed-offset Etc zone of its offset at `at` (not
    of today's, which would rename the zone of every meeting at each change of season)."""
    offset = value.utcoffset((at or datetime.now(UTC)).replace(tzinfo=None)) or timedelta(0)
    hours = int(offset.total_seconds() // 3600)
    return f"Etc/GMT{-hours:+d}" if hours else "UTC"


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
