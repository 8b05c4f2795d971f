"""`ucaas-sync plan --ics` as an operator runs it: real processes on the iCalendar fixtures
with a fixed --now, --horizon-days and --organizer. JSON lines and exit 0 for a usable
file; one error line on stderr, no traceback and exit 2 for anything else.

The subprocess runs start at once (each pays ~1 s of imports) and the tests read the
results; the other cases run the same command in this process (typer's CliRunner).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from service.cli.main import app
from tests.support.processes import BIN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
NOW = "2026-10-01T00:00:00Z"
ORGANIZER = "lena.fischer@team.example"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stdout.splitlines()]

    def keys(self) -> list[str]:
        return [line["payload"]["meeting_key"] for line in self.lines()]


def _plan(path: Path | str, *args: str) -> list[str]:
    return ["plan", "--ics", str(path), *args]


WINDOW = ("--now", NOW, "--horizon-days", "30")


def _inputs(folder: Path) -> dict[str, list[str]]:
    """As processes: the fixtures with the expected commands, and the error cases."""
    event = folder / "event.json"
    event.write_bytes(b"{}")
    return {
        "team": _plan(FIXTURES / "team_v1.ics", *WINDOW, "--organizer", ORGANIZER),
        "overrides": _plan(FIXTURES / "overrides_and_exceptions.ics", *WINDOW),
        "html": _plan(FIXTURES / "login_page.html", *WINDOW),
        "missing": _plan(folder / "no-such-file.ics", *WINDOW),
        "both": [*_plan(FIXTURES / "team_v1.ics", *WINDOW), "--event", str(event)],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    folder = tmp_path_factory.mktemp("plan-ics")
    base = {k: v for k, v in os.environ.items() if not k.startswith("UCAAS_SYNC_")}
    started = {
        name: subprocess.Popen(
            [str(BIN / "ucaas-sync"), *args],
            cwd=folder,  # no .env of the developer's
            env=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in _inputs(folder).items()
    }
    results = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=60)
        results[name] = Run(process.returncode, out, err)
    return results


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`ucaas-sync plan` in this process, as a Run."""
    for name in [k for k in os.environ if k.startswith("UCAAS_SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's

    def run(*args: str) -> Run:
        result = CliRunner().invoke(app, ["plan", *args])
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


def test_team_feed_plans_its_meetings(runs: dict[str, Run]) -> None:
    run = runs["team"]
    assert (run.code, run.stderr) == (0, "")
    lines = run.lines()
    assert {line["kind"] for line in lines} == {"schedule_meeting"}
    assert run.keys() == [
        "plan:weekly-sync@team.example@20261005T080000Z",
        "plan:retro@team.example",
        "plan:weekly-sync@team.example@20261012T080000Z",
        "plan:offsite-prep@team.example",
        "plan:weekly-sync@team.example@20261019T080000Z",
        "plan:all-hands@team.example",
        "plan:weekly-sync@team.example@20261026T090000Z",
    ]  # not the past kick-off, not the all-day event
    assert all(line["entity"] == f"meeting:{line['payload']['meeting_key']}" for line in lines)
    first = lines[0]["payload"]
    assert first["organizer_email"] == ORGANIZER
    assert first["meeting"] == {
        "room_name": "Weekly sync",
        "desc": "Status, blockers, next steps.",
        "start_time": "2026-10-05T08:00:00Z",
        "zone": "Europe/Berlin",
        "duration": 30,
        "moderators": 1,
        "participants": 2,
        "invitees": ["bob.meyer@team.example", "carol.wagner@team.example"],  # not Lena
    }
    assert lines[-1]["payload"]["meeting"]["start_time"] == "2026-10-26T09:00:00Z"  # CET


def test_overrides_cancellations_and_this_and_future(runs: dict[str, Run]) -> None:
    run = runs["overrides"]
    assert (run.code, run.stderr) == (0, "")
    starts = {
        line["payload"]["meeting_key"]: line["payload"]["meeting"]["start_time"]
        for line in run.lines()
    }
    assert starts["plan:design-review@corp.example@20261012T120000Z"] == "2026-10-13T14:00:00Z"
    assert "plan:design-review@corp.example@20261019T120000Z" not in starts  # cancelled
    assert "plan:offsite@corp.example" not in starts  # a cancelled event
    assert starts["plan:planning@corp.example@20261021T080000Z"] == "2026-10-21T09:30:00Z"
    assert starts["plan:planning@corp.example@20261028T090000Z"] == "2026-10-28T10:30:00Z"
    standups = sorted(v for k, v in starts.items() if k.startswith("plan:standup@"))
    assert [s[8:10] for s in standups] == ["05", "08", "13", "14", "15", "16"]  # EXDATEs
    durations = {line["payload"]["meeting_key"]: line["payload"]["meeting"] for line in run.lines()}
    assert durations["plan:no-end@corp.example"]["duration"] == 10  # the minimum
    assert durations["plan:with-duration@corp.example"]["duration"] == 90
    assert durations["plan:no-end@corp.example"]["desc"] == (
        "Scheduled from the calendar of organizer@example.com"  # the default organiser
    )
    assert len(starts) == 18


def test_the_horizon_limits_the_plan(plan: Any) -> None:
    run = plan(
        "--ics", str(FIXTURES / "dst_europe_paris.ics"), "--now", NOW, "--horizon-days", "21"
    )
    assert run.code == 0, run.stderr
    assert [line["payload"]["meeting"]["start_time"] for line in run.lines()] == [
        "2026-10-08T08:00:00Z",
        "2026-10-15T08:00:00Z",
    ]


def test_outlook_zones_are_named(plan: Any) -> None:
    outlook = FIXTURES / "outlook_windows_tz.ics"
    run = plan("--ics", str(outlook), *WINDOW, "--organizer", "anna.schmidt@contoso.com")
    assert run.code == 0, run.stderr
    meetings = [line["payload"]["meeting"] for line in run.lines()]
    assert [(m["start_time"], m["zone"]) for m in meetings] == [
        ("2026-10-06T08:00:00Z", "Europe/Berlin"),
        ("2026-10-14T15:00:00Z", "America/New_York"),
        ("2026-10-20T12:00:00Z", "Europe/Berlin"),
        ("2026-10-20T14:00:00Z", "Europe/London"),
        ("2026-10-27T09:00:00Z", "Europe/Berlin"),
        ("2026-10-27T15:00:00Z", "Europe/London"),
        ("2026-10-30T13:00:00Z", "America/New_York"),
    ]
    long_title = meetings[1]["room_name"]
    assert len(long_title) == 50 and long_title.endswith("…")
    assert "anna.schmidt@contoso.com" not in meetings[0]["invitees"]


def test_now_with_an_offset(plan: Any) -> None:
    sydney = FIXTURES / "dst_australia_sydney.ics"
    run = plan("--ics", str(sydney), "--now", "2026-09-20T10:00:00+10:00")  # 00:00Z
    assert run.code == 0, run.stderr
    assert [line["payload"]["meeting"]["start_time"] for line in run.lines()] == [
        "2026-09-25T04:00:00Z",
        "2026-10-02T04:00:00Z",
        "2026-10-09T03:00:00Z",
        "2026-10-16T03:00:00Z",
    ]


def test_an_empty_calendar_plans_nothing(plan: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.ics"
    empty.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nEND:VCALENDAR\r\n")
    assert plan("--ics", str(empty), *WINDOW) == Run(0, "", "")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("html", "error: not usable iCalendar: not iCalendar: the body looks like HTML"),
        ("missing", "error: cannot read "),
        ("both", "error: give one of --event FILE [--live], --events FILE or --ics FILE"),
    ],
)
def test_unusable_input_is_one_error_line(runs: dict[str, Run], name: str, message: str) -> None:
    run = runs[name]
    assert run.code == 2
    assert run.stdout == ""
    assert run.stderr.startswith(message)
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr


BROKEN_RULE = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:x\r\n"
    b"DTSTART:20261005T100000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=XX\r\nEND:VEVENT\r\n"
    b"END:VCALENDAR\r\n"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ics", str(FIXTURES / "truncated.ics"), *WINDOW],
            "error: not usable iCalendar: truncated: no END:VCALENDAR at the end",
        ),
        (["--ics", "."], "error: cannot read ."),
        (["--ics", str(FIXTURES / "team_v1.ics"), "--now", "2026-10-01T00:00:00"], "error: --now"),
        ([], "error: give one of --event FILE [--live], --events FILE or --ics FILE"),
    ],
    ids=[
        "truncated",
        "directory",
        "naive-now",
        "neither",
    ],
)
def test_more_unusable_input_is_one_error_line(plan: Any, args: list[str], message: str) -> None:
    run = plan(*args)
    assert (run.code, run.stdout) == (2, "")
    assert run.stderr.startswith(message)
    assert run.stderr.count("\n") == 1, run.stderr


