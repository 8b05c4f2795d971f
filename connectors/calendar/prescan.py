"""The VEVENTs that cannot reach the window, found in the feed's text before icalendar
parses anything, and left out of the parse.

A calendar exported with its history is mostly single events of past years and series
that have ended; parsing them (icalendar) and building their series (recurring-ical-
events) was most of a 10,000-event feed's 8 s. Reading their times from the text costs a
few microseconds each.

Only what the full parse would take as it is, with nothing to report, is left out: a
VEVENT whose every line is a plain content line; whose DTSTART (exactly one), DTEND or
DURATION, RECURRENCE-ID (without RANGE) and EXDATEs are in the strict forms read here,
in UTC, floating or in a zone known by name (IANA or Windows); with no RDATE and at most
one DAILY or WEEKLY rule of plain parts (INTERVAL, COUNT or UNTIL, BYDAY without
ordinals, WKST) well short of `max_rule_steps`; and only when no VEVENT of its UID can
reach the window (a series stands or is left out whole). Anything else, and any body
whose structure is unusual (VEVENTs nested, unclosed, outside one VCALENDAR), goes to the
full parse unchanged: the pre-scan can make a parse cheaper, never change what it gives.
Bounds are generous (two days either side, wider than any UTC offset; a COUNT taken as
that many weeks) because a wrong "cannot reach" would drop a meeting.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.calendar.lean import lean
from connectors.calendar.shift import Move, moved
from connectors.calendar.verdicts import Verdict, Verdicts

# Wider than the largest UTC offset (14 h) of a local or floating time read as UTC here.
MARGIN = timedelta(days=2)
_FOLD = re.compile(rb"\r?\n[ \t]")
# Searched for in the upper-cased text behind a newline: a literal first character lets
# the regex engine skip ahead (with re.M and re.I it tried every position, 0.2 s a feed).
_BOUNDARY = re.compile(rb"\n(BEGIN|END):([^\r\n]*)")
# A parameter list: names, values plain or quoted (a quoted value may hold ; : ,).
_PARAMS = rb'(?:;[A-Za-z0-9-]+=(?:"[^"\r\n]*"|[^";:,\r\n]*)(?:,(?:"[^"\r\n]*"|[^";:,\r\n]*))*)'
# Every line of a VEVENT's text a content line: a name, parameters, a colon, the value.
_CONTENT_LINES = re.compile(rb"(?:[A-Za-z0-9-]+" + _PARAMS + rb"*:[^\r\n]*\r?\n)*")
_READ = re.compile(
    r"^(DTSTART|DTEND|DURATION|RECURRENCE-ID|EXDATE|RDATE|RRULE|SEQUENCE|UID|BEGIN|END)"
    r"([;:][^\r\n]*)",
    re.M | re.I,
)
_PARAM = re.compile(r';([A-Za-z0-9-]+)=([^";:,]*)')
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATETIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)")
_DURATION = re.compile(
    r"P(?:\d+W|\d+D(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?|T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+S)?)"
)
_DURATION_PART = re.compile(r"(\d+)([WDHMS])")
_UNIT = {"W": 604800, "D": 86400, "H": 3600, "M": 60, "S": 1}
_DAYS = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"}
_STEP_DAYS = {"DAILY": 1, "WEEKLY": 7}
_NEVER = datetime.max  # a span without end: an open-ended rule


class _Keep(Exception):
    """This VEVENT is not one the pre-scan can judge."""


@dataclass(frozen=True)
class Prescanned:
    body: bytes  # the feed without the VEVENTs left out (the body itself when none is)
    left_out: int  # UIDs (series or single events) left out: usable events all the same


@dataclass(frozen=True)
class _Time:
    at: datetime  # naive: the time as written (a date at midnight), its zone not applied
    is_date: bool
    kind: str  # "date", "utc", "floating" or "zoned"


def prescan(
    body: bytes,
    start: datetime,
    end: datetime,
    max_rule_steps: int,
    verdicts: Verdicts | None = None,
) -> Prescanned:
    """The feed without the UIDs none of whose VEVENTs can reach [start, end] (aware);
    the VEVENTs it read whole cut to what the service reads (lean.py). VEVENTs read
    before are taken from `verdicts` (verdicts.py; None: every VEVENT read)."""
    if body.upper().count(b"BEGIN:VCALENDAR") != 1:
        return Prescanned(body, 0)
    unfolded = _FOLD.sub(b"", body)
    blocks = _blocks(unfolded)
    if blocks is None:
        return Prescanned(body, 0)
    low, high, until = _naive(start) - MARGIN, _naive(end) + MARGIN, _naive(end)
    read = [_read_block(unfolded[first:last], verdicts) for _, first, last in blocks]
    judged = [(v.uid, _within_steps(v.span, until, max_rule_steps)) for v in read]
    spans: dict[str, list[_Span | None]] = {}
    for uid, span in judged:
        if uid is not None:  # no UID: the parser keys it by its start, never left out
            spans.setdefault(uid, []).append(span)
    gone = {
        uid
        for uid, found in spans.items()
        if all(s is not None and (s.high < low or s.low > high) for s in found)
    }
    whole = {uid for uid, found in spans.items() if all(s is not None for s in found)}
    parts: list[bytes] = []
    done = 0
    for (head, first, last), verdict, (uid, span) in zip(blocks, read, judged, strict=True):
        parts.append(unfolded[done:head])
        after = _line_end(unfolded, last)
        if uid not in gone:
            cut = unfolded[first:last]
            if span is not None:
                if verdict.lean is None:
                    verdict.lean = lean(cut)
                cut = verdict.lean
            if span is not None and span.move is not None and uid in whole:
                cut = moved(cut, span.move, low)
            parts += (unfolded[head:first], cut, unfolded[last:after])
        done = after
    parts.append(unfolded[done:])
    return Prescanned(b"".join(parts), len(gone))


def _read_block(block: bytes, verdicts: Verdicts | None) -> Verdict:
    """The VEVENT's reading, from `verdicts` when its text was read before."""
    if verdicts is None:
        return Verdict(*_judge(block))
    key = verdicts.key(block)
    found = verdicts.get(key)
    if found is None:
        found = Verdict(*_judge(block))
        verdicts.put(key, found)
    return found


