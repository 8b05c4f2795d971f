"""The meetings of an event that has become unusable are neither updated nor cancelled
(issue 14): diff_feed keeps them, by UID, until the event can be used again; and what
the poller keeps of skipped events on the feed's row, in its log and in its metric.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.calendar.ics import Skipped, parse_feed
from service.calendar import skipped as skipped_module
from service.calendar.translate import KEY_MAX, diff_feed
from service.domain.feeds import Feed
from service.intake.plan import plan_calendar
from service.observability import metrics
from service.settings import CalendarSettings
from tests.unit.test_calendar_translate import FEED, NOW, kinds, occurrence, state_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
MONDAYS = [datetime(2026, 10, day, 8, 0, tzinfo=UTC) for day in (5, 12, 19)]


def weekly(uid: str = "sync@team.example") -> list[Any]:
    return [occurrence(uid, start=start) for start in MONDAYS]


def single(uid: str) -> Any:
    return occurrence(uid, key=uid, start=datetime(2026, 10, 7, 9, 0, tzinfo=UTC))


def test_the_meetings_of_a_skipped_uid_are_kept_not_cancelled() -> None:
    series, retro = weekly(), single("retro@team.example")
    state = state_of(diff_feed(FEED, [*series, retro], None, NOW))
    # The series' event has become unusable: it is absent from the occurrences.
    translation = diff_feed(FEED, [retro], state, NOW, skipped={"sync@team.example"})
    assert translation.commands == []
    assert translation.state is None  # nothing changed: the state stays as it was
    # Without the skipped UID the same feed cancels the series: the rule is what keeps it.
    assert [k for k, _ in kinds(diff_feed(FEED, [retro], state, NOW))] == ["cancel_meeting"] * 3


def test_a_skipped_single_event_is_kept_and_others_still_change() -> None:
    series, retro, demo = weekly(), single("retro@team.example"), single("demo@team.example")
    state = state_of(diff_feed(FEED, [*series, retro, demo], None, NOW))
    moved = [replace(o, summary="Weekly sync (new title)") for o in series]
    translation = diff_feed(FEED, moved, state, NOW, skipped={"retro@team.example"})
    assert sorted(kinds(translation)) == [
        ("cancel_meeting", "team-cal:demo@team.example"),  # gone: cancelled
        *[("update_meeting", f"team-cal:{o.key}") for o in series],  # changed: updated
    ]
    kept = state_of(translation).meetings
    assert kept["team-cal:retro@team.example"] == state.meetings["team-cal:retro@team.example"]
    assert "team-cal:demo@team.example" not in kept


def test_a_kept_meeting_comes_back_to_the_diff_when_its_event_is_usable_again() -> None:
    series = weekly()
    state = state_of(diff_feed(FEED, series, None, NOW))
    kept = diff_feed(FEED, [], state, NOW, skipped=["sync@team.example"])
    assert (kept.commands, kept.state) == ([], None)  # the stored state stands
    fixed = [replace(series[0], summary="Weekly sync (fixed)"), *series[1:]]
    assert kinds(diff_feed(FEED, fixed, state, NOW)) == [
        ("update_meeting", f"team-cal:{series[0].key}")
    ]


def test_a_skipped_uid_keeps_only_its_own_meetings() -> None:
    """A UID that is a prefix of another's, or contains '@', is matched exactly."""
    mine = weekly("a@x")
    others = [*weekly("a@x.example"), single("a"), single("a@x-2")]
    state = state_of(diff_feed(FEED, [*mine, *others], None, NOW))
    translation = diff_feed(FEED, [], state, NOW, skipped={"a@x"})
    cancelled = {key for _, key in kinds(translation)}
    assert cancelled == {f"team-cal:{o.key}" for o in others}
    assert set(state_of(translation).meetings) == {f"team-cal:{o.key}" for o in mine}


def test_a_kept_meeting_that_has_started_is_forgotten_not_cancelled() -> None:
    series = weekly()
    state = state_of(diff_feed(FEED, series, None, NOW))
    during = MONDAYS[0] + timedelta(minutes=10)
    translation = diff_feed(FEED, [], state, during, skipped={"sync@team.example"})
    assert translation.commands == []
    assert set(state_of(translation).meetings) == {f"team-cal:{o.key}" for o in series[1:]}


