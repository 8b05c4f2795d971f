"""The feed poller when a poll goes wrong past its fetch, on SQLite and PostgreSQL, on the
real clock against a local feed server (tests/support/feeds.py):

- a database error while a poll writes its result is recorded on the feed (status,
  reason, failure count, backoff) and the feed is polled again on that schedule, not
  after its claim's lease; no poll task ends with an exception nobody retrieved;
- a running poll renews its claim, so a slow fetch keeps its feed to itself;
- a poller that dies mid-poll holds its feed for one short lease, then another takes it;
- a poll whose claim was lost meanwhile writes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calendar.poller import FeedPoller
from service.calendar.registry import FeedRegistry
from service.domain.feeds import Feed
from service.outbox.store import OutboxStore
from service.outbox.tables import FEEDS, OUTBOX
from service.outbox.unit_of_work import Commands, UnitOfWork
from service.settings import CalendarSettings
from tests.support.feeds import FeedServer, vcalendar, vevent

SECRET_URL = "https://calendar.example.com/private-9f8e7d6c5b4a/basic.ics"
SETTINGS = CalendarSettings(
    interval_s=0.3,
    jitter=0.0,
    horizon_days=30.0,
    retry_cap_s=1.0,
    timeout_s=10.0,
    allow_private_addresses=True,  # the feed server is on loopback
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    tomorrow = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    feed = FeedServer(path="/team.ics")
    feed.publish(
        vcalendar(
            vevent("standup@team.example", tomorrow, "Stand-up", organizer="lena@team.example"),
            vevent("retro@team.example", tomorrow + timedelta(hours=3), "Retro"),
        )
    )
    yield feed
    feed.close()


@pytest.fixture
async def engine(store: OutboxStore, server: FeedServer) -> AsyncEngine:
    feed = Feed(
        feed_id="team-cal", url=server.url, organizer_email="lena@team.example", tenant="acme"
    )
    await FeedRegistry(store.engine).register_all([feed], source="config")
    return store.engine


@pytest.fixture
async def unretrieved() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop's exception handler was told (a task's exception nobody
    retrieved is reported there when the task is collected)."""
    loop = asyncio.get_running_loop()
    told: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: told.append(context))
    yield told
    loop.set_exception_handler(None)


@pytest.fixture
async def pollers(engine: AsyncEngine) -> AsyncIterator[Callable[[], FeedPoller]]:
    made: list[FeedPoller] = []

    def make() -> FeedPoller:
        poller = FeedPoller(FeedRegistry(engine), SETTINGS, uow=UnitOfWork(engine))
        poller.lease_s, poller.renew_s = 0.8, 0.2  # seconds, not the production 15 and 4
        made.append(poller)
        return poller

    yield make
    for poller in made:
        await poller.aclose()


async def feed_row(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(FEEDS).where(FEEDS.c.feed_id == "team-cal"))).one()


