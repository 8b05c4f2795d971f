"""A rule's DTSTART moved on to shortly before the window, by whole periods of the rule.

recurring-ical-events (dateutil) steps through a rule's instances from its DTSTART at
every expansion: a weekly series of ten years is 500 steps before its first meeting in
the window, and the series of a calendar kept for years were a quarter of a feed's parse.
For a rule the pre-scan has read whole (DAILY or WEEKLY, INTERVAL, BYDAY without
ordinals, UNTIL or no end, or a COUNT without BYDAY, every step an instance, the count
then lessened by the instances left behind; no RDATE, no THISANDFUTURE override in its
series), moving DTSTART and DTEND on by whole weeks of the
interval leaves its instances from there on as they were: the same wall time, the same
days of the week, the same interval. The instances left behind, and the new DTSTART
itself (the library counts a DTSTART as an occurrence even off the rule's days), end
before the window less its margin, so no occurrence in the window changes.

The step is taken in 28-day strides from a fixed day, so the text (the key of reuse.py's
cache of parsed VEVENTs) changes once in four weeks, not at every poll.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Move:
    """What moving a rule's DTSTART needs to know."""

    begin: datetime  # DTSTART as written (naive; a date at midnight)
    length: timedelta  # of an occurrence
    period_days: int  # a week of the interval: the rule's instances repeat in it
    until: datetime | None  # the rule's UNTIL as written, None without one
    # COUNT, and the days between its instances (each step an instance: no BYDAY)
    counted: tuple[int, int] | None = None


_ANCHOR = datetime(2000, 1, 3)  # the periods' origin: DTSTARTs move in 28-day steps from it
_DTSTART_OR_END = re.compile(
    rb"^(DTSTART|DTEND)((?:;[^:\r\n]*)?):(\d{8}(?:T\d{6}Z?)?)(\r?\n)", re.M
)
_COUNT = re.compile(rb"^(RRULE:(?:[^\r\n]*;)?COUNT=)(\d+)", re.M)


def moved(block: bytes, move: Move, low: datetime) -> bytes:
    """The VEVENT's lines with DTSTART and DTEND moved on, ending with their last
    occurrence before `low` (the window's start less its margin); as they were when
    there is nothing to move, or the rule ends within a week of there."""
    target = low - move.length - timedelta(days=1)
    anchor = _ANCHOR + timedelta(days=(target - _ANCHOR).days // 28 * 28)
    periods = (anchor - move.begin).days // move.period_days
    shift = timedelta(days=periods * move.period_days)
    ended = move.until is not None and move.begin + shift > move.until - timedelta(days=8)
    if move.counted is not None:  # a counted rule keeps at least one instance to come
        count, step_days = move.counted
        left = count - shift.days // step_days
        ended = left < 1
    if periods < 1 or ended or b"\nBEGIN:" in b"\n" + block.upper():  # an alarm's own times
        return block
    if move.counted is not None:
        block = _COUNT.sub(lambda m: m.group(1) + str(left).encode(), block, count=1)

    def one(match: re.Match[bytes]) -> bytes:
        value = match.group(3).decode()
        if len(value) == 8:
            new = f"{datetime.strptime(value, '%Y%m%d') + shift:%Y%m%d}"
        else:
            at = datetime.strptime(value[:15], "%Y%m%dT%H%M%S") + shift
            new = f"{at:%Y%m%dT%H%M%S}" + value[15:]
        return match.group(1) + match.group(2) + b":" + new.encode() + match.group(4)

    return _DTSTART_OR_END.sub(one, block)
