"""The mass-cancel guard end to end, on SQLite and PostgreSQL: a feed served over real HTTP
(tests/support/feeds.py), the service's poller and dispatcher, the UCaaS sandbox.

A feed that comes back empty has its cancels held for approval (the meetings stay in
UCaaS, the feed shows as held, the same empty body again holds nothing more); `approve`
lets them run, `deny` drops them and the meetings stay, and a feed restored before anyone
decided makes them moot: nothing is cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.app.bootstrap import Service, bootstrap
from service.calendar.holds import MOOT
from service.devtools.sample_commands import email_of, event, onboarding
from service.domain.feeds import Feed
from service.observability import metrics
from service.outbox.tables import FEEDS, OUTBOX
from service.settings import CalendarSettings
from service.views import Operations
from tests.integration.conftest import service_settings
from tests.support.feeds import FeedServer, vcalendar, vevent
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import TenantInSandbox

TENANT = "CRM-GUARD"
ORGANISER = email_of(TENANT, "E0000")
FEED_ID = "lena-cal"
REASON = f"approval: feed {FEED_ID} would cancel 4 of 4 upcoming meetings"


def day(n: int) -> datetime:
    return datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=n)


def full() -> bytes:
    return vcalendar(
        *(
            vevent(f"m{n}@team.example", day(n), f"Meeting {n}", organizer=ORGANISER)
            for n in range(1, 5)
        )
    )


def empty(name: str = "Test calendar") -> bytes:
    return vcalendar(name=name)


@dataclass
class World:
    service: Service
    sandbox: SandboxAdmin
    feed: FeedServer

    @property
    def ops(self) -> Operations:
        return Operations(self.service.engine, self.service.store, self.service.settings)

    async def cycle(self) -> None:
        """Poll the feed now, then dispatch until the outbox is quiet."""
        async with self.service.engine.begin() as conn:
            await conn.execute(FEEDS.update().values(next_fetch_at=datetime.now(UTC)))
        await self.service.poller.poll_all_now()
        await self.service.dispatcher.run_until_idle(idle_s=0.1)

    def meetings(self) -> tuple[int, int]:
        """The tenant's meetings in UCaaS: (live, cancelled)."""
        found = TenantInSandbox.of(self.sandbox.state(), TENANT).meetings
        gone = sum(1 for m in found if m["cancelled_at"] is not None)
        return len(found) - gone, gone

    async def cancels(self) -> list[tuple[str, str | None]]:
        """The cancel_meeting rows: status and hold reason."""
        async with self.service.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(OUTBOX.c.status, OUTBOX.c.hold_reason)
                .where(OUTBOX.c.kind == "cancel_meeting")
                .order_by(OUTBOX.c.id)
            )
            return [(str(status), reason) for status, reason in rows]

    async def feeds(self) -> dict[str, int]:
        return (await self.ops.status(with_lag=False)).feeds


@pytest.fixture
async def world(database_url: str, sandbox: SandboxAdmin) -> AsyncIterator[World]:
    """The tenant and its organiser in UCaaS; the organiser's feed with four meetings,
    polled and scheduled."""
    settings = service_settings(database_url, sandbox)
    settings.calendar = CalendarSettings(jitter=0.0, allow_private_addresses=True)
    service = await bootstrap(settings, migrate=True)
    server = FeedServer(path="/lena.ics")
    try:
        assert await service.uow.accept(event(), onboarding(TENANT, 1))
        await service.dispatcher.run_until_idle(idle_s=0.1)  # the organiser first
        server.publish(full(), validators=False)  # every poll a 200 with the whole body
        feed = Feed(feed_id=FEED_ID, url=server.url, organizer_email=ORGANISER, tenant=TENANT)
        await service.poller.registry.register_all([feed], source="config")
        found = World(service, sandbox, server)
        await found.cycle()
        assert found.meetings() == (4, 0)
        yield found
    finally:
        server.close()
        await service.aclose()


async def empty_and_held(world: World) -> None:
    """The feed comes back empty: its four cancels are held, the meetings stay."""
    held_before = metrics.FEED_VERSIONS_HELD._value.get()
    world.feed.publish(empty(), validators=False)
    await world.cycle()
    assert await world.cancels() == [("held", REASON)] * 4
    assert world.meetings() == (4, 0)
    assert [c.hold_reason for c in await world.ops.held()] == [REASON] * 4
    [view] = await world.ops.feeds()
    assert view.held == REASON and view.last_status == "ok"
    status = await world.ops.status(with_lag=False)
    assert status.feeds == {"held": 1} and status.held_for_approval == 4
    assert metrics.FEED_VERSIONS_HELD._value.get() == held_before + 1
    assert world.service.poller.stats.held == 1


async def test_an_emptied_feed_holds_its_cancels_until_approved(world: World) -> None:
    await empty_and_held(world)
    stats = world.service.poller.stats
    parses = stats.parses
    await world.cycle()  # the same empty body again: not parsed, nothing more held
    assert stats.parses == parses
    assert await world.cancels() == [("held", REASON)] * 4
    world.feed.publish(empty("Renamed calendar"), validators=False)  # another empty version
    await world.cycle()
    assert stats.parses == parses + 1
    assert await world.cancels() == [("held", REASON)] * 4  # no second batch

    assert await world.ops.approve(feed="another-feed") == 0
    assert await world.ops.approve(feed=FEED_ID) == 4
    await world.service.dispatcher.run_until_idle(idle_s=0.1)
    assert world.meetings() == (0, 4)
    assert [status for status, _ in await world.cancels()] == ["done"] * 4
    assert await world.feeds() == {"ok": 1}

    # The approval is folded into the feed's state: the meetings, back in the feed, are
    # scheduled again, and nothing is held or cancelled twice.
    world.feed.publish(full(), validators=False)
    await world.cycle()
    assert world.meetings() == (4, 4)
    assert len(await world.cancels()) == 4


async def test_denied_cancels_leave_the_meetings(world: World) -> None:
    await empty_and_held(world)
    assert await world.ops.deny(feed=FEED_ID) == 4
    await world.service.dispatcher.run_until_idle(idle_s=0.1)
    assert world.meetings() == (4, 0)
    assert await world.cancels() == [("dropped", "denied")] * 4
    assert await world.ops.held() == []
    assert await world.feeds() == {"ok": 1}

    world.feed.publish(empty("Still empty"), validators=False)  # the feed stays wrong
    await world.cycle()
    assert len(await world.cancels()) == 4  # the operator is not asked again
    assert world.meetings() == (4, 0)


async def test_a_restored_feed_leaves_nothing_to_cancel(world: World) -> None:
    await empty_and_held(world)
    world.feed.publish(full(), validators=False)
    await world.cycle()
    assert await world.cancels() == [("dropped", MOOT)] * 4
    assert await world.ops.held() == []
    assert await world.feeds() == {"ok": 1}
    assert world.meetings() == (4, 0)
    assert not any(k.startswith("DELETE /meetings") for k in world.sandbox.calls()["calls"])


async def test_an_everyday_change_is_obeyed(world: World) -> None:
    body = vcalendar(
        *(
            vevent(f"m{n}@team.example", day(n), f"Meeting {n}", organizer=ORGANISER)
            for n in (1, 2, 3)  # the fourth is gone
        ),
        vevent("m5@team.example", day(6), "Meeting 5", organizer=ORGANISER),
    )
    world.feed.publish(body, validators=False)
    await world.cycle()
    assert await world.cancels() == [("done", None)]
    assert world.meetings() == (4, 1)
    assert await world.ops.held() == []
