"""Events a feed cannot use, found one by one, so that the rest of the feed is planned.

An event is unusable when it has no DTSTART; when a property that places it in time
(DTSTART, DTEND, DURATION, RECURRENCE-ID, EXDATE, RDATE, RRULE) does not parse (icalendar
7 keeps such a value as a `vBroken` and lists it in the component's `errors`); when one of
its times names a zone (TZID) neither defined in the feed by a VTIMEZONE icalendar can
build nor known by name; when a rule repeats faster than hourly, has INTERVAL=0 or would
step through more than `max_rule_steps` instants from its DTSTART; or when its text does
not parse as a VEVENT at all. A series is one event: one unusable component (an override,
say) puts its whole UID aside.

Several RRULEs in one VEVENT are not a fault: RFC 2445 allowed them (RFC 5545 says SHOULD
NOT), producers still write them, and recurring-ical-events expands their union. Two
VEVENTs of one UID without RECURRENCE-ID are not one either: the library takes the one
with the highest SEQUENCE (the first of equals).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Protocol

import icalendar
import recurring_ical_events

FAST_FREQUENCIES = ("SECONDLY", "MINUTELY")
# How long one step of each frequency is, to estimate a rule's work before expanding it.
_STEP = {
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(days=7),
    "MONTHLY": timedelta(days=28),
    "YEARLY": timedelta(days=365),
}
TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "EXDATE", "RDATE", "RRULE")
_ZONED = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")
# Why an event was skipped, as a metric label: a closed set.
KINDS = (
    "no_dtstart",
    "bad_value",
    "bad_rrule",
    "unknown_tzid",
    "rrule_too_fast",
    "rrule_too_long",
    "broken_vevent",
    "expansion",
)


@dataclass(frozen=True)
class Skipped:
    """An event left out of the plan: its UID ("" if it has none) and why, in one line;
    `kind` is one of KINDS."""

    uid: str
    reason: str
    kind: str = "expansion"

    def __str__(self) -> str:
        return f"{self.uid or '(no UID)'}: {self.reason}"


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def aware(value: datetime | date, floating: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=floating)
    return value


def uid_of(component: Any) -> str:
    return str(component.get("UID", "") or "").strip()


def unusable(event: Any, end: datetime, max_rule_steps: int) -> Skipped | None:
    """Why this VEVENT (a series' master or an override) cannot be used, or None."""
    uid = uid_of(event)
    for name, message in event.errors:
        if str(name).upper() in TIME_PROPERTIES:
            kind = "bad_rrule" if str(name).upper() == "RRULE" else "bad_value"
            return Skipped(uid, _one_line(f"{str(name).upper()}: {message}"), kind)
    if event.get("DTSTART") is None:
        unread = [message for name, message in event.errors if name is None]
        why = f" (a line could not be read: {unread[0]})" if unread else ""
        return Skipped(uid, _one_line(f"no DTSTART{why}"), "no_dtstart")
    for name in _ZONED:
        for value, params in _times(event.get(name)):
            if isinstance(value, datetime) and value.tzinfo is None and params.get("TZID"):
                tzid = str(params["TZID"]).split(" ~")[0]  # as written (see ics._own_zones)
                reason = f"{name}: unknown time zone {tzid!r} (no usable VTIMEZONE, no known name)"
                return Skipped(uid, _one_line(reason), "unknown_tzid")
    for rule in _listed(event.get("RRULE")):
        found = _rule_fault(rule, event["DTSTART"].dt, end, max_rule_steps)
        if found is not None:
            return Skipped(uid, found[1], found[0])
    return None


def isolate(calendar: icalendar.Calendar, end: datetime, max_rule_steps: int) -> list[Skipped]:
    """The unusable events, taken out of the calendar: every component of a UID one of
    whose components is unusable (a series stands or falls whole)."""
    bad: dict[str, Skipped] = {}
    lone: set[int] = set()  # ids of unusable components without a UID
    found: list[Skipped] = []
    for event in calendar.walk("VEVENT"):
        try:
            why = unusable(event, end, max_rule_steps)
        except Exception as exc:  # a value of a kind nobody expected: this event only
            why = Skipped(uid_of(event), f"cannot be read: {first_line(exc)}", "bad_value")
        if why is None or why.uid in bad:
            continue
        if why.uid:
            bad[why.uid] = why
        else:
            lone.add(id(event))
        found.append(why)
    if found:
        _drop(calendar, lambda c: c.name == "VEVENT" and (uid_of(c) in bad or id(c) in lone))
    return found


def _drop(component: Any, doomed: Any) -> None:
    component.subcomponents = [c for c in component.subcomponents if not doomed(c)]
    for child in component.subcomponents:
        _drop(child, doomed)


def series_of(
    calendar: icalendar.Calendar, skipped: list[Skipped], made: SeriesMade | None = None
) -> list[tuple[str, Any]]:
    """The calendar's series with their UIDs ("" for an event without one), in the order
    of their first VEVENT. Should the library refuse the calendar as a whole, each UID is
    tried alone and the ones it refuses are skipped. A series whose VEVENTs are the very
    components of a series built before (reuse.py: VEVENTs parsed once) is that series:
    built, and its rule expanded from DTSTART, once."""
    real = {uid_of(event) for event in calendar.walk("VEVENT")} - {""}
    groups: dict[str, list[Any]] = {}  # as the library groups them: by UID as written
    for event in calendar.walk("VEVENT"):
        groups.setdefault(str(event.get("UID", id(event))), []).append(event)
    known = {k: made.series(g) for k, g in groups.items()} if made is not None else {}
    fresh = [c for key, group in groups.items() if known.get(key) is None for c in group]
    built: dict[str, Any] = {}
    if fresh:
        alone = icalendar.Calendar()
        alone.subcomponents.extend(fresh)
        for each in _series(alone, skipped):
            built[str(each.uid)] = each
            if made is not None and str(each.uid) in groups:
                made.keep_series(groups[str(each.uid)], each)
    found = [known.get(key) or built.get(key) for key in groups]
    return [(str(s.uid) if str(s.uid) in real else "", s) for s in found if s is not None]


def _series(calendar: icalendar.Calendar, skipped: list[Skipped]) -> list[Any]:
    # Not `recurring_ical_events.of`: its X-WR-TIMEZONE rewrite (x-wr-timezone) takes the
    # zone of a VTIMEZONE without TZNAME, as Outlook writes them, for floating time and
    # moves the event; floating times get the calendar's zone here instead.
    try:
        return list(recurring_ical_events.CalendarQuery(calendar, components=["VEVENT"]).series)
    except Exception:
        found = []
        groups: dict[str, list[Any]] = {}
        for event in calendar.walk("VEVENT"):
            groups.setdefault(uid_of(event) or f"#{id(event)}", []).append(event)
        for key, group in groups.items():
            alone = icalendar.Calendar()
            alone.subcomponents.extend(group)
            try:
                query = recurring_ical_events.CalendarQuery(alone, components=["VEVENT"])
                found.extend(query.series)
            except Exception as exc:
                uid = "" if key.startswith("#") else key
                reason = f"invalid dates or recurrence: {first_line(exc)}"
                skipped.append(Skipped(uid, reason, "expansion"))
        return found


class SeriesMade(Protocol):
    """Series built before, by the very components they were built from."""

    def series(self, group: list[Any]) -> Any | None: ...

    def keep_series(self, group: list[Any], series: Any) -> None: ...


def _rule_fault(
    rule: Any, dtstart: datetime | date, end: datetime, max_rule_steps: int
) -> tuple[str, str] | None:
    """A rule that repeats too fast for meetings, or whose expansion would step through
    too many instants: it is always expanded from its DTSTART, so an hourly rule from 1900
    or a daily one with every BYMINUTE would take minutes and gigabytes before the window
    is reached."""
    frequency = str((rule.get("FREQ") or [""])[0]).upper()
    if frequency in FAST_FREQUENCIES:
        return "rrule_too_fast", f"RRULE FREQ={frequency} repeats too fast for meetings"
    interval = int((rule.get("INTERVAL") or [1])[0])
    if interval < 1:  # dateutil would never step on: an endless loop no deadline can stop
        return "bad_rrule", f"RRULE INTERVAL={interval}: not a positive number"
    step = _STEP.get(frequency)
    if step is None:
        return None
    first = aware(dtstart, UTC)
    until = rule.get("UNTIL")
    last = min(end, aware(until[0], UTC)) if until else end
    if first >= last:
        return None
    per_step = 1
    for part in ("BYSECOND", "BYMINUTE") + (() if frequency == "HOURLY" else ("BYHOUR",)):
        per_step *= max(1, len(rule.get(part) or []))
    steps = int((last - first) / (step * interval)) * per_step
    if steps <= max_rule_steps:
        return None
    return "rrule_too_long", (
        f"RRULE would step through about {steps:,} instants from {first:%Y-%m-%d}"
        f" (at most {max_rule_steps:,})"
    )


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _times(value: Any) -> Iterator[tuple[Any, Any]]:
    """Each time a DTSTART, EXDATE or RDATE property holds, with its parameters (an RDATE
    PERIOD gives its start)."""
    for prop in _listed(value):
        items = getattr(prop, "dts", None) or [prop]
        for item in items:
            moment = getattr(item, "dt", None)
            if isinstance(moment, tuple):
                moment = moment[0]
            yield moment, getattr(item, "params", None) or getattr(prop, "params", {})


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


# --- a body icalendar refuses whole: its components one by one ----------------------------

_BEGIN, _END = b"BEGIN:VEVENT", b"END:VEVENT"
_CONTENT_LINE = re.compile(rb"^[A-Za-z0-9-]+[;:]")
_UID_LINE = re.compile(rb"^UID(?:;[^:\r\n]*)?:([^\r\n]*)\r?$", re.M | re.I)
_FOLD = re.compile(rb"\r?\n[ \t]")


def salvage(body: bytes) -> tuple[bytes, list[Skipped]]:
    """The body without the VEVENTs that do not parse on their own (an unclosed one, one
    cut by another BEGIN, text that is no content line), without the VTIMEZONEs that do
    not, and without stray lines between components; and those VEVENTs, as skipped. The
    caller parses the rest again."""
    outside: list[bytes] = []
    blocks: list[tuple[list[bytes], str | None]] = []  # lines, why it is broken
    current: list[bytes] | None = None
    for line in body.splitlines(keepends=True):
        word = line.strip().upper()
        if word == _BEGIN:
            if current is not None:
                blocks.append((current, "no END:VEVENT before the next BEGIN:VEVENT"))
            current = [line]
        elif current is not None:
            if word == b"END:VCALENDAR":
                blocks.append((current, "no END:VEVENT before END:VCALENDAR"))
                current = None
                outside.append(line)
            else:
                current.append(line)
                if word == _END:
                    blocks.append((current, None))
                    current = None
        elif _CONTENT_LINE.match(line) or line[:1] in (b" ", b"\t") or not word:
            outside.append(line)  # a stray line between components is dropped
    if current is not None:
        blocks.append((current, "no END:VEVENT"))
    outside = _usable_zones(outside)
    kept: list[bytes] = []
    skipped: list[Skipped] = []
    for lines, broken in blocks:
        block = b"".join(lines)
        if broken is None:
            broken = _parse_error(block)
        if broken is None:
            kept.append(block if block.endswith(b"\n") else block + b"\r\n")
        else:
            skipped.append(Skipped(_block_uid(block), f"broken VEVENT: {broken}", "broken_vevent"))
    ends = [i for i, line in enumerate(outside) if line.strip().upper() == b"END:VCALENDAR"]
    end = ends[-1] if ends else len(outside)
    return b"".join(outside[:end] + kept + outside[end:]), skipped


def _usable_zones(lines: list[bytes]) -> list[bytes]:
    """The lines without the VTIMEZONEs icalendar cannot build a zone from (no STANDARD
    or DAYLIGHT, a bad offset or date): the events in such a zone are then skipped, as
    in a zone nobody defined."""
    found: list[bytes] = []
    zone: list[bytes] | None = None
    for line in lines:
        word = line.strip().upper()
        if word == b"BEGIN:VTIMEZONE":
            zone = [line]
        elif zone is not None:
            zone.append(line)
            if word == b"END:VTIMEZONE":
                if _parse_error(b"".join(zone)) is None:
                    found += zone
                zone = None
        else:
            found.append(line)
    return found + (zone or [])


def _parse_error(block: bytes) -> str | None:
    try:
        icalendar.Calendar.from_ical(b"BEGIN:VCALENDAR\r\n" + block + b"\r\nEND:VCALENDAR\r\n")
    except Exception as exc:  # icalendar raises ValueError and friends for broken text
        return _one_line(first_line(exc))
    return None


def _block_uid(block: bytes) -> str:
    found = _UID_LINE.search(_FOLD.sub(b"", block))
    return found.group(1).decode("utf-8", "replace").strip() if found else ""
