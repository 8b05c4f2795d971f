"""VEVENTs parsed once: the next version of a feed parses only the VEVENTs whose text
changed.

A feed polled every few minutes changes by a few events at a time; parsing its text
(icalendar) was most of the work of each new version. Each VEVENT's parsed component is
kept, keyed by the SHA-256 of its text as handed to icalendar (after the pre-scan and
the renaming of custom zones, so a zone's definition is part of the key), in one bounded
cache per process shared by all feeds (an event in two feeds, an owner's and a room's,
is parsed once). The parse of a VEVENT depends on its text alone: zones it names are
either renamed by their definition's hash (ics._own_zones) or known by name; icalendar
and recurring-ical-events only read a component, never change it, so one can serve
every parse that has its text, in any thread.

Only a calendar of the plain structure (prescan._blocks) is parsed this way, and only
when icalendar takes the rest of it whole; otherwise the body is parsed as before, its
broken VEVENTs salvaged one by one.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import icalendar

from connectors.calendar.lines import parse_text
from connectors.calendar.prescan import blocks_of
from connectors.calendar.verdicts import Verdicts

# About 14 KB each with its series (tracemalloc, bench/calendar_feeds.py): 140 MB at most.
MAX_EVENTS = 10_000
# The pre-scan's readings (verdicts.py), of every VEVENT, in the window or not: under 1 KB
# each, twice as many as a feed may have VEVENTs (ics.ParseLimits.max_events).
MAX_VERDICTS = 40_000


class ParsedEvents:
    """Parsed VEVENT components by the hash of their text, the least recently used
    dropped beyond `max_events`; and the series (recurring-ical-events) built of them,
    as many, by the components they were built from (isolate.series_of): a series
    built once is expanded from its DTSTART once (dateutil keeps the instances it
    stepped through), the window's move only adds its new end. And what the pre-scan
    read of each VEVENT's text (`verdicts`), so a next version reads only its changes."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.max_events = max_events
        self.verdicts = Verdicts(MAX_VERDICTS * max_events // MAX_EVENTS)
        self._found: OrderedDict[bytes, Any] = OrderedDict()
        self._series: OrderedDict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()  # parses run in worker threads, several at once
        self.expanding = threading.Lock()  # held by the parse expanding its series (ics.py)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._found)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()
            self._series.clear()
            self.hits = self.misses = 0
        self.verdicts.clear()

    def get(self, key: bytes) -> Any | None:
        with self._lock:
            found = self._found.get(key)
            if found is None:
                self.misses += 1
                return None
            self._found.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: bytes, component: Any) -> None:
        with self._lock:
            self._found[key] = component
            self._found.move_to_end(key)
            while len(self._found) > self.max_events:
                self._found.popitem(last=False)

    def series(self, group: list[Any]) -> Any | None:
        """The series built of exactly these components (the same objects), if any."""
        key = tuple(id(c) for c in group)
        with self._lock:
            found = self._series.get(key)
            # The entry holds its components, so no other object has one of their ids.
            if found is None or not all(a is b for a, b in zip(found[0], group, strict=True)):
                return None
            self._series.move_to_end(key)
            return found[1]

    def keep_series(self, group: list[Any], series: Any) -> None:
        with self._lock:
            self._series[tuple(id(c) for c in group)] = (tuple(group), series)
            while len(self._series) > self.max_events:
                self._series.popitem(last=False)


PARSED = ParsedEvents()


def parse_calendar(body: bytes, parsed: ParsedEvents | None = PARSED) -> icalendar.Calendar:
    """The calendar of `body`, its VEVENTs seen before taken from `parsed`; raises as
    icalendar does when the rest does not parse."""
    blocks = blocks_of(body) if parsed is not None and parsed.max_events > 0 else None
    if parsed is None or blocks is None or not blocks:
        return parse_text(body)
    keys = [hashlib.sha256(body[head:after]).digest() for head, after in blocks]
    found = [parsed.get(key) for key in keys]
    # The text without the VEVENTs at hand: the calendar's own lines, its zones, the rest.
    rest = _without(body, [b for b, c in zip(blocks, found, strict=True) if c is not None])
    calendar = parse_text(rest)
    fresh = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if len(fresh) != sum(c is None for c in found):  # not the plain structure after all
        return parse_text(body)
    others = [c for c in calendar.subcomponents if c.name != "VEVENT"]
    events: list[Any] = []
    new = iter(fresh)
    for key, component in zip(keys, found, strict=True):
        if component is None:
            component = next(new)
            parsed.put(key, component)
        events.append(component)
    # The VEVENTs in the order of the text (a series' first of equal SEQUENCE wins, and
    # skipped events are reported in that order); the other components before them.
    calendar.subcomponents = others + events
    return calendar


def _without(body: bytes, blocks: list[tuple[int, int]]) -> bytes:
    parts: list[bytes] = []
    done = 0
    for head, after in blocks:
        parts.append(body[done:head])
        done = after
    parts.append(body[done:])
    return b"".join(parts)
