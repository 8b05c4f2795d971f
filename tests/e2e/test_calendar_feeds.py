"""iCalendar feeds end to end: a feed served over HTTP (with ETag and Last-Modified), the
service's poller, the outbox and the UCaaS sandbox; what the operator sees in
/_sandbox/state, /_sandbox/calls and the feeds table.

- In this process, polled and dispatched step by step: the occurrences (single events, a
  weekly series with an override and an EXDATE, a daily series) become the organiser's
  meetings; a changed file edits, cancels and schedules; an unchanged one costs a 304 and
  no UCaaS call; a failing feed (500, HTML, truncated) cancels nothing and says why; when
  it recovers, changes resume. As days pass, an unchanged feed's series is scheduled on.
  A feed removed and registered again is scheduled again (expected to fail until the
  registry forgets a removed feed's validators).
- Through Kafka (consumers, dispatcher and poller running in this process): a feed
  registered by a calendar.feed.registered CloudEvent is polled and scheduled; its
  calendar.feed.removed cancels its meetings, even with a fetch of it in flight.
- `ucaas-sync run` as an operator starts it: a feeds file, loopback allowed, a short
  interval; changes reach the sandbox, an unchanged feed makes no call.

Each test prints the counts it compared.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.events.cloudevents import Record, parse
from sandbox.datapool import zones
from service.app.bootstrap import Service, bootstrap
from service.calendar import poller as poller_module
from service.calendar import registry as registry_module
from service.devtools.local_broker import Topics, structured
from service.devtools.sample_commands import email_of, event, onboarding
from service.devtools.service_processes import MOVING, DispatchProcess, Outbox
from service.domain.feeds import Feed
from service.entrypoints.consumers import EventConsumer
from service.outbox import db
from service.outbox.tables import FEEDS, CalendarFeed
from service.settings import Settings
from tests.support.databases import sqlite_url
from tests.support.feeds import FeedServer, vcalendar, vevent
from tests.support.kafka import EventProducer, cloudevent
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import Processes, TenantInSandbox, accept, dispatch_env

TENANT = "CRM-CAL"
ORGANISER = email_of(TENANT, "E0000")
COLLEAGUE = email_of(TENANT, "E0001")
GUEST = "guest@partner.example"
PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
POST, PATCH, DELETE = (
    "POST /meetings",
    "PATCH /meetings/{meeting_id}",
    "DELETE /meetings/{meeting_id}",
)
LONG_TITLE = "Quarterly retrospective with the whole platform team and our guests"


# -- the calendar ------------------------------------------------------------------------------
def base_day() -> date:
    """Two days ahead: every occurrence is in the future whenever the test runs."""
    return datetime.now(UTC).date() + timedelta(days=2)


def at(day: int, hour: int, minute: int = 0, zone: Any = UTC) -> datetime:
    return datetime.combine(base_day() + timedelta(days=day), clock(hour, minute), tzinfo=zone)


def weekly(*, exdates: tuple[int, ...] = (7,)) -> list[str]:
    """Weekly sync, New York 09:00, 4 times from day 0: the day-7 one is excluded, the
    day-14 one moved to 11:30 (30 minutes, its own title)."""
    return [
        vevent(
            "weekly-1",
            at(0, 9, zone=NEW_YORK),
            "Weekly sync",
            minutes=60,
            tzid="America/New_York",
            rrule="FREQ=WEEKLY;COUNT=4",
            exdates=[at(d, 9, zone=NEW_YORK) for d in exdates],
            organizer=ORGANISER,
            attendees=[ORGANISER, COLLEAGUE],
        ),
        vevent(
            "weekly-1",
            at(14, 11, 30, zone=NEW_YORK),
            "Weekly sync (moved)",
            minutes=30,
            tzid="America/New_York",
            recurrence_id=at(14, 9, zone=NEW_YORK),
            organizer=ORGANISER,
            attendees=[ORGANISER, COLLEAGUE],
            sequence=1,
        ),
    ]


def standup(*, cancel_day_2: bool = False) -> list[str]:
    """Daily standup, 08:00 UTC, days 1 to 3; the day-2 one may be cancelled."""
    found = [vevent("standup-1", at(1, 8), "Standup", minutes=15, rrule="FREQ=DAILY;COUNT=3")]
    if cancel_day_2:
        found.append(
            vevent(
                "standup-1",
                at(2, 8),
                "Standup",
                minutes=15,
                recurrence_id=at(2, 8),
                status="CANCELLED",
                sequence=1,
            )
        )
    return found


def kickoff(hour: int = 10) -> str:
    return vevent(
        "kickoff-1",
        at(-1, hour, zone=PARIS),
        "Kickoff",
        minutes=45,
        tzid="Europe/Paris",
        organizer=ORGANISER,
        attendees=[ORGANISER, COLLEAGUE, GUEST.upper()],
        description="Scope and people",
    )


def budget(title: str = "Budget review") -> str:
    return vevent("budget-1", at(3, 14), title, minutes=30, organizer=ORGANISER)


def offsite() -> str:
    return vevent("offsite-1", at(4, 13), "Offsite prep", minutes=90)


def retro() -> str:
    return vevent("retro-1", at(5, 16), LONG_TITLE, minutes=60, attendees=[GUEST])


def design() -> str:
    return vevent("design-1", at(6, 10), "Design review", minutes=50, attendees=[COLLEAGUE])


def version_1() -> bytes:
    return vcalendar(kickoff(), *weekly(), *standup(), budget(), offsite())


def version_2() -> bytes:
    """Kickoff moved an hour, budget retitled, offsite gone, the last weekly excluded, the
    day-2 standup cancelled, a retro added."""
    return vcalendar(
        kickoff(hour=11),
        *weekly(exdates=(7, 21)),
        *standup(cancel_day_2=True),
        budget("Budget review FY27"),
        retro(),
    )


def version_3() -> bytes:
    """Budget gone, a design review added."""
    return vcalendar(
        kickoff(hour=11), *weekly(exdates=(7, 21)), *standup(cancel_day_2=True), retro(), design()
    )


@dataclass(frozen=True, order=True)
class Expect:
    """A meeting as the sandbox should hold it."""

    room: str
    start: datetime  # UTC
    minutes: int
    invitees: tuple[str, ...] = ()
    zone: str = "UTC"


def expected_1() -> list[Expect]:
    utc = UTC
    return sorted(
        [
            Expect(
                "Kickoff",
                at(-1, 10, zone=PARIS).astimezone(utc),
                45,
                (COLLEAGUE, GUEST),
                "Europe/Paris",
            ),
            *(
                Expect(
                    "Weekly sync",
                    at(d, 9, zone=NEW_YORK).astimezone(utc),
                    60,
                    (COLLEAGUE,),
                    "America/New_York",
                )
                for d in (0, 21)
            ),
            Expect(
                "Weekly sync (moved)",
                at(14, 11, 30, zone=NEW_YORK).astimezone(utc),
                30,
                (COLLEAGUE,),
                "America/New_York",
            ),
            *(Expect("Standup", at(d, 8), 15) for d in (1, 2, 3)),
            Expect("Budget review", at(3, 14), 30),
            Expect("Offsite prep", at(4, 13), 90),
        ]
    )


def expected_2() -> list[Expect]:
    kept = [
        e
        for e in expected_1()
        if e.room not in ("Kickoff", "Budget review", "Offsite prep")
        and e.start not in (at(21, 9, zone=NEW_YORK), at(2, 8))
    ]
    return sorted(
        [
            *kept,
            Expect(
                "Kickoff",
                at(-1, 11, zone=PARIS).astimezone(UTC),
                45,
                (COLLEAGUE, GUEST),
                "Europe/Paris",
            ),
            Expect("Budget review FY27", at(3, 14), 30),
            Expect(LONG_TITLE[:49].rstrip() + "…", at(5, 16), 60, (GUEST,)),
        ]
    )


def expected_3() -> list[Expect]:
    kept = [e for e in expected_2() if e.room != "Budget review FY27"]
    return sorted([*kept, Expect("Design review", at(6, 10), 50, (COLLEAGUE,))])


# -- the sandbox, seen by a test ---------------------------------------------------------------
def meetings(sandbox: SandboxAdmin) -> list[dict[str, Any]]:
    return TenantInSandbox.of(sandbox.state(), TENANT).meetings


def live(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in found if m["cancelled_at"] is None]


def seen_as(meeting: dict[str, Any]) -> Expect:
    return Expect(
        meeting["room_name"],
        datetime.fromisoformat(meeting["start_time"]).astimezone(UTC),
        meeting["duration"],
        tuple(sorted(meeting["invitees"].get("emails", []))),
        zones()[meeting["timezone_id"]].zone_name,
    )


def check_live(sandbox: SandboxAdmin, expected: list[Expect]) -> dict[Expect, dict[str, Any]]:
    """The tenant's live meetings are exactly `expected`, all the organiser's; by shape."""
    state = sandbox.state()
    view = TenantInSandbox.of(state, TENANT)
    (organiser,) = [u for u in view.users if u["email"] == ORGANISER]
    found = live(view.meetings)
    assert sorted(seen_as(m) for m in found) == sorted(expected)
    assert {m["user_id"] for m in found} <= {organiser["user_id"]}
    return {seen_as(m): m for m in found}


def ucaas_calls(sandbox: SandboxAdmin) -> Counter[str]:
    return Counter(sandbox.calls()["calls"])


def meeting_calls(calls: Counter[str]) -> dict[str, int]:
    return {k: calls[k] for k in (POST, PATCH, DELETE)}


# -- the service in this process ---------------------------------------------------------------
@dataclass
class Running:
    service: Service
    env: dict[str, str]
    consumer: EventConsumer | None = None
    tasks: tuple[asyncio.Task[None], ...] = ()

    @property
    def poller(self) -> poller_module.FeedPoller:
        return self.service.poller

    async def onboard(self, employees: int = 2) -> None:
        """The tenant, its vc subscription and licensed employees (E0000 organises)."""
        assert await self.service.uow.accept(event(), onboarding(TENANT, employees))
        if self.tasks:
            await self.settle()
        else:
            await self.service.dispatcher.run_until_idle(idle_s=0.1)

    async def settle(self, timeout_s: float = 20.0) -> dict[str, int]:
        """Until no command is pending, in flight or waiting (a running dispatcher)."""
        deadline = time.monotonic() + timeout_s
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = await self.service.store.counts()
            if not any(counts.get(s) for s in MOVING):
                return counts
            await asyncio.sleep(0.05)
        raise AssertionError(f"the outbox did not settle: {counts}")

    async def feed_row(self, feed_id: str) -> CalendarFeed:
        (row,) = [r for r in await self.poller.registry.rows() if r.feed_id == feed_id]
        return row

    async def due_now(self, feed_id: str) -> None:
        """As if its interval (or its retry wait) had run out."""
        async with self.service.engine.begin() as conn:
            await conn.execute(
                FEEDS.update()
                .where(FEEDS.c.feed_id == feed_id)
                .values(next_fetch_at=registry_module.utcnow())
            )

    async def cycle(self, feed_id: str) -> None:
        """Poll the feed now, then run the dispatcher until the outbox is quiet."""
        await self.due_now(feed_id)
        await self.poller.poll_all_now()
        await self.service.dispatcher.run_until_idle(idle_s=0.1)


Start = Callable[..., Awaitable[Running]]


def calendar_env(interval_s: float = 300.0) -> dict[str, str]:
    return {
        "UCAAS_SYNC_CALENDAR_ALLOW_PRIVATE_ADDRESSES": "true",
        "UCAAS_SYNC_CALENDAR_INTERVAL_S": str(interval_s),
        "UCAAS_SYNC_CALENDAR_JITTER": "0",
    }


@pytest.fixture
async def start_service(
    tmp_path: Path, sandbox: SandboxAdmin, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Start]:
    """The service in this process, configured by the environment an operator sets. With
    `kafka`: consumers on fresh topics, and the dispatcher and the poller running."""
    started: list[Running] = []

    async def start(
        *,
        kafka: str | None = None,
        topics: Topics | None = None,
        interval_s: float = 300.0,
        **extra: str,
    ) -> Running:
        env = dispatch_env(sqlite_url(tmp_path), sandbox.base_url, lease_s=2.0)
        env.update(calendar_env(interval_s), **extra)
        if topics is not None:
            env.update(topics.env(), UCAAS_SYNC_KAFKA_SESSION_TIMEOUT_MS="6000")
        for name in list(os.environ):
            if name.startswith("UCAAS_SYNC_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            if name.startswith("UCAAS_SYNC_"):
                monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        service = await bootstrap(Settings())
        running = Running(service, env)
        started.append(running)
        if kafka is not None:
            running.consumer = service.consumer(kafka)
            began = time.monotonic()
            await running.consumer.start()
            print(f"\nconsumer group joined in {time.monotonic() - began:.1f} s")
            running.tasks = (
                asyncio.create_task(service.dispatcher.run()),
                asyncio.create_task(service.poller.run()),
            )
        return running

    yield start
    for running in started:
        try:
            if running.consumer is not None:
                await running.consumer.stop()
            if running.tasks:
                await running.service.poller.stop()
                await running.service.dispatcher.stop()
                await asyncio.gather(*running.tasks)
        finally:
            await running.service.aclose()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


# -- in this process, step by step --------------------------------------------------------------
async def test_a_feed_becomes_meetings_follows_its_changes_and_survives_its_failures(
    start_service: Start, sandbox: SandboxAdmin, feed_server: FeedServer
) -> None:
    run = await start_service()
    await run.onboard()
    feed_server.publish(version_1())
    feed = Feed(feed_id="team", url=feed_server.url, organizer_email=ORGANISER, tenant=TENANT)
    await run.poller.registry.register_all([feed], source="config")

    # 1. The occurrences become the organiser's meetings.
    await run.cycle("team")
    first = check_live(sandbox, expected_1())
    calls_1 = ucaas_calls(sandbox)
    assert meeting_calls(calls_1) == {POST: 9, PATCH: 0, DELETE: 0}
    row = await run.feed_row("team")
    assert (row.last_status, row.occurrences, row.failures) == ("ok", 9, 0)
    assert row.etag and row.last_modified
    assert await run.service.store.counts() == {"done": 2 + 2 * 2 + 9}

    # 2. The file changes: edits keep their meeting, removals are cancelled.
    by_room = {e.room: m["meeting_id"] for e, m in first.items()}
    kickoff_id, budget_id = by_room["Kickoff"], by_room["Budget review"]
    feed_server.publish(version_2())
    await run.cycle("team")
    second = check_live(sandbox, expected_2())
    calls_2 = ucaas_calls(sandbox)
    assert meeting_calls(calls_2 - calls_1) == {POST: 1, PATCH: 2, DELETE: 3}
    by_room = {e.room: m["meeting_id"] for e, m in second.items()}
    assert by_room["Kickoff"] == kickoff_id, "a moved event became a new meeting"
    assert by_room["Budget review FY27"] == budget_id, "a retitled event became a new meeting"
    cancelled = {
        (m["room_name"], datetime.fromisoformat(m["start_time"]))
        for m in meetings(sandbox)
        if m["cancelled_at"] is not None
    }
    assert cancelled == {
        ("Offsite prep", at(4, 13)),
        ("Weekly sync", at(21, 9, zone=NEW_YORK)),
        ("Standup", at(2, 8)),
    }
    v2_etag = (await run.feed_row("team")).etag

    # 3. Unchanged: a conditional request, a 304, not one UCaaS call.
    before = feed_server.counts()
    await run.cycle("team")
    after = feed_server.counts()
    assert ucaas_calls(sandbox) == calls_2
    assert (after["conditional"] - before["conditional"], after["not_modified"]) == (
        1,
        before["not_modified"] + 1,
    )
    last = feed_server.seen[-1]
    assert last.if_none_match == v2_etag and last.if_modified_since, last
    assert (await run.feed_row("team")).last_status == "unchanged"

    # 4. Failing: a 500, an HTML page, a truncated file. Nothing is cancelled.
    failures = [
        ((500, b"oops", "text/plain"), "HTTP 500 from 127.0.0.1"),
        (
            (200, b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html"),
            "not iCalendar: the body looks like HTML",
        ),
        ((200, version_3()[: len(version_3()) // 2], "text/calendar"), "truncated"),
    ]
    for n, ((status, body, kind), reason) in enumerate(failures, start=1):
        feed_server.fail(status, body, kind)
        await run.cycle("team")
        row = await run.feed_row("team")
        assert (row.last_status, row.failures) == ("failed", n), row
        assert row.last_error is not None and row.last_error.startswith(reason), row.last_error
        assert row.etag == v2_etag  # kept: the next request is still conditional
        check_live(sandbox, expected_2())
        assert ucaas_calls(sandbox) == calls_2
    assert run.poller.stats.fetches["failed"] == 3

    # 5. Recovered, with changes: they take effect.
    feed_server.publish(version_3())
    await run.cycle("team")
    check_live(sandbox, expected_3())
    calls_3 = ucaas_calls(sandbox)
    assert meeting_calls(calls_3 - calls_2) == {POST: 1, PATCH: 0, DELETE: 1}
    row = await run.feed_row("team")
    assert (row.last_status, row.failures, row.last_error) == ("ok", 0, None)
    assert feed_server.seen[-1].if_none_match == v2_etag  # conditional, and answered 200
    assert feed_server.seen[-1].status == 200
    counts = await run.service.store.counts()
    assert counts == {"done": 2 + 2 * 2 + 9 + 6 + 2}, counts
    print(
        f"\ncompared: v1 {len(expected_1())} meetings, calls {meeting_calls(calls_1)}; "
        f"v2 {len(expected_2())} live, delta {meeting_calls(calls_2 - calls_1)} "
        f"(kickoff {kickoff_id} kept); unchanged: total calls {calls_2.total()} before and "
        f"after, server {before} -> {after}; 3 failures, calls still {calls_2.total()}, "
        f"{len(expected_2())} live; recovered: delta {meeting_calls(calls_3 - calls_2)}, "
        f"{len(expected_3())} live; outbox {counts}; poller {dict(run.poller.stats.fetches)}"
    )


UNUSABLE = (
    vevent("bad-rule-1", at(2, 15), "Bad rule", rrule="FREQ=WEEKLY;BYDAY=XX"),
    "BEGIN:VEVENT\r\nUID:no-start-1\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:When?\r\nEND:VEVENT\r\n",
)


async def test_broken_events_are_skipped_and_a_series_that_breaks_keeps_its_meetings(
    start_service: Start, sandbox: SandboxAdmin, feed_server: FeedServer
) -> None:
    """Two unusable events among the good ones: the good ones reach UCaaS, the feed's
    row names the bad ones. Then the weekly series breaks while the rest of the file
    changes: every other change is made, the series' meetings are neither edited nor
    cancelled; once it is fixed, its own change (an excluded instance) is made."""
    run = await start_service()
    await run.onboard()
    feed_server.publish(vcalendar(kickoff(), *weekly(), *standup(), budget(), offsite(), *UNUSABLE))
    feed = Feed(feed_id="team", url=feed_server.url, organizer_email=ORGANISER, tenant=TENANT)
    await run.poller.registry.register_all([feed], source="config")
    await run.cycle("team")
    check_live(sandbox, expected_1())
    calls_1 = ucaas_calls(sandbox)
    assert meeting_calls(calls_1) == {POST: 9, PATCH: 0, DELETE: 0}
    row = await run.feed_row("team")
    assert (row.last_status, row.occurrences, row.skipped_events) == ("ok", 9, 2)
    assert [s["uid"] for s in row.skipped_sample or []] == ["bad-rule-1", "no-start-1"]

    broken = version_2().replace(b"RRULE:FREQ=WEEKLY;COUNT=4", b"RRULE:FREQ=WEEKLY;BYDAY=XX")
    assert broken != version_2()
    feed_server.publish(broken)
    await run.cycle("team")
    series = [e for e in expected_1() if e.room.startswith("Weekly sync")]
    others = [e for e in expected_2() if not e.room.startswith("Weekly sync")]
    check_live(sandbox, sorted([*others, *series]))  # the day-21 instance is still live
    calls_2 = ucaas_calls(sandbox)
    assert meeting_calls(calls_2 - calls_1) == {POST: 1, PATCH: 2, DELETE: 2}
    row = await run.feed_row("team")
    assert (row.skipped_events, [s["uid"] for s in row.skipped_sample or []]) == (1, ["weekly-1"])

    feed_server.publish(version_2())
    await run.cycle("team")
    check_live(sandbox, expected_2())
    assert meeting_calls(ucaas_calls(sandbox) - calls_2) == {POST: 0, PATCH: 0, DELETE: 1}
    assert (await run.feed_row("team")).skipped_events == 0
    print(
        f"\ncompared: v1 with 2 unusable events: {len(expected_1())} live, "
        f"{meeting_calls(calls_1)}; series broken: {len(others) + len(series)} live, delta "
        f"{meeting_calls(calls_2 - calls_1)}; fixed: {len(expected_2())} live"
    )


async def test_as_days_pass_an_unchanged_feed_is_scheduled_further_ahead(
    start_service: Start,
    sandbox: SandboxAdmin,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A weekly series reaching past the 30-day horizon: the occurrences that come into the
    window as days pass are scheduled, though the file never changes (its server answers
    conditional requests with 304). The calendar's clock starts nine days back, then comes
    to now (the commands queued then are that old: the dispatcher's age limit is raised
    for the test)."""
    run = await start_service(UCAAS_SYNC_DISPATCH_MAX_AGE_S=str(40 * 86400))
    await run.onboard()
    series = vevent("long-1", at(0, 15), "Long series", minutes=30, rrule="FREQ=WEEKLY;COUNT=6")
    feed_server.publish(vcalendar(series))
    feed = Feed(feed_id="long", url=feed_server.url, organizer_email=ORGANISER, tenant=TENANT)
    await run.poller.registry.register_all([feed], source="config")
    horizon = timedelta(days=run.service.settings.calendar.horizon_days)
    starts = [at(7 * n, 15) for n in range(6)]

    def poller_clock(offset: timedelta) -> None:
        """The calendar's clock (the poller's and its registry's); the outbox keeps its own."""
        for module in (poller_module, registry_module):
            monkeypatch.setattr(module, "utcnow", lambda: datetime.now(UTC) + offset)

    def live_starts() -> list[datetime]:
        return sorted(seen_as(m).start for m in live(meetings(sandbox)))

    back = timedelta(days=-9)
    poller_clock(back)
    await run.cycle("long")
    first = [s for s in starts if s <= datetime.now(UTC) + back + horizon]
    assert live_starts() == first

    # An hour later: a 304, nothing to do.
    poller_clock(back + timedelta(hours=1))
    await run.cycle("long")
    assert feed_server.seen[-1].status == 304
    assert live_starts() == first

    # Nine days later: the window has moved on by nine days.
    poller_clock(timedelta(0))
    await run.cycle("long")
    later = [s for s in starts if s not in first and s <= datetime.now(UTC) + horizon]
    assert later, "the series should reach past the first window"
    assert live_starts() == first + later, "the occurrences that came into the window"
    calls = ucaas_calls(sandbox)
    assert meeting_calls(calls) == {POST: len(first) + len(later), PATCH: 0, DELETE: 0}
    print(
        f"\ncompared: {len(first)} meetings in the first window, {len(later)} more 9 days "
        f"later (of {len(starts)}); server {feed_server.counts()}; calls {meeting_calls(calls)}"
    )