def _within_steps(span: _Span | None, end: datetime, max_rule_steps: int) -> _Span | None:
    """The span, or None (to the parser, which reports it) for a rule whose steps from
    its DTSTART to the window's end, as isolate.py counts them, come near the limit."""
    if span is None or span.stride is None:
        return span
    begin, days = span.stride
    return None if (end - begin).days // days > max_rule_steps // 2 else span


def blocks_of(body: bytes) -> list[tuple[int, int]] | None:
    """Where each VEVENT's text is, from its BEGIN line to the end of its END line, in a
    calendar of the plain structure (one VCALENDAR, VEVENTs directly in it); else None."""
    if body.upper().count(b"BEGIN:VCALENDAR") != 1:
        return None
    found = _blocks(body)
    return None if found is None else [(head, _line_end(body, last)) for head, _, last in found]


def _line_end(text: bytes, at: int) -> int:
    found = text.find(b"\n", at)
    return len(text) if found < 0 else found + 1


def _blocks(text: bytes) -> list[tuple[int, int, int]] | None:
    """Offsets of each VEVENT directly in the VCALENDAR: of its BEGIN line, of the lines
    inside it and of its END line; None when the structure is not the plain one (the
    full parse, and its salvage, judge it then)."""
    found: list[tuple[int, int, int]] = []
    depth = 0
    head = opened = -1
    upper = b"\n" + text.upper()  # offsets in `upper` are one past those in `text`
    for match in _BOUNDARY.finditer(upper):
        begin = match.group(1) == b"BEGIN"
        name = match.group(2).strip()
        if begin:
            depth += 1
            if name == b"VEVENT":
                if depth != 2:
                    return None
                head, opened = match.start(), _line_end(text, match.end() - 1)
        else:
            if name == b"VEVENT":
                if depth != 2 or opened < 0:
                    return None
                found.append((head, opened, match.start()))
                opened = -1
            depth -= 1
            if depth < 0:
                return None
    return found if depth == 0 and opened < 0 else None


