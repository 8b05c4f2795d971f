"""What a large iCalendar feed costs the poller: parse + expand, diff, memory, refusal.

A generated feed of `--events` VEVENTs (10,000 by default), shaped like a busy shared
calendar exported with its history: single events over two years past and three months
ahead, weekly series (COUNT, UNTIL or open-ended, some from long ago), weekday daily
series, EXDATEs, overrides (moved, retitled, a few cancelled), attendees, zones given
by IANA name, by Windows name with Outlook's VTIMEZONE (W. Europe, Pacific, Tokyo), and
UTC. Measured over the 30-day horizon the service uses:

- parse + expand (`parse_feed`) of the feed with nothing parsed before (cold: an empty
  cache of parsed VEVENTs, connectors/calendar/reuse.py), then of a second version with
  a few changes (events moved, retitled, removed, added; new EXDATEs) after the first
  (as the poller meets it: the first version's VEVENTs parsed), and cold;
- the same body again, after the window moved (the poller expands an unchanged feed
  again every 6 hours): parse + expand with its VEVENTs parsed before;
- an unchanged body from a server without validators: the poller hashes it and compares
  (`body_digest`), nothing is parsed;
- the diff (`diff_feed`) against an empty state (the first poll: every occurrence is
  scheduled) and against the previous state (the second poll: only the changes);
- occurrences produced, commands, peak memory (tracemalloc's peak over parse + expand +
  diff, in a run of its own as tracemalloc slows Python down) and the process's RSS max;
- the 100,000-event feed (`--refuse-events`) refused by the event cap, and how long that
  takes (it must fail fast, with its reason).

Each parse is timed on its own, cold unless said (the best of `--parse-repeat` runs).
Parsing is timed without the expansion deadline (`ParseLimits.max_seconds`), so the
figure is the work's; whether the service's own limits take the feed is reported apart.
The best of `--repeat` diff runs is reported. Prints one JSON line of figures last.

    .venv/bin/python bench/calendar_feeds.py [--events 10000] [--repeat 3] [--parse-repeat 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the project's root on sys.path, for `service` and `connectors`.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse
import gc
import json
import platform
import random
import resource
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any, TypeVar

from connectors.calendar.fetch import FeedError, FetchLimits
from connectors.calendar.ics import Occurrence, ParseLimits, parse_feed
from connectors.calendar.reuse import ParsedEvents
from service.app import gc_thresholds
from service.calendar.poller import body_digest
from service.calendar.translate import FeedState, diff_feed
from service.domain.feeds import Feed

T = TypeVar("T")
HORIZON = timedelta(days=30)
FEED = Feed(
    feed_id="bench",
    url="https://calendar.example/bench.ics",
    organizer_email="organiser@acme.example",
    tenant="CRM-BENCH",
)

# Outlook's VTIMEZONE blocks for the Windows names it writes as TZID.
VTIMEZONES = {
    "W. Europe Standard Time": (
        "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n"
        "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\n"
        "TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\n"
        "TZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n"
        "END:VTIMEZONE\r\n"
    ),
    "Pacific Standard Time": (
        "BEGIN:VTIMEZONE\r\nTZID:Pacific Standard Time\r\n"
        "BEGIN:STANDARD\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0700\r\n"
        "TZOFFSETTO:-0800\r\nRRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\nEND:STANDARD\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0800\r\n"
        "TZOFFSETTO:-0700\r\nRRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n"
        "END:VTIMEZONE\r\n"
    ),
    "Tokyo Standard Time": (
        "BEGIN:VTIMEZONE\r\nTZID:Tokyo Standard Time\r\n"
        "BEGIN:STANDARD\r\nDTSTART:16010101T000000\r\nTZOFFSETFROM:+0900\r\n"
        "TZOFFSETTO:+0900\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\n"
    ),
}
# (TZID as written, the zone it means); None: UTC written with Z.
ZONES: list[tuple[str | None, str]] = [
    (None, "UTC"),
    ("Europe/Paris", "Europe/Paris"),
    ("America/New_York", "America/New_York"),
    ("Asia/Kolkata", "Asia/Kolkata"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
]
TITLES = [
    "Weekly sync",
    "1:1",
    "Sprint planning",
    "Design review",
    "Customer call",
    "Budget review",
    "Standup",
    "Interview",
    "Board prep",
    "Retro",
    "All hands",
    "Security review",
]


# -- the feed ----------------------------------------------------------------------------------
@dataclass
class Event:
    """One VEVENT, kept as parts so a second version can change a few."""

    uid: str
    start: datetime  # local time of `tzid` (naive), or UTC (aware) when tzid is None
    tzid: str | None
    minutes: int
    summary: str
    rrule: str | None = None
    exdates: tuple[datetime, ...] = ()
    recurrence_id: datetime | None = None
    status: str | None = None
    attendees: tuple[str, ...] = ()

    def text(self) -> str:
        def stamp(value: datetime) -> str:
            return f"{value:%Y%m%dT%H%M%S}" + ("Z" if self.tzid is None else "")

        def when(name: str, *values: datetime) -> str:
            zone = "" if self.tzid is None else f";TZID={self.tzid}"
            return f"{name}{zone}:" + ",".join(stamp(v) for v in values)

        lines = [
            "BEGIN:VEVENT",
            f"UID:{self.uid}",
            "DTSTAMP:20260101T000000Z",
            when("DTSTART", self.start),
            when("DTEND", self.start + timedelta(minutes=self.minutes)),
            f"SUMMARY:{self.summary}",
            "ORGANIZER;CN=Org:mailto:organiser@acme.example",
        ]
        if self.recurrence_id is not None:
            lines.append(when("RECURRENCE-ID", self.recurrence_id))
        if self.rrule:
            lines.append(f"RRULE:{self.rrule}")
        if self.exdates:
            lines.append(when("EXDATE", *self.exdates))
        if self.status:
            lines.append(f"STATUS:{self.status}")
        lines += [
            f"ATTENDEE;CN=Guest;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}"
            for a in self.attendees
        ]
        lines.append("END:VEVENT")
        return "\r\n".join(lines) + "\r\n"


def body_of(events: list[Event]) -> bytes:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//ucaas-sync//EN\r\n"
    head += "X-WR-CALNAME:Bench\r\n" + "".join(VTIMEZONES.values())
    return (head + "".join(e.text() for e in events) + "END:VCALENDAR\r\n").encode()


def generate(count: int, today: date, seed: int = 7) -> list[Event]:
    """`count` VEVENTs: 70% single events, 18% weekly and 3% daily series, 9% overrides
    of those series (1 in 25 of them cancelling an instance)."""
    rng = random.Random(seed)
    people = [f"person{n:04d}@acme.example" for n in range(2000)]
    people += [f"guest{n:03d}@partner{n % 40}.example" for n in range(400)]
    weekly_n, daily_n = int(count * 0.18), int(count * 0.03)
    overrides_n = int(count * 0.09)
    single_n = count - weekly_n - daily_n - overrides_n

    def local(day_from: int, day_to: int) -> tuple[datetime, str | None]:
        tzid, _ = rng.choice(ZONES)
        day = today + timedelta(days=rng.randint(day_from, day_to))
        start = datetime.combine(day, clock(rng.randint(7, 18), rng.choice((0, 15, 30, 45))))
        return (start.replace(tzinfo=UTC) if tzid is None else start), tzid

    def invitees() -> tuple[str, ...]:
        return tuple(rng.sample(people, rng.choice((0, 1, 1, 2, 3, 4, 6, 8))))

    events: list[Event] = []
    for n in range(single_n):
        start, tzid = local(-700, 90)
        minutes = rng.choice((15, 30, 30, 45, 60, 60, 90))
        title = rng.choice(TITLES) + f" #{n}"
        events.append(
            Event(
                f"single-{n}@bench", start, tzid, minutes, title, None, (), None, None, invitees()
            )
        )
    series: list[Event] = []
    for n in range(weekly_n):
        start, tzid = local(-700, 20)
        kind = rng.random()
        if kind < 0.5:
            rule = f"FREQ=WEEKLY;COUNT={rng.randint(4, 120)}"
        elif kind < 0.8:
            until = datetime.combine(today + timedelta(days=rng.randint(-300, 200)), clock(23))
            rule = f"FREQ=WEEKLY;UNTIL={until:%Y%m%dT%H%M%S}Z"
        else:
            rule = "FREQ=WEEKLY" + rng.choice(("", ";INTERVAL=2", ";BYDAY=MO,TH"))
        series.append(
            Event(
                f"weekly-{n}@bench",
                start,
                tzid,
                rng.choice((30, 60)),
                rng.choice(TITLES),
                rule,
                (),
                None,
                None,
                invitees(),
            )
        )
    for n in range(daily_n):
        start, tzid = local(-400, 10)
        count_part = rng.choice(("", f";COUNT={rng.randint(5, 200)}"))
        rule = "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR" + count_part
        series.append(
            Event(f"daily-{n}@bench", start, tzid, 15, "Standup", rule, (), None, None, invitees())
        )
    # EXDATEs (1 to 3, of the next instances) on 30% of the series.
    for event in series:
        if rng.random() < 0.3:
            picks = {rng.randint(0, 4) for _ in range(rng.randint(1, 3))}
            event.exdates = tuple(sorted(_nth_after(event, today, n) for n in picks))
    events += series
    # Overrides: one of the next instances moved by an hour (or cancelled), of a series.
    for n in range(overrides_n):
        parent = series[n % len(series)]
        original = _nth_after(parent, today, 1 + n // len(series))
        cancelled = n % 25 == 0
        events.append(
            Event(
                parent.uid,
                original + timedelta(hours=1),
                parent.tzid,
                parent.minutes,
                parent.summary + (" (moved)" if not cancelled else ""),
                None,
                (),
                original,
                "CANCELLED" if cancelled else None,
                parent.attendees,
            )
        )
    return events


def _nth_after(event: Event, today: date, n: int) -> datetime:
    """The series' n-th instance from today on (past its COUNT or UNTIL, perhaps: then an
    override stands alone and an EXDATE excludes nothing, as in real calendars)."""
    rule = event.rrule or ""
    step = 1 if "DAILY" in rule else 14 if "INTERVAL=2" in rule else 7
    since = (today - event.start.date()).days
    at = event.start + timedelta(days=max(0, -(-since // step)) * step)
    if "BYDAY=MO,TH" in rule:  # Mondays and Thursdays from a start on any day
        found = [d for d in range(7 * (n // 2 + 2)) if (at + timedelta(d)).weekday() in (0, 3)]
        return at + timedelta(days=found[n])
    taken = -1
    while True:
        if "BYDAY=MO,TU,WE,TH,FR" not in rule or at.weekday() < 5:
            taken += 1
            if taken == n:
                return at
        at += timedelta(days=step)


def second_version(
    events: list[Event], today: date, rng: random.Random, changes: int = 5
) -> tuple[list[Event], dict[str, int]]:
    """A few changes: singles in the window moved and retitled, some removed, new ones
    added, and a new EXDATE on a few series."""
    changed = [Event(**vars(e)) for e in events]
    soon = [
        i
        for i, e in enumerate(changed)
        if e.uid.startswith("single-") and 2 <= (e.start.date() - today).days <= 25
    ]
    picked = rng.sample(soon, changes * 3)
    for i in picked[:changes]:
        changed[i].start += timedelta(hours=2)
    for i in picked[changes : 2 * changes]:
        changed[i].summary += " (updated)"
    removed = {changed[i].uid for i in picked[2 * changes :]}
    changed = [e for e in changed if e.uid not in removed]
    for n in range(changes):
        start = datetime.combine(today + timedelta(days=3 + n), clock(10), tzinfo=UTC)
        changed.append(Event(f"new-{n}@bench", start, None, 30, f"New meeting {n}"))
    open_ended = [
        e
        for e in changed
        if e.rrule in ("FREQ=WEEKLY", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR") and not e.exdates
    ]
    for event in open_ended[:changes]:
        event.exdates = (_nth_after(event, today, 2),)
    kinds = ("moved", "retitled", "removed", "added", "exdates_added")
    return changed, dict.fromkeys(kinds, changes)


# -- measuring ---------------------------------------------------------------------------------
def timed(function: Callable[[], T], repeat: int) -> tuple[T, float]:
    """The result and the best wall time of `repeat` runs, in ms."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        gc.collect()
        began = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - began)
    return result, round(best * 1000, 1)