def test_hashed_keys_of_a_long_skipped_uid_are_kept() -> None:
    """A key too long for the outbox is hashed and its UID cannot be read back: while a
    UID long enough to be hashed is skipped, hashed keys are kept rather than cancelled."""
    feed = Feed(feed_id="f" * 150, url="https://x", organizer_email="o@x.example", tenant="t")
    long_uid = "040000008200E00074C5B7101A82E008" * 3
    assert len(f"{feed.feed_id}:{long_uid}@20261005T080000Z") > KEY_MAX
    series = weekly(long_uid)
    state = state_of(diff_feed(feed, series, None, NOW))
    assert all(key.startswith(f"{feed.feed_id}:#") for key in state.meetings)
    assert diff_feed(feed, [], state, NOW, skipped={long_uid}).commands == []
    assert len(diff_feed(feed, [], state, NOW, skipped={"short@x"}).commands) == 3


def test_a_feed_parsed_with_a_broken_event_keeps_its_meetings() -> None:
    """End to end in memory: team_v1, then the same feed with the weekly series broken
    (a bad BYDAY): the series' meetings are kept, the rest is diffed as usual."""
    v1 = (FIXTURES / "team_v1.ics").read_bytes()
    window = {"start": NOW, "end": NOW + timedelta(days=30)}
    first = parse_feed(v1, **window)
    state = state_of(diff_feed(FEED, first.occurrences, None, NOW))
    broken = v1.replace(b"RRULE:FREQ=WEEKLY", b"RRULE:FREQ=WEEKLY;BYDAY=XX", 1)
    assert broken != v1
    second = parse_feed(broken, **window)
    assert second.skipped_uids == {"weekly-sync@team.example"}
    translation = diff_feed(FEED, second.occurrences, state, NOW, None, second.skipped_uids)
    assert translation.commands == []
    assert translation.state is None


# --- plan --ics ----------------------------------------------------------------------------


def test_plan_calendar_lists_the_skipped_events() -> None:
    body = (FIXTURES / "real" / "odd_good_and_broken_events.ics").read_bytes()
    found = plan_calendar(body, CalendarSettings(), now=NOW, horizon_days=30)
    assert found.plannable and len(found.commands) == 13
    assert [str(s).split(":")[0] for s in found.skipped] == [
        "no-start@odd.example",
        "bad-byday@odd.example",
        "unknown-zone@odd.example",
        "bad-end@odd.example",
        "every-five-minutes@odd.example",
    ]
    nothing = plan_calendar((FIXTURES / "minutely.ics").read_bytes(), CalendarSettings(), now=NOW)
    assert not nothing.plannable and nothing.commands == [] and len(nothing.skipped) == 1


# --- the feed's row, the log, the metric ---------------------------------------------------


def test_the_row_keeps_the_first_few_with_their_reasons() -> None:
    found = [Skipped(f"uid-{n}", f"reason {n}", "no_dtstart") for n in range(8)]
    assert skipped_module.sample(found) == [
        {"uid": f"uid-{n}", "reason": f"reason {n}"} for n in range(skipped_module.SHOWN)
    ]
    assert skipped_module.sample([Skipped("u" * 400, "r" * 400)]) == [
        {"uid": "u" * 255, "reason": "r" * 300}
    ]


def test_a_report_logs_one_line_and_counts_by_kind(caplog: pytest.LogCaptureFixture) -> None:
    def count(kind: str) -> float:
        return metrics.FEED_EVENTS_SKIPPED.labels(kind)._value.get()  # type: ignore[no-any-return]

    before = {k: count(k) for k in ("no_dtstart", "bad_rrule", metrics.OTHER)}
    found = [
        Skipped("a@x", "no DTSTART", "no_dtstart"),
        Skipped("b@x", "RRULE: Expected weekday abbreviation, got: XX", "bad_rrule"),
        Skipped("", "no DTSTART", "no_dtstart"),
        Skipped("c@x", "made up", "a kind nobody knows"),
    ]
    with caplog.at_level(logging.WARNING, logger="ucaas_sync.calendar"):
        skipped_module.report("team-cal", found)
        skipped_module.report("team-cal", [])  # nothing skipped: nothing said
    [record] = caplog.records
    assert record.getMessage() == (
        "feed team-cal: 4 event(s) skipped as unusable, their meetings kept: "
        "a@x: no DTSTART; b@x: RRULE: Expected weekday abbreviation, got: XX; "
        "(no UID): no DTSTART (and 1 more)"
    )
    assert count("no_dtstart") - before["no_dtstart"] == 2
    assert count("bad_rrule") - before["bad_rrule"] == 1
    assert count(metrics.OTHER) - before[metrics.OTHER] == 1
