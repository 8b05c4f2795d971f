"""diff_feed and cancel_all: occurrences against the meetings last asked for.

new -> schedule_meeting; changed time, title, description or attendees -> update_meeting;
cancelled, EXDATE'd or gone -> cancel_meeting; unchanged -> nothing; a meeting that has
started is left alone. Fixed `now` values throughout.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.calendar.ics import Occurrence, parse_feed
from service.calendar.guard import CancelGuard, judge
from service.calendar.translate import (
    DESC_MAX,
    ROOM_NAME_MAX,
    FeedState,
    MeetingRules,
    cancel_all,
    desired,
    diff_feed,
    meeting_spec,
    room_name,
)
from service.domain.commands import APPROVAL, Kind, MeetingSpec
from service.domain.feeds import Feed
from service.domain.translation import Translation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
FEED = Feed(
    feed_id="team-cal",
    url="https://calendar.example/team.ics",
    organizer_email="Lena.Fischer@team.example",
    tenant="acme",
)


def occurrence(uid: str = "sync@team.example", **changes: Any) -> Occurrence:
    start = changes.pop("start", datetime(2026, 10, 5, 8, 0, tzinfo=UTC))
    values: dict[str, Any] = {
        "uid": uid,
        "key": f"{uid}@{start:%Y%m%dT%H%M%SZ}",
        "start": start,
        "end": start + timedelta(minutes=30),
        "zone": "Europe/Berlin",
        "summary": "Weekly sync",
        "description": "Status, blockers, next steps.",
        "attendees": ("lena.fischer@team.example", "bob.meyer@team.example"),
        "organizer": "lena.fischer@team.example",
        "cancelled": False,
        "all_day": False,
    }
    values.update(changes)
    return Occurrence(**values)


def kinds(translation: Translation) -> list[tuple[str, str]]:
    return [(c.kind.value, c.payload.meeting_key) for c in translation.commands]  # type: ignore[attr-defined]


def state_of(translation: Translation) -> FeedState:
    assert isinstance(translation.state, FeedState)
    return translation.state


def after_first(occurrences: list[Occurrence], now: datetime = NOW) -> FeedState:
    return state_of(diff_feed(FEED, occurrences, None, now))


# --- new, unchanged ------------------------------------------------------------------------


def test_a_new_occurrence_is_scheduled_for_the_organiser() -> None:
    found = occurrence()
    translation = diff_feed(FEED, [found], None, NOW)
    [command] = translation.commands
    assert command.kind is Kind.SCHEDULE_MEETING
    assert command.entity == f"meeting:team-cal:{found.key}"
    assert command.tenant == "acme"
    assert command.as_json()["payload"] == {
        "meeting_key": f"team-cal:{found.key}",
        "tenant": "acme",
        "organizer_email": "Lena.Fischer@team.example",
        "app": "vc",
        "feed_id": "team-cal",
        "meeting": {
            "room_name": "Weekly sync",
            "desc": "Status, blockers, next steps.",
            "start_time": "2026-10-05T08:00:00Z",
            "zone": "Europe/Berlin",
            "duration": 30,
            "moderators": 1,
            "participants": 1,
            "invitees": ["bob.meyer@team.example"],  # not the organiser
        },
    }
    assert state_of(translation).meetings[f"team-cal:{found.key}"].start_time == found.start


def test_the_same_feed_again_changes_nothing() -> None:
    found = [occurrence(), occurrence("retro@team.example", key="retro@team.example")]
    state = after_first(found)
    again = diff_feed(FEED, found, state, NOW + timedelta(minutes=5))
    assert again.commands == []
    assert again.state is None  # nothing to write either
    assert again.note == "no change"


def test_a_state_read_back_from_json_compares_equal() -> None:
    """The poller stores the state as JSON: read back, the same feed is still no change."""
    found = [occurrence()]
    stored = FeedState.model_validate_json(after_first(found).model_dump_json())
    assert diff_feed(FEED, found, stored, NOW).commands == []


# --- changes -------------------------------------------------------------------------------

CHANGES = {
    "moved": {"start": datetime(2026, 10, 5, 9, 0, tzinfo=UTC)},
    "retitled": {"summary": "Weekly sync (demo day)"},
    "new-attendee": {
        "attendees": (
            "lena.fischer@team.example",
            "bob.meyer@team.example",
            "carol.wagner@team.example",
        )
    },
    "new-description": {"description": "Status, blockers, next steps. Demo at the end."},
    "longer": {"end": datetime(2026, 10, 5, 9, 0, tzinfo=UTC)},
    "zone": {"zone": "Europe/Paris"},
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=list(CHANGES))
def test_a_changed_occurrence_is_updated(change: dict[str, Any]) -> None:
    before = occurrence()
    state = after_first([before])
    changed = replace(before, **change)
    if "start" in change:  # a moved instance keeps its original key
        changed = replace(changed, end=change["start"] + timedelta(minutes=30))
    translation = diff_feed(FEED, [changed], state, NOW)
    assert kinds(translation) == [("update_meeting", f"team-cal:{before.key}")]
    spec = translation.commands[0].payload.meeting  # type: ignore[attr-defined]
    assert spec == meeting_spec(changed, FEED, MeetingRules())
    assert state_of(translation).meetings[f"team-cal:{before.key}"] == spec


def test_attendee_order_and_case_are_no_change() -> None:
    before = occurrence()
    state = after_first([before])
    reordered = replace(before, attendees=tuple(reversed(before.attendees)))
    assert diff_feed(FEED, [reordered], state, NOW).commands == []


# --- cancellations -------------------------------------------------------------------------


def test_cancelled_exdated_and_removed_occurrences_are_cancelled() -> None:
    weekly = [occurrence(start=datetime(2026, 10, day, 8, 0, tzinfo=UTC)) for day in (5, 12, 19)]
    retro = occurrence("retro@team.example", key="retro@team.example", summary="Retro")
    state = after_first([*weekly, retro])
    now_cancelled = replace(weekly[2], cancelled=True)
    # weekly[1] EXDATE'd (absent), weekly[2] STATUS:CANCELLED, retro gone from the feed.
    translation = diff_feed(FEED, [weekly[0], now_cancelled], state, NOW)
    assert sorted(kinds(translation)) == [
        ("cancel_meeting", "team-cal:retro@team.example"),
        ("cancel_meeting", f"team-cal:{weekly[1].key}"),
        ("cancel_meeting", f"team-cal:{weekly[2].key}"),
    ]
    assert set(state_of(translation).meetings) == {f"team-cal:{weekly[0].key}"}
    payload = translation.commands[0].as_json()["payload"]
    assert payload.keys() == {"meeting_key", "tenant", "organizer_email", "app", "feed_id"}


def test_a_cancelled_occurrence_never_seen_is_not_scheduled() -> None:
    translation = diff_feed(FEED, [occurrence(cancelled=True)], None, NOW)
    assert translation.commands == []


def test_an_empty_feed_holds_its_cancels_for_approval() -> None:
    """The diff would cancel everything to come; the mass-cancel guard holds those cancels
    for an operator and the meetings stay (more in test_calendar_guard.py)."""
    state = after_first([occurrence(), occurrence("retro@team.example", key="retro")])
    diffed = diff_feed(FEED, [], state, NOW)
    assert [k for k, _ in kinds(diffed)] == ["cancel_meeting", "cancel_meeting"]
    guarded = judge(FEED, diffed, state, NOW, CancelGuard(), empty=True)
    reason = f"{APPROVAL}feed team-cal would cancel 2 of 2 upcoming meetings"
    assert [(c.kind, c.held) for c in guarded.translation.commands] == [
        (Kind.CANCEL_MEETING, reason),
        (Kind.CANCEL_MEETING, reason),
    ]
    assert state_of(guarded.translation).meetings == state.meetings


# --- meetings that have started ------------------------------------------------------------


def test_a_started_meeting_is_neither_updated_nor_cancelled() -> None:
    started = occurrence()  # 08:00-08:30 on Oct 5
    later = occurrence(start=datetime(2026, 10, 12, 8, 0, tzinfo=UTC))
    state = after_first([started, later])
    during = datetime(2026, 10, 5, 8, 10, tzinfo=UTC)
    retitled = replace(started, summary="Weekly sync (renamed while running)")
    assert diff_feed(FEED, [retitled, later], state, during).commands == []
    # Gone from the feed while running: not cancelled either; and forgotten.
    translation = diff_feed(FEED, [later], state, during)
    assert translation.commands == []
    assert set(state_of(translation).meetings) == {f"team-cal:{later.key}"}


def test_an_occurrence_that_has_started_is_not_scheduled() -> None:
    running = occurrence(start=NOW - timedelta(minutes=5))
    assert diff_feed(FEED, [running], None, NOW).commands == []
    at_now = occurrence(start=NOW)
    assert diff_feed(FEED, [at_now], None, NOW).commands == []


def test_a_meeting_moved_into_the_past_is_cancelled_not_updated() -> None:
    before = occurrence(start=datetime(2026, 10, 5, 15, 0, tzinfo=UTC))
    state = after_first([before], now=NOW)
    now = datetime(2026, 10, 5, 11, 0, tzinfo=UTC)
    moved = replace(before, start=datetime(2026, 10, 5, 10, 0, tzinfo=UTC))
    assert kinds(diff_feed(FEED, [moved], state, now)) == [
        ("cancel_meeting", f"team-cal:{before.key}")
    ]


# --- all-day events ------------------------------------------------------------------------


def test_all_day_events_are_skipped_unless_asked_for() -> None:
    day = occurrence(
        "holiday@team.example",
        key="holiday@team.example",
        start=datetime(2026, 10, 15, 22, 0, tzinfo=UTC),
        end=datetime(2026, 10, 16, 22, 0, tzinfo=UTC),
        all_day=True,
        summary="Team day off",
    )
    assert diff_feed(FEED, [day], None, NOW).commands == []
    rules = MeetingRules(include_all_day=True)
    translation = diff_feed(FEED, [day], None, NOW, rules)
    assert kinds(translation) == [("schedule_meeting", "team-cal:holiday@team.example")]
    assert translation.commands[0].payload.meeting.duration == 240  # type: ignore[attr-defined]


# --- the payload's fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("Weekly sync", "Weekly sync"),
        ("1:1", "1:1"),  # three characters: the minimum
        ("Hi", "Meeting Hi"),
        ("Q", "Meeting Q"),
        ("", "Meeting"),
        (None, "Meeting"),
        ("   ", "Meeting"),
        ("  Team\t\nsync  ", "Team sync"),
        ("x" * 50, "x" * 50),
        (
            "Quarterly planning for the platform, payments and data teams with all the leads",
            "Quarterly planning for the platform, payments and…",
        ),
        ("a" * 48 + " " + "b" * 10, "a" * 48 + "…"),  # no space left before the ellipsis
    ],
)
def test_room_name_is_within_3_to_50_characters(summary: str | None, expected: str) -> None:
    name = room_name(summary)
    assert name == expected
    assert 3 <= len(name) <= ROOM_NAME_MAX


@pytest.mark.parametrize(
    ("length", "duration"),
    [
        (timedelta(0), 10),  # no DTEND, no DURATION
        (timedelta(minutes=5), 10),
        (timedelta(minutes=10), 10),
        (timedelta(minutes=10, seconds=1), 11),  # started minutes count
        (timedelta(minutes=45), 45),
        (timedelta(hours=4), 240),
        (timedelta(hours=9), 240),  # the cap
    ],
)
def test_duration_has_a_minimum_and_a_cap(length: timedelta, duration: int) -> None:
    found = occurrence()
    spec = meeting_spec(replace(found, end=found.start + length), FEED, MeetingRules())
    assert spec.duration == duration


def test_duration_cap_follows_the_rules() -> None:
    found = occurrence(end=datetime(2026, 10, 5, 10, 0, tzinfo=UTC))
    assert meeting_spec(found, FEED, MeetingRules(max_duration_min=60)).duration == 60


def test_participants_are_capped_and_the_organiser_is_not_invited() -> None:
    many = ("lena.fischer@team.example", *(f"guest{i:02d}@team.example" for i in range(12)))
    found = occurrence(attendees=many)
    spec = meeting_spec(found, FEED, MeetingRules(max_participants=5))
    assert spec.participants == 5
    assert spec.moderators == 1
    assert len(spec.invitees) == 12  # everyone is invited; the room holds 5
    assert "lena.fischer@team.example" not in spec.invitees
    assert list(spec.invitees) == sorted(spec.invitees)
    alone = meeting_spec(occurrence(attendees=("lena.fischer@team.example",)), FEED, MeetingRules())
    assert (alone.participants, alone.invitees) == (1, ())


def test_description_defaults_and_is_cut() -> None:
    spec = meeting_spec(occurrence(description=None), FEED, MeetingRules())
    assert spec.desc == "Scheduled from the calendar of Lena.Fischer@team.example"
    long = meeting_spec(occurrence(description="d" * 5000), FEED, MeetingRules())
    assert long.desc == "d" * DESC_MAX


def test_start_time_is_utc_and_the_zone_is_kept() -> None:
    spec = meeting_spec(occurrence(zone="America/New_York"), FEED, MeetingRules())
    assert spec.start_time == datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
    assert spec.start_time.utcoffset() == timedelta(0)
    assert spec.zone == "America/New_York"


def test_app_follows_the_rules() -> None:
    translation = diff_feed(FEED, [occurrence()], None, NOW, MeetingRules(app="wb"))
    assert translation.commands[0].as_json()["payload"]["app"] == "wb"


def test_meeting_keys_fit_the_outbox() -> None:
    """An Outlook UID (112 characters) with a long feed id still makes a key the outbox's
    255-character entity and mapping columns hold, stable and distinct per occurrence."""
    uid = "040000008200E00074C5B7101A82E008" + "0" * 80
    feed = FEED.model_copy(update={"feed_id": "f" * 200})
    found = [occurrence(uid, start=datetime(2026, 10, d, 8, 0, tzinfo=UTC)) for d in (5, 12)]
    keys = list(desired(found, feed, NOW, MeetingRules()))
    assert len(set(keys)) == 2
    assert all(len(f"meeting:{key}") <= 255 for key in keys)
    assert keys == list(desired(found, feed, NOW, MeetingRules()))
    assert all(key.startswith(f"{feed.feed_id}:") for key in keys)
    # Short keys stay readable.
    assert next(iter(desired(found, FEED, NOW, MeetingRules()))) == f"team-cal:{found[0].key}"


# --- cancel_all ----------------------------------------------------------------------------


def test_cancel_all_cancels_only_meetings_to_come() -> None:
    past = occurrence(start=datetime(2026, 10, 5, 8, 0, tzinfo=UTC))
    future = occurrence(start=datetime(2026, 10, 12, 8, 0, tzinfo=UTC))
    state = after_first([past, future])
    translation = cancel_all(FEED, state, datetime(2026, 10, 6, tzinfo=UTC))
    assert kinds(translation) == [("cancel_meeting", f"team-cal:{future.key}")]
    assert state_of(translation).meetings == {}
    assert translation.note == "feed removed: 1 meeting(s) cancelled"
    assert cancel_all(FEED, None, NOW).commands == []


# --- a real feed and its next version ------------------------------------------------------


def _parsed(name: str, now: datetime = NOW) -> list[Occurrence]:
    body = (FIXTURES / name).read_bytes()
    return list(parse_feed(body, start=now, end=now + timedelta(days=30)).occurrences)


def test_team_feed_first_version_schedules_what_is_to_come() -> None:
    translation = diff_feed(FEED, _parsed("team_v1.ics"), None, NOW)
    assert kinds(translation) == [
        ("schedule_meeting", "team-cal:weekly-sync@team.example@20261005T080000Z"),
        ("schedule_meeting", "team-cal:retro@team.example"),
        ("schedule_meeting", "team-cal:weekly-sync@team.example@20261012T080000Z"),
        ("schedule_meeting", "team-cal:offsite-prep@team.example"),
        ("schedule_meeting", "team-cal:weekly-sync@team.example@20261019T080000Z"),
        ("schedule_meeting", "team-cal:all-hands@team.example"),
        ("schedule_meeting", "team-cal:weekly-sync@team.example@20261026T090000Z"),
    ]  # not the past kick-off, not the all-day day off
    specs: dict[str, MeetingSpec] = state_of(translation).meetings
    weekly = specs["team-cal:weekly-sync@team.example@20261026T090000Z"]
    assert (weekly.start_time, weekly.zone, weekly.duration) == (
        datetime(2026, 10, 26, 9, 0, tzinfo=UTC),
        "Europe/Berlin",
        30,
    )
    assert weekly.invitees == ("bob.meyer@team.example", "carol.wagner@team.example")


def test_team_feed_second_version_updates_cancels_and_schedules() -> None:
    state = after_first(_parsed("team_v1.ics"))
    translation = diff_feed(FEED, _parsed("team_v2.ics"), state, NOW)
    assert sorted(kinds(translation)) == [
        ("cancel_meeting", "team-cal:all-hands@team.example"),  # STATUS:CANCELLED
        ("cancel_meeting", "team-cal:offsite-prep@team.example"),  # gone from the feed
        ("cancel_meeting", "team-cal:weekly-sync@team.example@20261012T080000Z"),  # EXDATE
        ("schedule_meeting", "team-cal:hiring-panel@team.example"),
        ("update_meeting", "team-cal:retro@team.example"),  # description, attendee
        ("update_meeting", "team-cal:weekly-sync@team.example@20261019T080000Z"),  # moved
        ("update_meeting", "team-cal:weekly-sync@team.example@20261026T090000Z"),  # title
    ]
    updated = {
        c.payload.meeting_key: c.payload.meeting  # type: ignore[attr-defined]
        for c in translation.commands
        if c.kind is Kind.UPDATE_MEETING
    }
    moved = updated["team-cal:weekly-sync@team.example@20261019T080000Z"]
    assert moved.start_time == datetime(2026, 10, 19, 9, 0, tzinfo=UTC)
    assert updated["team-cal:retro@team.example"].invitees == (
        "bob.meyer@team.example",
        "dana.schulz@team.example",
    )
    # And the version after is no change.
    again = diff_feed(FEED, _parsed("team_v2.ics"), state_of(translation), NOW)
    assert again.commands == []


def test_team_feed_second_version_later_leaves_started_meetings_alone() -> None:
    state = after_first(_parsed("team_v1.ics"))
    now = datetime(2026, 10, 12, 8, 10, tzinfo=UTC)  # the Oct 12 sync is running
    translation = diff_feed(FEED, _parsed("team_v2.ics", now), state, now)
    assert ("cancel_meeting", "team-cal:weekly-sync@team.example@20261012T080000Z") not in kinds(
        translation
    )
    assert ("update_meeting", "team-cal:retro@team.example") not in kinds(translation)  # over
    assert ("cancel_meeting", "team-cal:offsite-prep@team.example") in kinds(translation)
