"""`ucaas-sync plan`: what an event would do, without doing it.

The same parsing, mapping and translation the consumers run, against no prior state (as
for an entity the service has not seen) and with no I/O but reading the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.calendar.fetch import FeedError
from connectors.calendar.ics import Occurrence, ParsedFeed, Skipped, parse_feed
from service.calendar.guard import CancelGuard, judge
from service.calendar.owners import owned
from service.calendar.poller import limits_of, rules_of
from service.calendar.translate import FeedState, diff_feed
from service.domain.commands import APPROVAL
from service.domain.feeds import Feed
from service.intake.history import History, LineError
from service.intake.licences import LicencePolicy
from service.outbox.tables import utcnow
from service.settings import CalendarSettings, IntakeSettings


class PlanError(Exception):
    """The input cannot be planned; the message is the one line to show."""


def plan_event(
    raw: bytes, policy: LicencePolicy | None = None, settings: IntakeSettings | None = None
) -> Iterator[dict[str, Any]]:
    """The commands a CloudEvent (structured JSON) implies for an entity the service has
    not seen, as plan prints them."""
    history = History(policy or LicencePolicy(), settings or IntakeSettings(), utcnow())
    try:
        history.take(raw)
    except LineError as exc:
        raise PlanError(str(exc)) from None
    yield from history.lines


@dataclass
class CalendarPlan:
    """What plan --ics prints: the commands (JSON lines); the events skipped as unusable,
    whether anything in the file could be used, and notes, for stderr."""

    commands: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    skipped: tuple[Skipped, ...] = ()
    plannable: bool = True


def plan_calendar(
    raw: bytes,
    settings: CalendarSettings,
    *,
    now: datetime | None = None,
    horizon_days: float | None = None,
    organizer: str | None = None,
    previous: bytes | None = None,
) -> CalendarPlan:
    """The meeting commands an iCalendar file would produce: for a new feed, or, with
    `previous`, for the change from that version (planned first, as the feed's known
    state) to this one, through the mass-cancel guard. With `organizer`, the feed is that
    person's: only what they organise is planned; without, every event (a team
    calendar)."""
    when = now or utcnow()
    if when.tzinfo is None:
        raise PlanError("--now needs a time zone, e.g. 2026-12-01T09:00:00Z")
    feed = Feed(
        feed_id="plan",
        url="file:plan.ics",
        organizer_email=organizer or "organizer@example.com",
        tenant="plan",
        schedule_attended=organizer is None,
    )
    rules, notes = rules_of(settings), list[str]()
    state = None
    if previous is not None:
        before = _parsed(previous, settings, when, horizon_days, "--previous: ")
        known, _ = _owned(feed, before, notes, "--previous: ")
        state = diff_feed(feed, known, None, when, rules, before.skipped_uids).state
    parsed = _parsed(raw, settings, when, horizon_days, "")
    found, _ = _owned(feed, parsed, notes, "")
    known_state = state if isinstance(state, FeedState) else None
    diffed = diff_feed(feed, found, known_state, when, rules, parsed.skipped_uids)
    empty = not parsed.occurrences and not parsed.skipped
    guarded = judge(feed, diffed, known_state, when, CancelGuard.of(settings), empty=empty)
    if guarded.reason:
        notes.append(f"held: {guarded.reason.removeprefix(APPROVAL)}")
    commands = [c.as_json() for c in guarded.translation.commands]
    return CalendarPlan(commands, notes, parsed.skipped, parsed.plannable)


def _parsed(
    raw: bytes, settings: CalendarSettings, when: datetime, horizon_days: float | None, label: str
) -> ParsedFeed:
    horizon = horizon_days if horizon_days is not None else settings.horizon_days
    try:
        return parse_feed(
            raw, start=when, end=when + timedelta(days=horizon), limits=limits_of(settings)
        )
    except FeedError as exc:
        raise PlanError(f"{label}not usable iCalendar: {exc.reason}") from None


def _owned(
    feed: Feed, parsed: ParsedFeed, notes: list[str], label: str
) -> tuple[list[Occurrence], int]:
    mine, attended = owned(feed, parsed.occurrences)
    if attended:
        notes.append(f"{label}{attended} occurrence(s) {feed.organizer_email} only attends")
    return mine, attended


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror}") from None
