"""The chaos scenario's calendars: one feed per organiser, in versions served one after
another, and the meetings each version asks for (computed here, not by the service).

A version is a tuple of `Series` (one VEVENT each, with its overrides). An occurrence's
key is the UID for a single event (moving it is an edit) and (UID, original start) for a
series' instance, as iCalendar defines them; the meeting it asks for is (start, title,
minutes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tests.support.feeds import vcalendar, vevent

PARIS = ZoneInfo("Europe/Paris")
STEP_DAYS = {"DAILY": 1, "WEEKLY": 7}


@dataclass(frozen=True)
class Moved:
    """An instance of a series moved (RECURRENCE-ID): its own start, length and title."""

    index: int
    start: datetime
    minutes: int
    summary: str


@dataclass(frozen=True)
class Series:
    uid: str
    summary: str
    first: datetime  # aware
    minutes: int
    tzid: str | None = None  # None: times in UTC
    freq: Literal["DAILY", "WEEKLY"] | None = None
    count: int = 1
    skipped: tuple[int, ...] = ()  # EXDATEs, by position
    cancelled: bool = False  # STATUS:CANCELLED
    sequence: int = 0
    moved: tuple[Moved, ...] = ()

    def starts(self) -> list[datetime]:
        """The rule's starts: wall-clock days, so a local time holds over DST."""
        step = STEP_DAYS.get(self.freq or "", 0)
        return [self.first + timedelta(days=i * step) for i in range(self.count)]

    def occurrences(self) -> dict[str, tuple[datetime, str, int]]:
        """Key -> (start in UTC, title, minutes) of each meeting this event asks for."""
        if self.cancelled:
            return {}
        if self.freq is None:
            return {self.uid: (self.first.astimezone(UTC), self.summary, self.minutes)}
        moved = {m.index: m for m in self.moved}
        found: dict[str, tuple[datetime, str, int]] = {}
        for i, start in enumerate(self.starts()):
            if i in self.skipped:
                continue
            key = f"{self.uid}@{start.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            if i in moved:
                m = moved[i]
                found[key] = (m.start.astimezone(UTC), m.summary, m.minutes)
            else:
                found[key] = (start.astimezone(UTC), self.summary, self.minutes)
        return found

    def ics(self, organiser: str) -> str:
        rule = f"FREQ={self.freq};COUNT={self.count}" if self.freq else None
        starts = self.starts()
        text = vevent(
            self.uid,
            self.first,
            self.summary,
            minutes=self.minutes,
            tzid=self.tzid,
            rrule=rule,
            exdates=[starts[i] for i in self.skipped],
            status="CANCELLED" if self.cancelled else None,
            organizer=organiser,
            sequence=self.sequence,
        )
        for m in self.moved:
            text += vevent(
                self.uid,
                m.start,
                m.summary,
                minutes=m.minutes,
                tzid=self.tzid,
                recurrence_id=starts[m.index],
                organizer=organiser,
                sequence=self.sequence + 1,
            )
        return text


@dataclass(frozen=True)
class FeedPlan:
    feed_id: str
    organiser: str
    tenant: str
    versions: tuple[tuple[Series, ...], ...]

    def body(self, version: int) -> bytes:
        return vcalendar(*(s.ics(self.organiser) for s in self.versions[version]))

    def meetings(self, version: int) -> dict[str, tuple[datetime, str, int]]:
        found: dict[str, tuple[datetime, str, int]] = {}
        for series in self.versions[version]:
            found.update(series.occurrences())
        return found


def feed_plan(
    feed_id: str,
    organiser: str,
    tenant: str,
    now: datetime,
    rng: random.Random,
    scale: float,
    *,
    restored: bool = False,
) -> FeedPlan:
    """Five versions: the first; renamed, moved, EXDATE'd and new; cancelled, overridden
    and vanished; a shorter series and one more new event; then emptied (no event at all:
    its cancels are held for approval, which the run never gives). `restored`: a sixth,
    the fourth again (the held cancels are moot). Every start is 1 to 24 days ahead
    (inside the service's 30-day horizon, never in the past)."""
    day = now.astimezone(UTC).date() + timedelta(days=1)

    def at(days: int, hour: int, minute: int = 0, zone: ZoneInfo | None = None) -> datetime:
        return datetime.combine(day + timedelta(days=days), time(hour, minute), tzinfo=zone or UTC)

    label = feed_id.replace("feed-", "F")
    weekly = Series(f"{feed_id}-weekly", f"{label} weekly review", at(0, 10, zone=PARIS), 60,
                    "Europe/Paris", "WEEKLY", count=4)  # fmt: skip
    daily = Series(f"{feed_id}-daily", f"{label} stand-up", at(1, 7, 15), 15, None, "DAILY",
                   count=8)  # fmt: skip
    slots = rng.sample([(d, h) for d in range(2, 23) for h in range(8, 17)], 40)
    singles = max(6, round(8 * scale))
    one_offs = [
        Series(f"{feed_id}-one-{i}", f"{label} one-off {i}", at(d, h), rng.choice((30, 45)))
        for i, (d, h) in enumerate(slots[:singles])
    ]
    v1 = (weekly, daily, *one_offs)
    spare = iter(slots[singles:])

    def fresh(n: int, version: int) -> Series:
        d, h = next(spare)
        return Series(f"{feed_id}-new-{version}-{n}", f"{label} new {version}.{n}", at(d, h), 30)

    renamed = replace(one_offs[0], summary=f"{label} one-off 0 renamed", sequence=1)
    d, h = next(spare)
    moved = replace(one_offs[1], first=at(d, h), sequence=1)
    v2 = (weekly, replace(daily, skipped=(3,)), renamed, moved, *one_offs[2:],
          fresh(0, 2), fresh(1, 2))  # fmt: skip
    override = Moved(2, at(14, 11, 30, zone=PARIS), 30, f"{label} weekly review (moved)")
    weekly3 = replace(weekly, summary=f"{label} weekly (new name)", moved=(override,), sequence=1)
    cancelled = replace(one_offs[2], cancelled=True, sequence=1)
    v3 = (weekly3, *v2[1:4], cancelled, *v2[5:])  # one_offs[3] is gone from the file
    v3 = tuple(s for s in v3 if s.uid != one_offs[3].uid)
    v4 = (*[replace(s, count=6) if s.uid == daily.uid else s for s in v3], fresh(0, 4))
    emptied: tuple[Series, ...] = ()
    versions = (v1, v2, v3, v4, emptied, *((v4,) if restored else ()))
    return FeedPlan(feed_id, organiser, tenant, versions)
