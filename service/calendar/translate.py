"""Calendar occurrences to meeting commands: the diff against what was last asked. Pure.

Each occurrence in the window is one meeting, keyed by (feed, UID, original start). The
feed's state holds the meetings last asked for; against it:

    new occurrence, not started         schedule_meeting
    changed time, title, text, people   update_meeting   (only if neither has started)
    cancelled, removed by EXDATE, gone  cancel_meeting   (only if it has not started)
    unchanged                           nothing: an unchanged feed makes no call at all
    of an event skipped as unusable     nothing: kept as last asked (`skipped` UIDs)

All-day events are skipped unless asked for; a meeting that has started is left alone.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from service.domain.commands import (
    CancelMeeting,
    Command,
    MeetingSpec,
    ScheduleMeeting,
    UpdateMeeting,
)
from service.domain.feeds import Feed
from service.domain.translation import DesiredState, Translation

if TYPE_CHECKING:  # annotations only: icalendar and httpx would slow the CLI's `status` down
    from connectors.calendar.ics import Occurrence

ROOM_NAME_MIN, ROOM_NAME_MAX = 3, 50  # the API's limits (1612, 1613)
MIN_DURATION = 10  # minutes (1632)
DESC_MAX = 1000
# A meeting key is the command's entity ("meeting:" + key) and the mapping's external id,
# both at most 255 characters; a UID may be longer than that (Outlook's are 112 or more).
KEY_MAX = 255 - len("meeting:")
_ORIGINAL_START = re.compile(r"(.*)@\d{8}T\d{6}Z")


@dataclass(frozen=True)
class MeetingRules:
    include_all_day: bool = False
    max_participants: int = 100  # the room size of the smallest plan
    max_duration_min: int = 240  # the longest meeting of the smallest plan
    app: str = "vc"


class FeedHold(BaseModel):
    """Cancels a feed version asked for and the mass-cancel guard held (calendar/guard.py):
    their meetings stay in FeedState.meetings until the operator's approval has run."""

    model_config = ConfigDict(frozen=True)

    reason: str
    held: tuple[str, ...] = ()  # meeting keys whose cancel_meeting waits for approval
    kept: tuple[str, ...] = ()  # denied: kept while versions that lack them are held


class FeedState(DesiredState):
    """The meetings a feed last asked for, by meeting key."""

    entity_kind: ClassVar[str] = "feed"  # entity_state.kind

    meetings: dict[str, MeetingSpec] = Field(default_factory=dict)
    hold: FeedHold | None = None


def room_name(summary: str | None) -> str:
    name = " ".join((summary or "").split()) or "Meeting"
    if len(name) < ROOM_NAME_MIN:
        name = f"Meeting {name}"
    if len(name) > ROOM_NAME_MAX:
        name = name[: ROOM_NAME_MAX - 1].rstrip() + "…"
    return name


def meeting_spec(occurrence: Occurrence, feed: Feed, rules: MeetingRules) -> MeetingSpec:
    minutes = math.ceil((occurrence.end - occurrence.start).total_seconds() / 60)
    invitees = tuple(sorted({a for a in occurrence.attendees if a != feed.organizer_email.lower()}))
    description = (occurrence.description or "").strip()
    return MeetingSpec(
        room_name=room_name(occurrence.summary),
        desc=description[:DESC_MAX] or f"Scheduled from the calendar of {feed.organizer_email}",
        start_time=occurrence.start,
        zone=occurrence.zone,
        duration=min(max(minutes, MIN_DURATION), rules.max_duration_min),
        moderators=1,
        participants=min(max(len(invitees), 1), rules.max_participants),
        invitees=invitees,
    )


def meeting_key(feed: Feed, occurrence: Occurrence) -> str:
    """(feed, UID, original start) as one key; too long, the occurrence's part is hashed
    (feed ids are at most 200 characters, so the key still fits, stable and distinct)."""
    key = f"{feed.feed_id}:{occurrence.key}"
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(occurrence.key.encode()).hexdigest()[:40]
    return f"{feed.feed_id}:#{digest}"


def desired(
    occurrences: Iterable[Occurrence], feed: Feed, now: datetime, rules: MeetingRules
) -> dict[str, MeetingSpec]:
    """The meetings the feed asks for now: not cancelled, not all-day, not started."""
    wanted: dict[str, MeetingSpec] = {}
    for occurrence in occurrences:
        if occurrence.cancelled or (occurrence.all_day and not rules.include_all_day):
            continue
        if occurrence.start <= now:
            continue
        wanted[meeting_key(feed, occurrence)] = meeting_spec(occurrence, feed, rules)
    return wanted


def diff_feed(
    feed: Feed,
    occurrences: Iterable[Occurrence],
    state: FeedState | None,
    now: datetime,
    rules: MeetingRules | None = None,
    skipped: Collection[str] = (),
) -> Translation:
    """`skipped`: the UIDs of the feed's events that could not be used this time; their
    meetings are kept as they were, neither updated nor cancelled."""
    rules = rules or MeetingRules()
    wanted = desired(occurrences, feed, now, rules)
    before = (state or FeedState()).meetings
    kept = {
        key: old
        for key, old in before.items()
        if key not in wanted and old.start_time > now and _of_uids(feed, key, skipped)
    }
    ref = {
        "tenant": feed.tenant,
        "organizer_email": feed.organizer_email,
        "app": rules.app,
        "feed_id": feed.feed_id,
    }
    commands: list[Command] = []
    for key, spec in wanted.items():
        old = before.get(key)
        if old is None:
            commands.append(Command.of(ScheduleMeeting(meeting_key=key, meeting=spec, **ref)))
        elif old != spec and old.start_time > now:
            commands.append(Command.of(UpdateMeeting(meeting_key=key, meeting=spec, **ref)))
    for key, old in before.items():
        if key not in wanted and key not in kept and old.start_time > now:
            commands.append(Command.of(CancelMeeting(meeting_key=key, **ref)))
    new_state = FeedState(meetings=wanted | kept)
    changed = new_state != (state or FeedState())
    return Translation(commands, new_state if changed else None, None if commands else "no change")


def _of_uids(feed: Feed, key: str, uids: Collection[str]) -> bool:
    """Whether a meeting key is an occurrence of one of these UIDs. A hashed key (see
    meeting_key) cannot be read back: it counts as theirs when one of them is long
    enough to have been hashed, so that no meeting of theirs is cancelled."""
    if not uids:
        return False
    rest = key.removeprefix(f"{feed.feed_id}:")
    longest = len(f"{feed.feed_id}:") + max(len(u) for u in uids) + len("@20261005T080000Z")
    if rest.startswith("#") and longest > KEY_MAX:
        return True
    series = _ORIGINAL_START.fullmatch(rest)
    return rest in uids or (series is not None and series.group(1) in uids)


def cancel_all(feed: Feed, state: FeedState | None, now: datetime, app: str = "vc") -> Translation:
    """A feed removed: its meetings that have not started are cancelled."""
    ref = {
        "tenant": feed.tenant,
        "organizer_email": feed.organizer_email,
        "app": app,
        "feed_id": feed.feed_id,
    }
    commands = [
        Command.of(CancelMeeting(meeting_key=key, **ref))
        for key, spec in (state or FeedState()).meetings.items()
        if spec.start_time > now
    ]
    return Translation(commands, FeedState(), f"feed removed: {len(commands)} meeting(s) cancelled")