async def take(run: Running, type_: str, subject: str, data: dict[str, Any]) -> None:
    """A calendar.feed.* CloudEvent through the intake, as the consumer hands it over."""
    value, headers = structured(cloudevent(type_, subject, data))
    record = Record("calendar.feeds", 0, 0, subject.encode(), value, tuple(headers))
    (taken,) = await run.service.intake.take([parse(record)])
    assert taken.outcome == "accepted", taken
    await run.service.dispatcher.run_until_idle(idle_s=0.1)


async def test_a_feed_removed_then_registered_again_is_scheduled_again(
    start_service: Start, sandbox: SandboxAdmin, feed_server: FeedServer
) -> None:
    run = await start_service()
    await run.onboard()
    feed_server.publish(vcalendar(budget(), offsite()))
    feed = {"url": feed_server.url, "organizer_email": ORGANISER, "tenant": TENANT}
    await take(run, "calendar.feed.registered", "again", feed)
    await run.cycle("again")
    assert len(live(meetings(sandbox))) == 2
    await take(run, "calendar.feed.removed", "again", {})
    assert not live(meetings(sandbox))
    await take(run, "calendar.feed.registered", "again", feed)
    await run.cycle("again")
    print(f"\nserver {feed_server.counts()}; calls {meeting_calls(ucaas_calls(sandbox))}")
    assert len(live(meetings(sandbox))) == 2, "the feed registered again has no meetings"