# -- a change from one version to the next, and whose events ------------------------------
EMPTY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Export//EN\r\nEND:VCALENDAR\r\n"


def test_previous_plans_the_change_and_an_everyday_one_is_not_held(plan: Any) -> None:
    v1, v2 = FIXTURES / "team_v1.ics", FIXTURES / "team_v2.ics"
    fresh = plan("--ics", str(v2), *WINDOW)
    change = plan("--ics", str(v2), "--previous", str(v1), *WINDOW)
    assert change.code == 0, change.stderr
    assert change.lines()
    assert change.lines() != fresh.lines()  # the change from v1, not v2 from nothing
    assert "update_meeting" in {line["kind"] for line in change.lines()}
    assert {line["kind"] for line in change.lines()} <= {
        "schedule_meeting",
        "update_meeting",
        "cancel_meeting",
    }
    assert all("held" not in line for line in change.lines())
    same = plan("--ics", str(v1), "--previous", str(v1), *WINDOW)
    assert (same.code, same.lines()) == (0, [])


def test_an_emptied_feed_would_be_held(plan: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.ics"
    empty.write_bytes(EMPTY)
    run = plan("--ics", str(empty), "--previous", str(FIXTURES / "team_v1.ics"), *WINDOW)
    assert run.code == 0, run.stderr
    lines = run.lines()
    assert lines
    assert {line["kind"] for line in lines} == {"cancel_meeting"}
    assert all(line["held"].startswith("approval: feed plan would cancel") for line in lines)
    assert "note: held: feed plan would cancel" in run.stderr


def test_with_an_organizer_only_their_events_are_planned(plan: Any) -> None:
    outlook = FIXTURES / "outlook_windows_tz.ics"
    everyone = plan("--ics", str(outlook), *WINDOW)
    stranger = plan("--ics", str(outlook), *WINDOW, "--organizer", "someone@else.example")
    assert everyone.lines()
    assert (stranger.code, stranger.lines()) == (0, [])
    assert "occurrence(s) someone@else.example only attends" in stranger.stderr


def test_skipped_events_are_listed_and_the_rest_planned(plan: Any) -> None:
    """Broken events among good ones: one `skipped: UID: reason` line each on stderr, the
    good ones planned on stdout, exit 0."""
    odd = FIXTURES / "real" / "odd_good_and_broken_events.ics"
    run = plan("--ics", str(odd), *WINDOW)
    assert run.code == 0, run.stderr
    assert run.stderr.splitlines() == [
        "skipped: no-start@odd.example: no DTSTART",
        "skipped: bad-byday@odd.example: RRULE: Expected weekday abbreviation, got: XX",
        "skipped: unknown-zone@odd.example: DTSTART: unknown time zone 'Customized Time Zone'"
        " (no usable VTIMEZONE, no known name)",
        "skipped: bad-end@odd.example: DTEND: Wrong datetime format: 20261032T100000Z",
        "skipped: every-five-minutes@odd.example: RRULE FREQ=MINUTELY repeats too fast for"
        " meetings",
    ]
    keys = run.keys()
    assert len(keys) == 13 and len(set(keys)) == 13
    assert not {key.removeprefix("plan:").split("@")[0] for key in keys} & SKIPPED
    assert "plan:standup@odd.example@20261005T070000Z" in keys


SKIPPED = {"no-start", "bad-byday", "unknown-zone", "bad-end", "every-five-minutes"}


@pytest.mark.parametrize(
    ("args", "skipped"),
    [
        (
            ["--ics", str(FIXTURES / "invalid_date.ics"), *WINDOW],
            "skipped: bad-date@broken.example: DTSTART: Wrong datetime format: 20261345T250000Z",
        ),
        (
            ["--ics", str(FIXTURES / "minutely.ics"), *WINDOW],
            "skipped: every-minute@broken.example: RRULE FREQ=MINUTELY repeats too fast",
        ),
        (
            ["--ics", str(FIXTURES / "runaway_byminute.ics"), *WINDOW],
            "skipped: every-minute-daily@broken.example: RRULE would step through about",
        ),
        (
            ["--ics", "broken-rule.ics", *WINDOW],
            "skipped: x: RRULE: Expected weekday abbreviation, got: XX",
        ),
    ],
    ids=["invalid-date", "minutely", "runaway", "broken-rule"],
)
def test_a_file_whose_every_event_is_skipped_is_an_error(
    plan: Any, tmp_path: Path, args: list[str], skipped: str
) -> None:
    (tmp_path / "broken-rule.ics").write_bytes(BROKEN_RULE)
    run = plan(*args)
    assert (run.code, run.stdout) == (2, "")
    first, error = run.stderr.splitlines()
    assert first.startswith(skipped), first
    assert error == "error: no usable event: all 1 were skipped"