def rss_max_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(usage / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def commands_by_kind(translation: Any) -> dict[str, int]:
    return dict(
        sorted(Counter(str(getattr(c.kind, "value", c.kind)) for c in translation.commands).items())
    )


def main(args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC)
    today = now.date()
    events = generate(args.events, today)
    body = body_of(events)
    events_2, changes = second_version(events, today, random.Random(11))
    body_2 = body_of(events_2)
    service_limits = ParseLimits()
    # Measured without the expansion deadline (whether the service's limits take the feed
    # is reported apart): the figures are the work's, not where a deadline cut it.
    limits = replace(service_limits, max_seconds=3600.0)

    def parse(
        data: bytes,
        with_limits: ParseLimits = limits,
        reuse: ParsedEvents | None = None,
        at: datetime = now,
    ) -> tuple[Occurrence, ...]:
        """Cold unless given VEVENTs parsed before (`reuse`)."""
        fresh = ParsedEvents() if reuse is None else reuse
        window = {"start": at, "end": at + HORIZON}
        return parse_feed(data, **window, limits=with_limits, reuse=fresh).occurrences

    def after_first(data: bytes, at: datetime = now) -> tuple[Occurrence, ...]:
        """`data` parsed with the first version's VEVENTs parsed before (not timed)."""
        warm = ParsedEvents()
        parse(body, reuse=warm)
        gc.collect()
        began = time.perf_counter()
        found = parse(data, reuse=warm, at=at)
        reused_ms.append((time.perf_counter() - began) * 1000)
        return found

    reused_ms: list[float] = []
    began = time.perf_counter()
    try:
        parse(body, service_limits)
        accepted: str = "accepted"
    except FeedError as exc:
        accepted = f"refused: {exc.reason}"
    default_ms = round((time.perf_counter() - began) * 1000, 1)
    occurrences, parse_ms = timed(lambda: parse(body), args.parse_repeat)
    first, diff_empty_ms = timed(lambda: diff_feed(FEED, occurrences, None, now), args.repeat)
    assert isinstance(first.state, FeedState)
    occurrences_2, parse_2_cold_ms = timed(lambda: parse(body_2), args.parse_repeat)
    for _ in range(args.parse_repeat):
        assert after_first(body_2) == occurrences_2, "reused VEVENTs must give the same"
    parse_2_ms, reused_ms = round(min(reused_ms), 1), []
    later = now + timedelta(hours=6)  # the poller's re-expansion of an unchanged feed
    for _ in range(args.parse_repeat):
        assert after_first(body, later) == parse(body, at=later)
    same_ms = round(min(reused_ms), 1)
    last = body_digest(body)
    _, unchanged_ms = timed(lambda: body_digest(body) == last, args.repeat)
    second, diff_prev_ms = timed(
        lambda: diff_feed(FEED, occurrences_2, first.state, now), args.repeat
    )
    unchanged, diff_same_ms = timed(
        lambda: diff_feed(FEED, occurrences, first.state, now), args.repeat
    )
    assert not unchanged.commands, "an unchanged feed must make no command"

    kinds = Counter(
        "cancelled" if o.cancelled else "single" if o.key == o.uid else "of_series"
        for o in occurrences
    )
    zones = Counter(o.zone for o in occurrences)
    mb, mb_2 = len(body) / 1e6, len(body_2) / 1e6
    print(f"feed: {len(events):,} VEVENTs, {mb:.1f} MB; second version {mb_2:.1f} MB")
    print(f"with the service's limits ({service_limits}): {accepted} in {default_ms:,.0f} ms")
    print(
        f"parse + expand: {parse_ms:,.0f} ms -> {len(occurrences):,} occurrences in "
        f"{HORIZON.days} days ({dict(kinds)})"
    )
    print(f"zones seen: {dict(zones.most_common())}")
    print(f"diff against empty state: {diff_empty_ms:,.1f} ms -> {commands_by_kind(first)}")
    print(
        f"second version: parse + expand {parse_2_ms:,.0f} ms after the first "
        f"({parse_2_cold_ms:,.0f} ms cold); diff {diff_prev_ms:,.1f} ms "
        f"-> {commands_by_kind(second)} for {changes}"
    )
    print(f"the same body 6 hours later, its VEVENTs parsed before: {same_ms:,.0f} ms")
    print(f"an unchanged body without validators (hashed, not parsed): {unchanged_ms} ms")
    print(f"unchanged diff: {diff_same_ms:,.1f} ms -> 0 commands")

    # Memory: tracemalloc's peak over one poll's work, in a run of its own.
    gc.collect()
    tracemalloc.start()
    traced = parse(body)
    diff_feed(FEED, traced, None, now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # What the cache of parsed VEVENTs holds for this feed once it is parsed.
    gc.collect()
    tracemalloc.start()
    held = ParsedEvents()
    parse(body, reuse=held)
    gc.collect()
    cache_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"VEVENTs parsed and kept for reuse: {len(held):,}, {cache_bytes / 1e6:.1f} MB")
    del traced
    rss_poll = rss_max_mb()
    print(
        f"peak (tracemalloc) over parse + expand + diff: {peak / 1e6:.1f} MB; RSS max {rss_poll} MB"
    )

    # The 100,000-event feed: refused, fast, with its reason.
    huge = body_of(generate(args.refuse_events, today, seed=3))
    began = time.perf_counter()
    refused: str | None = None
    try:
        parse(huge, service_limits)
    except FeedError as exc:
        refused = exc.reason
    refuse_ms = round((time.perf_counter() - began) * 1000, 1)
    fetch_cap = FetchLimits().max_bytes
    print(
        f"{args.refuse_events:,}-event feed ({len(huge) / 1e6:.1f} MB): refused in "
        f"{refuse_ms} ms: {refused}"
    )
    if len(huge) > fetch_cap:
        print(f"  (and the fetcher's {fetch_cap / 2**20:.0f} MiB cap stops it before parsing)")
    assert refused is not None, "the oversized feed was not refused"

    return {
        "bench": "calendar",
        "python": platform.python_version(),
        "events": len(events),
        "feed_mb": round(mb, 2),
        "horizon_days": HORIZON.days,
        "service_limits": accepted,
        "service_limits_ms": default_ms,
        "occurrences": len(occurrences),
        "occurrence_kinds": dict(kinds),
        "zones": dict(zones.most_common()),
        "parse_expand_ms": parse_ms,
        "diff_empty_ms": diff_empty_ms,
        "commands_first": len(first.commands),
        "second_changes": changes,
        "parse_expand_second_ms": parse_2_ms,
        "parse_expand_second_cold_ms": parse_2_cold_ms,
        "parse_expand_same_later_ms": same_ms,
        "unchanged_no_validators_ms": unchanged_ms,
        "diff_previous_ms": diff_prev_ms,
        "commands_second": commands_by_kind(second),
        "diff_unchanged_ms": diff_same_ms,
        "tracemalloc_peak_mb": round(peak / 1e6, 1),
        "reuse_cache_events": len(held),
        "reuse_cache_mb": round(cache_bytes / 1e6, 1),
        "rss_max_mb_after_poll": rss_poll,
        "rss_max_mb_end": rss_max_mb(),
        "refused_events": args.refuse_events,
        "refused_feed_mb": round(len(huge) / 1e6, 1),
        "refused_over_fetch_cap": len(huge) > fetch_cap,
        "refuse_ms": refuse_ms,
        "refused_reason": refused,
        "repeat": args.repeat,
        "parse_repeat": args.parse_repeat,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--refuse-events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each diff (best kept)")
    parser.add_argument("--parse-repeat", type=int, default=1, help="runs of each parse")
    gc_thresholds.tune()  # as in the service's process, which parses the feeds
    print(json.dumps(main(parser.parse_args())))
