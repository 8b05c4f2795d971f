"""The mass-cancel guard (calendar/guard.py): which feed versions have their cancels held
for approval, and what a later version does with them once an operator decided or not.

A version is planned as the poller plans it, without the database: the operator's
decisions (`fates`) folded into the state, diff_feed, then the guard's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.calendar.ics import Occurrence
from service.calendar.guard import CancelGuard, Fate, Guarded, hold_reason, judge, settle
from service.calendar.translate import FeedHold, FeedState, diff_feed
from service.domain.commands import APPROVAL
from service.domain.feeds import Feed
from service.settings import CalendarSettings

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
FEED = Feed(
    feed_id="team-cal",
    url="https://calendar.example/team.ics",
    organizer_email="lena.fischer@team.example",
    tenant="acme",
)
GUARD = CancelGuard()


def meeting(n: int, **changes: Any) -> Occurrence:
    """A one-off meeting on day n (October), 10:00 UTC."""
    start = changes.pop("start", datetime(2026, 10, 1 + n, 10, 0, tzinfo=UTC))
    values: dict[str, Any] = {
        "uid": f"m{n}@team.example",
        "key": f"m{n}@team.example",
        "start": start,
        "end": start + timedelta(minutes=30),
        "zone": "UTC",
        "summary": f"Meeting {n}",
        "description": None,
        "attendees": (),
        "organizer": None,
        "cancelled": False,
        "all_day": False,
    }
    values.update(changes)
    return Occurrence(**values)


def key(n: int) -> str:
    return f"team-cal:m{n}@team.example"


def plan(
    occurrences: list[Occurrence],
    state: FeedState | None,
    fates: Mapping[str, Fate] | None = None,
    now: datetime = NOW,
    guard: CancelGuard = GUARD,
) -> Guarded:
    settled = settle(state, fates or {})
    diffed = diff_feed(FEED, occurrences, settled, now)
    return judge(FEED, diffed, settled, now, guard, empty=not occurrences)


def state_of(guarded: Guarded) -> FeedState:
    state = guarded.translation.state
    assert isinstance(state, FeedState)
    return state


def kinds(guarded: Guarded) -> list[tuple[str, str, str | None]]:
    return [
        (c.kind.value, c.payload.meeting_key, c.held)  # type: ignore[attr-defined]
        for c in guarded.translation.commands
    ]


def first(n: int) -> FeedState:
    """The state after a first version with meetings 1..n."""
    return state_of(plan([meeting(i) for i in range(1, n + 1)], None))


# --- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cancels", "upcoming", "empty", "held"),
    [
        (0, 10, False, False),
        (1, 10, False, False),  # one cancelled: everyday
        (2, 4, False, False),  # half, but fewer than 3
        (3, 7, False, False),  # 3, but under half
        (3, 6, False, True),  # half and 3
        (5, 6, False, True),
        (10, 10, False, True),
        (1, 1, True, True),  # empty: always
        (2, 10, True, True),
        (0, 0, True, False),  # nothing to cancel: nothing to hold
    ],
)
def test_the_default_rule(cancels: int, upcoming: int, empty: bool, held: bool) -> None:
    assert GUARD.holds(cancels, upcoming, empty=empty) is held


def test_the_rule_is_configurable() -> None:
    settings = CalendarSettings(
        cancel_guard_share=0.25, cancel_guard_min=2, cancel_guard_empty=False
    )
    guard = CancelGuard.of(settings)
    assert guard == CancelGuard(share=0.25, least=2, empty=False)
    assert guard.holds(2, 8, empty=False)
    assert not guard.holds(1, 1, empty=True)  # an empty feed is judged by the numbers
    assert guard.holds(3, 3, empty=True)
    assert CancelGuard.of(CalendarSettings()) == GUARD


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCAAS_SYNC_CALENDAR_CANCEL_GUARD_SHARE", "0.8")
    monkeypatch.setenv("UCAAS_SYNC_CALENDAR_CANCEL_GUARD_MIN", "5")
    monkeypatch.setenv("UCAAS_SYNC_CALENDAR_CANCEL_GUARD_EMPTY", "false")
    assert CancelGuard.of(CalendarSettings()) == CancelGuard(0.8, 5, False)


def test_the_reason_says_how_many_of_how_many() -> None:
    assert hold_reason("team-cal", 7, 7) == (
        f"{APPROVAL}feed team-cal would cancel 7 of 7 upcoming meetings"
    )
    assert hold_reason("team-cal", 1, 1).endswith("1 of 1 upcoming meeting")
    long = hold_reason("x" * 200, 3, 4)
    assert len(long) <= 255 and long.endswith("would cancel 3 of 4 upcoming meetings")


# --- a version judged ----------------------------------------------------------------------


def test_an_everyday_change_passes() -> None:
    state = first(6)
    moved = meeting(2, start=datetime(2026, 10, 20, 15, 0, tzinfo=UTC))
    after = plan([meeting(1), moved, *(meeting(i) for i in (4, 5, 6))], state)  # 3 cancelled
    assert after.reason is None
    assert sorted(kinds(after)) == [
        ("cancel_meeting", key(3), None),
        ("update_meeting", key(2), None),
    ]
    assert state_of(after).hold is None
    assert set(state_of(after).meetings) == {key(i) for i in (1, 2, 4, 5, 6)}


def test_an_empty_feed_holds_its_cancels() -> None:
    state = first(2)
    after = plan([], state)
    reason = f"{APPROVAL}feed team-cal would cancel 2 of 2 upcoming meetings"
    assert after.reason == reason and after.newly_held == 2
    assert kinds(after) == [("cancel_meeting", key(1), reason), ("cancel_meeting", key(2), reason)]
    held = state_of(after)
    assert held.meetings == state.meetings  # UCaaS still has them
    assert held.hold == FeedHold(reason=reason, held=(key(1), key(2)))


def test_a_mass_cancel_holds_only_its_cancels() -> None:
    state = first(6)
    after = plan([meeting(1), meeting(2), meeting(7)], state)  # 4 of 6 gone, one new
    assert after.reason is not None and "would cancel 4 of 6" in after.reason
    assert sorted(kinds(after)) == [
        *(("cancel_meeting", key(i), after.reason) for i in (3, 4, 5, 6)),
        ("schedule_meeting", key(7), None),  # the rest of the version goes ahead
    ]
    assert set(state_of(after).meetings) == {key(i) for i in range(1, 8)}


def test_the_same_version_again_holds_nothing_new() -> None:
    held = state_of(plan([], first(3)))
    again = plan([], held, {key(i): "held" for i in (1, 2, 3)})
    assert again.translation.commands == [] and again.newly_held == 0
    assert state_of(again) == held  # (the poller saves nothing then)
    assert again.release == () and again.moot == ()


def test_a_restored_feed_makes_the_held_cancels_moot() -> None:
    state = first(3)
    held = state_of(plan([], state))
    changed = meeting(2, summary="Meeting 2, renamed")
    back = plan([meeting(1), changed, meeting(3)], held, {key(i): "held" for i in (1, 2, 3)})
    assert back.moot == (key(1), key(2), key(3)) and back.release == ()
    assert kinds(back) == [("update_meeting", key(2), None)]  # behind the dropped cancel
    assert state_of(back).hold is None
    assert set(state_of(back).meetings) == {key(1), key(2), key(3)}


def test_a_partly_restored_feed_that_passes_releases_what_it_still_lacks() -> None:
    held = state_of(plan([], first(6)))
    back = plan([meeting(i) for i in range(1, 6)], held, {key(i): "held" for i in range(1, 7)})
    assert back.reason is None
    assert back.release == (key(6),)  # the held cancel runs: an everyday cancel now
    assert back.moot == tuple(key(i) for i in range(1, 6))
    assert back.translation.commands == []  # no second cancel of meeting 6
    assert set(state_of(back).meetings) == {key(i) for i in range(1, 6)}
    assert state_of(back).hold is None


def test_approved_cancels_are_forgotten() -> None:
    held = state_of(plan([], first(3)))
    fates: dict[str, Fate] = {key(1): "approved", key(2): "approved", key(3): "approved"}
    after = plan([], held, fates)
    assert after.translation.commands == [] and after.reason is None
    assert state_of(after) == FeedState()
    # The feed gets them back later: scheduled anew (the cancels have run).
    back = plan([meeting(1), meeting(2), meeting(3)], state_of(after))
    assert [k for k, _, _ in kinds(back)] == ["schedule_meeting"] * 3


def test_denied_cancels_keep_their_meetings_while_the_versions_are_held() -> None:
    held = state_of(plan([], first(8)))
    fates: dict[str, Fate] = {key(i): "dropped" for i in range(1, 9)}
    again = plan([], held, fates)
    assert again.translation.commands == [] and again.newly_held == 0
    kept = state_of(again)
    assert kept.hold is not None and kept.hold.kept == tuple(key(i) for i in range(1, 9))
    assert kept.hold.held == () and set(kept.meetings) == set(held.meetings)
    # Another version that would cancel most of them: held, but not asked again.
    still = plan([meeting(1), meeting(9)], kept)
    assert [(k, m) for k, m, _ in kinds(still)] == [("schedule_meeting", key(9))]
    assert state_of(still).hold is not None
    assert state_of(still).hold.kept == tuple(key(i) for i in range(2, 9))  # type: ignore[union-attr]
    # A later version that lacks two of them passes: those two are cancelled.
    later = plan([meeting(i) for i in range(1, 7)], state_of(still))
    assert later.reason is None
    assert sorted(kinds(later)) == [
        ("cancel_meeting", key(7), None),
        ("cancel_meeting", key(8), None),
        ("cancel_meeting", key(9), None),
    ]
    assert state_of(later).hold is None


def test_a_denied_meeting_the_feed_has_again_is_no_longer_kept() -> None:
    held = state_of(plan([], first(4)))
    fates: dict[str, Fate] = {key(i): "dropped" for i in range(1, 5)}
    back = plan([meeting(i) for i in range(1, 5)], held, fates)
    assert back.translation.commands == []
    assert state_of(back).hold is None and set(state_of(back).meetings) == set(held.meetings)


def test_a_held_meeting_that_starts_is_dropped_and_forgotten() -> None:
    held = state_of(plan([], first(3)))
    during = datetime(2026, 10, 2, 10, 10, tzinfo=UTC)  # meeting 1 is running
    after = plan([], held, {key(i): "held" for i in (1, 2, 3)}, now=during)
    assert after.moot == (key(1),) and after.translation.commands == []
    assert set(state_of(after).meetings) == {key(2), key(3)}
    assert state_of(after).hold is not None and state_of(after).hold.held == (key(2), key(3))  # type: ignore[union-attr]


def test_a_held_cancel_not_found_counts_as_kept() -> None:
    held = state_of(plan([], first(3)))
    settled = settle(held, {})  # no row: pruned, say
    assert settled is not None and settled.hold is not None
    assert settled.hold.kept == (key(1), key(2), key(3)) and len(settled.meetings) == 3


def test_more_cancels_while_held_are_held_too() -> None:
    state = first(6)
    held = state_of(plan([meeting(5), meeting(6)], state))  # 4 of 6: held
    worse = plan([], held, {key(i): "held" for i in range(1, 5)})
    assert [(k, m) for k, m, _ in kinds(worse)] == [
        ("cancel_meeting", key(5)),
        ("cancel_meeting", key(6)),
    ]
    assert worse.newly_held == 2 and "would cancel 6 of 6" in (worse.reason or "")
    assert state_of(worse).hold.held == tuple(key(i) for i in range(1, 7))  # type: ignore[union-attr]
