"""`ucaas-sync plan`: what an event would do, without doing it.

The same parsing, mapping and translation the consumers run, against no prior state (as
for an entity the service has not seen) and with no I/O but reading the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.calendar.fetch import FeedError
from connectors.calendar.ics import Skipped, parse_feed
from service.calendar.poller import limits_of, rules_of
from service.calendar.translate import diff_feed
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


@dataclass(frozen=True)
class CalendarPlan:
    """What an iCalendar file would do: the commands (as `plan` prints them), the events
    skipped as unusable, and whether anything in the file could be used."""

    commands: list[dict[str, Any]]
    skipped: tuple[Skipped, ...] = ()
    plannable: bool = True


def plan_calendar(
    raw: bytes,
    settings: CalendarSettings,
    *,
    now: datetime | None = None,
    horizon_days: float | None = None,
    organizer: str = "organizer@example.com",
) -> CalendarPlan:
    """The meeting commands an iCalendar file would produce for a new feed, and the
    events it skips as unusable."""
    when = now or utcnow()
    if when.tzinfo is None:
        raise PlanError("--now needs a time zone, e.g. 2026-12-01T09:00:00Z")
    horizon = horizon_days if horizon_days is not None else settings.horizon_days
    limits = limits_of(settings)
    try:
        parsed = parse_feed(raw, start=when, end=when + timedelta(days=horizon), limits=limits)
    except FeedError as exc:
        raise PlanError(f"not usable iCalendar: {exc.reason}") from None
    feed = Feed(feed_id="plan", url="file:plan.ics", organizer_email=organizer, tenant="plan")
    rules = rules_of(settings)
    translation = diff_feed(feed, parsed.occurrences, None, when, rules, parsed.skipped_uids)
    commands = [command.as_json() for command in translation.commands]
    return CalendarPlan(commands, parsed.skipped, parsed.plannable)


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror}") from None