def _judge(block: bytes) -> tuple[str | None, _Span | None]:
    """The VEVENT's UID and the span its occurrences may take (earliest start, latest
    end), whatever the window; the span is None when the VEVENT must go to the parser."""
    try:
        text = block.decode("utf-8")  # strict: text icalendar may refuse goes to it
    except UnicodeDecodeError:
        return None, None
    found: dict[str, list[tuple[str, str]]] = {}
    nested = 0
    for match in _READ.finditer(text):
        name = match.group(1).upper()
        rest = match.group(2)
        if name in ("BEGIN", "END"):
            nested += 1 if name == "BEGIN" else -1
        elif not nested:
            params, _, value = rest.partition(":")
            found.setdefault(name, []).append((params, value.strip()))
    uids = found.get("UID", [])
    uid = uids[0][1] if uids and not uids[0][0] else ""
    if not uid:
        return None, None
    try:
        if nested or _CONTENT_LINES.fullmatch(block) is None:
            raise _Keep
        return uid, _span(found)
    except (_Keep, ValueError):
        return uid, None


def _span(found: dict[str, list[tuple[str, str]]]) -> _Span:
    if len(found.get("DTSTART", ())) != 1 or "RDATE" in found:
        raise _Keep
    for name in ("DTEND", "DURATION", "RRULE", "RECURRENCE-ID", "UID", "SEQUENCE"):
        if len(found.get(name, ())) > 1:
            raise _Keep
    if "DTEND" in found and "DURATION" in found:
        raise _Keep
    if "SEQUENCE" in found and not found["SEQUENCE"][0][1].isdigit():
        raise _Keep
    begin = _time(*found["DTSTART"][0])
    for params, value in found.get("EXDATE", ()):
        for each in value.split(","):
            _like(begin, _time(params, each))
    length = _length(begin, found)
    if "RECURRENCE-ID" in found:
        params, value = found["RECURRENCE-ID"][0]
        if "RRULE" in found or "RANGE=" in params.upper():
            raise _Keep
        _like(begin, _time(params, value))
        return _Span(*_ordered(begin.at, begin.at + length))
    if "RRULE" not in found:
        return _Span(*_ordered(begin.at, begin.at + length))
    rule = found["RRULE"][0]
    last = _last_start(rule, begin)
    low, _ = _ordered(begin.at, begin.at + length)
    high = _NEVER if last is None else last + abs(length) + timedelta(days=1)
    parts = dict(part.split("=", 1) for part in rule[1].split(";"))
    interval = int(parts.get("INTERVAL", "1"))
    stride = (begin.at, _STEP_DAYS[parts["FREQ"]] * interval)
    if "COUNT" in parts:
        # Counted from DTSTART: movable only when every step is an instance (no BYDAY),
        # the count then less the instances left behind.
        if "BYDAY" in parts:
            return _Span(low, high, None, stride)
        step = interval * (7 if parts["FREQ"] == "WEEKLY" else 1)
        counted = (int(parts["COUNT"]), step)
        return _Span(low, high, Move(begin.at, abs(length), 7 * interval, None, counted), stride)
    until = None if last is None else last - timedelta(days=1)
    return _Span(low, high, Move(begin.at, abs(length), 7 * interval, until), stride)


@dataclass(frozen=True)
class _Span:
    """The earliest start and latest end a VEVENT's occurrences may have."""

    low: datetime
    high: datetime
    move: Move | None = None
    # A rule's DTSTART and the days of one step: how far it steps to a window's end
    # (prescan._within_steps), the one part of the judgement that depends on the window.
    stride: tuple[datetime, int] | None = None


def _ordered(one: datetime, other: datetime) -> tuple[datetime, datetime]:
    return (one, other) if one <= other else (other, one)


def _length(begin: _Time, found: dict[str, list[tuple[str, str]]]) -> timedelta:
    if "DTEND" in found:
        finish = _like(begin, _time(*found["DTEND"][0]))
        return finish.at - begin.at
    if "DURATION" in found:
        params, value = found["DURATION"][0]
        if params or _DURATION.fullmatch(value) is None:
            raise _Keep
        seconds = sum(int(n) * _UNIT[unit] for n, unit in _DURATION_PART.findall(value))
        if seconds > 400 * 86400:
            raise _Keep
        return timedelta(seconds=seconds)
    return timedelta(days=1) if begin.is_date else timedelta(0)