# -- through Kafka -----------------------------------------------------------------------------
async def wait_for(
    what: str, check: Callable[[], bool], timeout_s: float = 20.0, every_s: float = 0.1
) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout_s, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(every_s)
    return time.monotonic() - began


async def test_a_feed_registered_and_removed_by_events(
    start_service: Start, sandbox: SandboxAdmin, feed_server: FeedServer, kafka: str
) -> None:
    topics = Topics.fresh("calendar")
    await topics.create(kafka)
    run = await start_service(kafka=kafka, topics=topics, interval_s=0.3)
    await run.onboard()
    feed_server.publish(vcalendar(*weekly(), budget()))
    registered = cloudevent(
        "calendar.feed.registered",
        "team-cal",
        {"url": feed_server.url, "organizer_email": ORGANISER.upper(), "tenant": TENANT},
    )
    weekly_3 = [e for e in expected_1() if e.room.startswith("Weekly")]
    budget_1 = [e for e in expected_1() if e.room == "Budget review"]
    async with EventProducer(kafka) as producer:
        await producer.event(topics.calendar, registered)
        took = await wait_for(
            "the feed's meetings", lambda: len(live(meetings(sandbox))) == 4, timeout_s=20
        )
        await run.settle()
        check_live(sandbox, weekly_3 + budget_1)
        row = await run.feed_row("team-cal")
        # "unchanged" when a 304 poll (0.3 s interval) came after the one that planned
        assert (row.source, row.organizer_email) == ("event", ORGANISER)
        assert row.last_status in ("ok", "unchanged"), row.last_status
        # Polled again and again (a 0.3 s interval): 304s, and no more calls.
        calls = ucaas_calls(sandbox)
        polled = feed_server.requests()
        await asyncio.to_thread(feed_server.wait_requests, polled + 3)
        assert ucaas_calls(sandbox) == calls
        assert feed_server.seen[-1].status == 304

        # A change is being fetched when the feed is removed: the removal wins.
        feed_server.hold()
        await asyncio.to_thread(feed_server.wait_held)
        feed_server.publish(vcalendar(*weekly(), budget("Budget review FY27")))
        removed = cloudevent("calendar.feed.removed", "team-cal", {"feed_id": "team-cal"})
        await producer.event(topics.calendar, removed)
        await wait_for("the removal", lambda: not live(meetings(sandbox)))
        await run.settle()
        gone = ucaas_calls(sandbox)
        assert meeting_calls(gone - calls) == {POST: 0, PATCH: 0, DELETE: 4}
        fetches = run.poller.stats.fetches.total()
        feed_server.release()
        await wait_for("the held fetch", lambda: run.poller.stats.fetches.total() > fetches)
        await asyncio.sleep(0.5)  # longer than the interval: a removed feed is not fetched
        await run.settle()
    requests = feed_server.requests()
    await asyncio.sleep(0.6)
    assert feed_server.requests() == requests, "a removed feed is still fetched"
    assert not live(meetings(sandbox)), "meetings of a removed feed came back"
    final = ucaas_calls(sandbox)
    assert meeting_calls(final) == {POST: 4, PATCH: 0, DELETE: 4}
    assert (await run.feed_row("team-cal")).removed
    assert run.consumer is not None
    assert run.consumer.stats.outcomes == Counter(accepted=2)
    print(
        f"\ncompared: registered by event -> 4 meetings in {took:.1f} s; {polled}+ polls, "
        f"then 304s with calls unchanged ({calls.total()}); removed with a fetch in flight "
        f"-> {meeting_calls(final)}, 0 live, {requests} requests in all, none after; "
        f"consumer {dict(run.consumer.stats.outcomes)}"
    )