async def queued(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(OUTBOX)) or 0)


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> float:
    """Seconds until `check` holds."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < timeout_s, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - began


async def test_a_database_error_while_applying_is_reported_and_retried_on_schedule(
    engine: AsyncEngine,
    pollers: Callable[[], FeedPoller],
    monkeypatch: pytest.MonkeyPatch,
    unretrieved: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_insert = Commands.add
    failing = True

    async def insert_or_fail(*args: Any, **kwargs: Any) -> Any:
        if failing:  # a database error in the apply step, its parameters holding a secret
            raise sa.exc.OperationalError(
                "INSERT INTO outbox ...", {"url": SECRET_URL}, Exception("deadlock detected")
            )
        return await real_insert(*args, **kwargs)

    monkeypatch.setattr(Commands, "add", insert_or_fail)
    poller = pollers()
    running = asyncio.create_task(poller.run())
    try:

        async def failed_twice() -> bool:
            return int((await feed_row(engine)).failures) >= 2

        # Retried after 0.15-0.3 s then 0.3-0.6 s (the interval, doubled): long before the
        # lease (0.8 s here) would have let anyone poll it again.
        await until(failed_twice, 5.0, "two failures recorded")
        row = await feed_row(engine)
        assert row.last_status == "failed"
        assert row.last_error == "database error: Exception: deadlock detected"
        assert await queued(engine) == 0  # nothing half-written
        assert "private-9f8e7d6c5b4a" not in caplog.text  # the statement's parameters
        assert "poll failed: database error: Exception: deadlock detected" in caplog.text

        failing = False

        async def recovered() -> bool:
            return (await feed_row(engine)).last_status in ("ok", "unchanged")

        await until(recovered, 5.0, "the feed recovered")
        row = await feed_row(engine)
        assert (row.failures, row.last_error, row.occurrences) == (0, None, 2)
        assert await queued(engine) == 2  # both meetings, once
        assert poller.stats.fetches["failed"] >= 2
    finally:
        await poller.stop()
        await asyncio.wait_for(running, 10)
    gc.collect()  # an unretrieved task exception is reported when its task is collected
    await asyncio.sleep(0)
    assert unretrieved == []
    assert "Task exception was never retrieved" not in caplog.text


async def test_a_running_poll_keeps_its_claim(
    engine: AsyncEngine, pollers: Callable[[], FeedPoller], server: FeedServer
) -> None:
    poller, other = pollers(), pollers()
    [claim] = await poller.registry.claim_due(1, poller.lease_s)
    server.hold()
    polling = asyncio.create_task(poller.poll(claim))
    await asyncio.to_thread(server.wait_held)
    for _ in range(8):  # 1.6 s: twice the lease
        await asyncio.sleep(0.2)
        assert await other.registry.claim_due(1, other.lease_s) == []  # renewed: not due
    server.release()
    await asyncio.wait_for(polling, 10)
    assert poller.stats.fetches["ok"] == 1
    assert await queued(engine) == 2


async def test_a_poller_that_dies_mid_poll_holds_its_feed_for_one_lease(
    engine: AsyncEngine, pollers: Callable[[], FeedPoller], server: FeedServer
) -> None:
    dying, survivor = pollers(), pollers()
    [claim] = await dying.registry.claim_due(1, dying.lease_s)
    server.hold()
    polling = asyncio.create_task(dying.poll(claim))
    await asyncio.to_thread(server.wait_held)
    polling.cancel()  # it dies: no renewal, no write from it any more
    server.release()
    with pytest.raises(asyncio.CancelledError):
        await polling
    died = time.monotonic()
    running = asyncio.create_task(survivor.run())
    try:

        async def taken() -> bool:
            return (await feed_row(engine)).last_status == "ok"

        await until(taken, 5.0, "the survivor took the feed")
        assert time.monotonic() - died < dying.lease_s + 2.0
        assert await queued(engine) == 2
    finally:
        await survivor.stop()
        await asyncio.wait_for(running, 10)


async def test_a_poll_whose_claim_was_lost_writes_nothing(
    engine: AsyncEngine, pollers: Callable[[], FeedPoller], server: FeedServer
) -> None:
    stalled, other = pollers(), pollers()
    stalled.renew_s = 3600.0  # its renewals never come (a stalled process)
    [claim] = await stalled.registry.claim_due(1, stalled.lease_s)
    server.hold()
    polling = asyncio.create_task(stalled.poll(claim))
    await asyncio.to_thread(server.wait_held)
    await asyncio.sleep(stalled.lease_s + 0.1)
    [taken] = await other.registry.claim_due(1, other.lease_s)  # the lease ran out
    server.release()
    await asyncio.wait_for(polling, 10)
    assert stalled.stats.fetches == {"superseded": 1}
    assert await queued(engine) == 0
    row = await feed_row(engine)
    assert (row.last_status, row.next_fetch_at) == (None, taken.until)  # the other's claim