def _like(begin: _Time, other: _Time) -> _Time:
    """`other`, when it is of DTSTART's kind (a date, or a time with a zone or without):
    a mix the parse may read its own way goes to it."""
    if begin.is_date != other.is_date or (begin.kind == "floating") != (other.kind == "floating"):
        raise _Keep
    return other


def _time(params: str, value: str) -> _Time:
    """A DTSTART, DTEND, RECURRENCE-ID or EXDATE value in its strict form, or _Keep."""
    read = _params(params)
    if read is None:
        raise _Keep
    zone, kind = read
    date = _DATE.fullmatch(value)
    if date is not None and kind in ("", "DATE") and not zone:
        year, month, day = (int(n) for n in date.groups())
        return _Time(datetime(year, month, day), True, "date")
    moment = _DATETIME.fullmatch(value)
    if moment is None or kind not in ("", "DATE-TIME") or (zone and moment.group(7)):
        raise _Keep
    year, month, day, hour, minute, second = (int(n) for n in moment.groups()[:6])
    at = datetime(year, month, day, hour, minute, second)  # ValueError: no such date
    return _Time(at, False, "utc" if moment.group(7) else "zoned" if zone else "floating")


@lru_cache(maxsize=256)
def _params(params: str) -> tuple[str, str] | None:
    """(TZID, VALUE) of a time's parameters ("" for either not given); None for another
    parameter, one not of the plain form, or a zone not known by name. A feed has few
    distinct ones: read once each."""
    zone = ""
    kind = ""
    for name, param in _PARAM.findall(params):
        name = name.upper()
        if name == "TZID" and not zone:
            zone = param
        elif name == "VALUE" and not kind:
            kind = param.upper()
        else:
            return None
    if _PARAM.sub("", params) or (zone and not _known_zone(zone)):
        return None
    return zone, kind


def _last_start(rule: tuple[str, str], begin: _Time) -> datetime | None:
    """The latest start the rule can give (generously), None when it has no end; _Keep
    for a rule not of the simple kinds read here."""
    params, text = rule
    if params or text != text.upper():
        raise _Keep
    parts: dict[str, str] = {}
    for part in text.split(";"):
        key, _, value = part.partition("=")
        if key in parts or not value:
            raise _Keep
        parts[key] = value
    if set(parts) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST"}:
        raise _Keep
    step = _STEP_DAYS.get(parts.get("FREQ", ""))
    interval = parts.get("INTERVAL", "1")
    if step is None or not interval.isdigit() or int(interval) < 1:
        raise _Keep
    if "BYDAY" in parts and not set(parts["BYDAY"].split(",")) <= _DAYS:
        raise _Keep
    if parts.get("WKST", "MO") not in _DAYS or ("COUNT" in parts and "UNTIL" in parts):
        raise _Keep
    if "COUNT" in parts:
        count = parts["COUNT"]
        if not count.isdigit() or int(count) < 1:
            raise _Keep
        # COUNT instances take at most COUNT weeks of the interval (a weekday rule has one
        # a week at least), the first week perhaps partly before DTSTART.
        return begin.at + timedelta(days=7 * int(interval) * (int(count) + 1))
    if "UNTIL" in parts:
        until = _time("", parts["UNTIL"])
        # As RFC 5545 says: a date for a date DTSTART, UTC for a zoned or UTC one,
        # floating for a floating one (the library reads other mixes its own ways).
        expected = {"date": "date", "utc": "utc", "zoned": "utc", "floating": "floating"}
        if until.kind != expected[begin.kind]:
            raise _Keep
        return until.at + timedelta(days=1)
    return None


@lru_cache(maxsize=512)
def _known_zone(name: str) -> bool:
    """A TZID the parse resolves by name (ics._own_zones drops a VTIMEZONE of such a
    name and uses the IANA zone)."""
    name = WINDOWS_TO_OLSON.get(name.strip(), name.strip())
    if not name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))