# -- `ucaas-sync run` ----------------------------------------------------------------------------
def start_run(processes: Processes, env: dict[str, str]) -> DispatchProcess:
    return processes.start("feeds", env, ("run",))


async def test_ucaas_sync_run_polls_a_feeds_file(
    sandbox: SandboxAdmin,
    feed_server: FeedServer,
    kafka: str,
    processes: Processes,
    tmp_path: Path,
) -> None:
    database = sqlite_url(tmp_path)
    await asyncio.to_thread(db.upgrade, database)
    await asyncio.to_thread(accept, database, [onboarding(TENANT, 2)])
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        f'[[feeds]]\nid = "file-cal"\nurl = "{feed_server.url}"\n'
        f'organizer = "{ORGANISER}"\ntenant = "{TENANT}"\n'
    )
    topics = Topics.fresh("calendar-run")
    await topics.create(kafka)
    env = dispatch_env(database, sandbox.base_url)
    env.update(
        **topics.env(),
        **calendar_env(interval_s=0.5),
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        UCAAS_SYNC_CALENDAR_FEEDS_FILE=str(feeds),
    )
    feed_server.publish(version_1())
    outbox = Outbox(database)
    process = start_run(processes, env)
    try:

        def shows(expected: list[Expect]) -> bool:
            assert process.returncode is None, process.tail()
            return sorted(seen_as(m) for m in live(meetings(sandbox))) == sorted(expected)

        took_1 = await wait_for("version 1", lambda: shows(expected_1()), timeout_s=30)
        calls_1 = ucaas_calls(sandbox)
        feed_server.publish(version_2())
        took_2 = await wait_for("version 2", lambda: shows(expected_2()))
        await asyncio.sleep(0.3)  # the last calls of the change
        calls_2 = ucaas_calls(sandbox)
        assert meeting_calls(calls_2 - calls_1) == {POST: 1, PATCH: 2, DELETE: 3}
        not_modified = feed_server.counts()["not_modified"]
        await asyncio.to_thread(feed_server.wait_requests, feed_server.requests() + 3)
        unchanged = feed_server.counts()
        assert unchanged["not_modified"] >= not_modified + 3
        assert ucaas_calls(sandbox) == calls_2
        assert process.stop() == 0, process.tail()
    finally:
        outbox_counts = outbox.counts()
        outbox.close()
    log = process.log.read_text()
    assert re.search(r"ucaas-sync started: [a-z, ]*poller", log), log
    assert outbox_counts == {"done": 2 + 2 * 2 + 9 + 6}, outbox_counts
    print(
        f"\ncompared: `ucaas-sync run` scheduled {len(expected_1())} meetings in {took_1:.1f} s "
        f"({meeting_calls(calls_1)}), followed version 2 in {took_2:.1f} s "
        f"(delta {meeting_calls(calls_2 - calls_1)}); unchanged: server {unchanged}, "
        f"calls {calls_2.total()} before and after; outbox {outbox_counts}"
    )
