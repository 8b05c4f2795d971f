"""Whose events a person's feed schedules, over real HTTP feeds, on SQLite and PostgreSQL:
what they organise (under their address or an alias, or with no ORGANIZER), not what they
only attend; and an event once per tenant, whichever feeds have it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calendar import owners, registry
from service.calendar.poller import FeedPoller
from service.domain.feeds import Feed
from service.observability import metrics
from service.outbox.tables import FEEDS
from tests.integration.sync import test_calendar_feeds
from tests.integration.sync.test_calendar_feeds import (
    START,
    Clock,
    commands,
    register,
)
from tests.support.feeds import FeedServer, vcalendar, vevent

# the fixtures of the feed tests
clock, engine = test_calendar_feeds.clock, test_calendar_feeds.engine
feed_host, poller = test_calendar_feeds.feed_host, test_calendar_feeds.poller

ANN, BOB, VENDOR = "ann@acme.example", "bob@acme.example", "sales@vendor.example"
SOON = START + timedelta(days=2, hours=9)


def hours(n: int) -> timedelta:
    return timedelta(hours=n)


def person_feed(feed_id: str, url: str, owner: str, **options: object) -> Feed:
    return Feed(feed_id=feed_id, url=url, organizer_email=owner, tenant="acme", **options)


def not_scheduled(reason: str) -> float:
    value = metrics.FEED_EVENTS_NOT_SCHEDULED.labels(reason)._value.get()
    return float(value)


async def test_only_what_the_owner_organises_becomes_a_meeting(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    body = vcalendar(
        vevent("own-1", SOON, "Team sync", organizer=ANN, attendees=[BOB]),
        vevent("own-2", SOON + timedelta(hours=2), "Focus time"),  # no ORGANIZER: hers
        vevent(
            "alias-1", SOON + timedelta(hours=3), "Board prep", organizer="ann.lee@acme.example"
        ),
        vevent(
            "pitch", SOON + timedelta(hours=4), "Vendor pitch", organizer=VENDOR, attendees=[ANN]
        ),
    )
    url = feed_host.publish(body, path="/ann.ics")
    attended_before = not_scheduled("attended")
    await register(engine, person_feed("ann", url, ANN, aliases=("ann.lee@acme.example",)))
    await poller.poll_all_now()
    queued = await commands(engine)
    assert sorted(entity.split(":")[1] for _, entity in queued) == ["alias-1", "own-1", "own-2"]
    assert {kind for kind, _ in queued} == {"schedule_meeting"}
    assert not_scheduled("attended") == attended_before + 1


async def test_a_feed_that_schedules_what_its_owner_attends(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    body = vcalendar(vevent("pitch", SOON, "Vendor pitch", organizer=VENDOR, attendees=[ANN]))
    url = feed_host.publish(body, path="/room.ics")
    await register(engine, person_feed("room", url, ANN, schedule_attended=True))
    await poller.poll_all_now()
    assert [kind for kind, _ in await commands(engine)] == ["schedule_meeting"]


async def test_colleagues_feeds_with_one_meeting_schedule_it_once(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    meeting = vevent("weekly", SOON, "Weekly", organizer=ANN, attendees=[BOB])
    ann = feed_host.publish(vcalendar(meeting), path="/ann.ics")
    bob = feed_host.publish(vcalendar(meeting), path="/bob.ics")
    await register(engine, person_feed("ann", ann, ANN), person_feed("bob", bob, BOB))
    await poller.poll_all_now()
    assert [(kind, entity.split(":")[0]) for kind, entity in await commands(engine)] == [
        ("schedule_meeting", "ann")
    ]


async def test_two_feeds_of_one_owner_schedule_an_event_once_and_hand_it_over(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    meeting = vevent("weekly", SOON, "Weekly", organizer=ANN)
    first = feed_host.publish(vcalendar(meeting), path="/ann-work.ics")
    second = feed_host.publish(vcalendar(meeting), path="/ann-copy.ics")
    await register(engine, person_feed("ann-work", first, ANN))
    await poller.poll_all_now()
    await register(engine, person_feed("ann-copy", second, ANN))
    await poller.poll_all_now()
    queued = await commands(engine)
    assert [(kind, entity.split(":")[0]) for kind, entity in queued] == [
        ("schedule_meeting", "ann-work")
    ]
    # the first feed drops the event: the second takes it over on its next poll
    feed_host.publish(
        vcalendar(vevent("other", SOON, "Other", organizer=ANN)), path="/ann-work.ics"
    )
    clock.advance(minutes=10)
    await poller.poll_all_now()
    clock.advance(minutes=10)
    await poller.poll_all_now()
    later = [(kind, entity.split(":")[0]) for kind, entity in (await commands(engine))[1:]]
    assert ("cancel_meeting", "ann-work") in later
    assert ("schedule_meeting", "ann-copy") in later
    assert later.count(("schedule_meeting", "ann-copy")) == 1


async def test_an_unchanged_answer_after_another_feed_let_go_does_not_hide_the_handover(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    """The race the test above can lose: the copy's 304, asked for before the first feed
    let go of the event and recorded after, must not put back the validators the letting
    go cleared, or the copy's next poll is a 304 again and nothing takes the event over."""
    meeting = vevent("weekly", SOON, "Weekly", organizer=ANN)
    work = person_feed("ann-work", feed_host.publish(vcalendar(meeting), path="/w.ics"), ANN)
    copy = person_feed("ann-copy", feed_host.publish(vcalendar(meeting), path="/c.ics"), ANN)
    await register(engine, work)
    await poller.poll_all_now()
    await register(engine, copy)
    await poller.poll_all_now()
    feed_host.publish(vcalendar(vevent("other", SOON, "Other", organizer=ANN)), path="/w.ics")
    async with engine.begin() as conn:
        etag = await conn.execute(sa.select(FEEDS.c.etag).where(FEEDS.c.feed_id == "ann-copy"))
        old = etag.scalar_one()
        assert old is not None
        await owners.let_go(conn, work)  # the first feed's poll: the event is gone from it
        await registry.fetched(  # then the copy's poll records its 304
            conn,
            copy,
            status="unchanged",
            etag=old,
            last_modified=None,
            occurrences=None,
            next_in_s=0.0,
            now=clock(),
        )
        row = (await conn.execute(sa.select(FEEDS).where(FEEDS.c.feed_id == "ann-copy"))).one()
    assert (row.etag, row.last_modified, row.body_sha256) == (None, None, None)
    clock.advance(minutes=10)
    await poller.poll_all_now()
    later = [(kind, entity.split(":")[0]) for kind, entity in (await commands(engine))[1:]]
    assert ("schedule_meeting", "ann-copy") in later
