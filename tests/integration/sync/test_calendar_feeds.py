"""Calendar feeds on SQLite and PostgreSQL: the registry (feeds file, register and remove,
leased claims, failure backoff) and the poller end to end without the UCaaS API, and intake
of calendar.feed.registered / calendar.feed.removed CloudEvents.

The poller fetches with its own FeedFetcher (built from its settings, loopback allowed)
over real HTTP from a local calendar host (tests/support/feeds.py): one feed per path, with
an ETag and Last-Modified and 304s unless published without them, failures on demand, and
every request recorded.

The clock is fixed (the poller's, the registry's and intake's `utcnow`), so the fixtures'
October 2026 dates are always ahead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Envelope, Record, parse
from service.calendar import poller as poller_module
from service.calendar import registry as registry_module
from service.calendar.poller import FeedPoller
from service.calendar.registry import FeedFileError, FeedRegistry, load_feeds_file
from service.calendar.translate import FeedState
from service.domain.feeds import Feed, feed_entity
from service.intake import shell as intake_module
from service.intake.licences import LicencePolicy
from service.intake.shell import Intake
from service.observability import metrics as metrics_module
from service.outbox.store import OutboxStore
from service.outbox.tables import FEEDS, INBOX, OUTBOX
from service.outbox.unit_of_work import UnitOfWork
from service.settings import CalendarSettings, IntakeSettings
from service.view_models import FeedView
from tests.support.feeds import CALENDAR, FeedServer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ics"
START = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
HOST = "https://calendar.example.com"  # for the registry's tests, which never fetch
ORGANIZER = "lena.fischer@team.example"
_ids = itertools.count(1)


def ics(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --- a fixed clock -------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    for module in (poller_module, registry_module, intake_module):
        monkeypatch.setattr(module, "utcnow", fixed)
    return fixed


# --- a calendar host on loopback ----------------------------------------------------------


@pytest.fixture
def feed_host() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


SETTINGS = CalendarSettings(
    interval_s=300.0,
    jitter=0.0,
    horizon_days=30.0,
    concurrency=4,
    retry_cap_s=3600.0,
    allow_private_addresses=True,
)


@pytest.fixture
async def engine(store: OutboxStore) -> AsyncEngine:
    return store.engine


@pytest.fixture
async def poller(engine: AsyncEngine, clock: Clock) -> AsyncIterator[FeedPoller]:
    # its own fetcher, as the service builds it: allow_private_addresses lets it reach
    # the calendar host on loopback
    polling = FeedPoller(FeedRegistry(engine), SETTINGS, uow=UnitOfWork(engine))
    yield polling
    await polling.aclose()


def team_feed(url: str, feed_id: str = "team-cal", **changes: Any) -> Feed:
    """A team calendar: every event in it is scheduled, whoever organises it (these tests
    are about reading and planning feeds; whose events a person's feed schedules is
    test_calendar_ownership.py's)."""
    values = {
        "feed_id": feed_id,
        "url": url,
        "organizer_email": ORGANIZER,
        "tenant": "acme",
        "schedule_attended": True,
    }
    return Feed(**(values | changes))


async def commands(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id))).all()
    return [(r.kind, r.entity.removeprefix("meeting:")) for r in rows]


async def feed_row(engine: AsyncEngine, feed_id: str = "team-cal") -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(FEEDS).where(FEEDS.c.feed_id == feed_id))).one()


async def feed_state(engine: AsyncEngine, feed_id: str = "team-cal") -> FeedState | None:
    entity = feed_entity(feed_id)
    async with UnitOfWork(engine).transaction() as tx:
        state = (await tx.states.load({entity: FeedState})).get(entity)
    assert state is None or isinstance(state, FeedState)
    return state


def as_utc(value: datetime) -> datetime:
    """SQLite hands times back naive (they are UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TEAM_V1 = [
    "team-cal:weekly-sync@team.example@20261005T080000Z",
    "team-cal:retro@team.example",
    "team-cal:weekly-sync@team.example@20261012T080000Z",
    "team-cal:offsite-prep@team.example",
    "team-cal:weekly-sync@team.example@20261019T080000Z",
    "team-cal:all-hands@team.example",
    "team-cal:weekly-sync@team.example@20261026T090000Z",
]
TEAM_V1_TO_V2 = [
    ("cancel_meeting", "team-cal:all-hands@team.example"),
    ("cancel_meeting", "team-cal:offsite-prep@team.example"),
    ("cancel_meeting", "team-cal:weekly-sync@team.example@20261012T080000Z"),
    ("schedule_meeting", "team-cal:hiring-panel@team.example"),
    ("update_meeting", "team-cal:retro@team.example"),
    ("update_meeting", "team-cal:weekly-sync@team.example@20261019T080000Z"),
    ("update_meeting", "team-cal:weekly-sync@team.example@20261026T090000Z"),
]


# --- the feeds file ------------------------------------------------------------------------


def test_load_feeds_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(
        """
[[feeds]]
id = "lena-primary"
url = "webcal://calendar.example.com/lena.ics"
organizer = "lena.fischer@team.example"
tenant = "acme"

[[feeds]]
id = "rooms"
url = "https://calendar.example.com/rooms.ics"
organizer = "rooms@team.example"
tenant = "acme"
interval_s = 900
""",
        encoding="utf-8",
    )
    assert load_feeds_file(path) == [
        Feed(
            feed_id="lena-primary",
            url="webcal://calendar.example.com/lena.ics",
            organizer_email="lena.fischer@team.example",
            tenant="acme",
        ),
        Feed(
            feed_id="rooms",
            url="https://calendar.example.com/rooms.ics",
            organizer_email="rooms@team.example",
            tenant="acme",
            interval_s=900.0,
        ),
    ]
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert load_feeds_file(empty) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[feeds]]\nid = "a"\nurl = "https://x/a.ics"\n', "Field required"),
        ("[[feeds]\nid = 1\n", "Expected ']]'"),
        (
            '[[feeds]]\nid = "a"\nurl = "https://x"\norganizer = "a@b.c"\ntenant = "t"\n'
            'colour = "red"\n',
            "Extra inputs are not permitted",
        ),
        (
            '[[feeds]]\nid = "a"\nurl = "https://x"\norganizer = "a@b.c"\ntenant = "t"\n'
            "interval_s = -5\n",
            "greater than 0",
        ),
    ],
    ids=["missing-field", "invalid-toml", "unknown-key", "bad-interval"],
)
def test_a_bad_feeds_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FeedFileError) as caught:
        load_feeds_file(path)
    assert str(caught.value).startswith(f"feeds file {path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_feeds_file(tmp_path: Path) -> None:
    with pytest.raises(FeedFileError, match="No such file or directory"):
        load_feeds_file(tmp_path / "nowhere.toml")


# --- the registry --------------------------------------------------------------------------


async def test_register_change_and_remove(engine: AsyncEngine, clock: Clock) -> None:
    registry = FeedRegistry(engine)
    await registry.register_all([team_feed(f"{HOST}/team.ics")], source="config")
    [row] = await registry.rows()
    assert (row.feed_id, row.url, row.removed, row.source) == (
        "team-cal",
        f"{HOST}/team.ics",
        False,
        "config",
    )
    assert as_utc(row.next_fetch_at) == START  # fetched soon
    async with engine.begin() as conn:
        await registry_module.fetched(
            conn,
            team_feed(f"{HOST}/team.ics"),
            status="ok",
            etag='"v1"',
            last_modified=None,
            occurrences=3,
            next_in_s=300,
            now=START,
            body_sha256="ab" * 32,
        )
    assert (await feed_row(engine)).body_sha256 == "ab" * 32
    clock.advance(minutes=1)
    changed = team_feed(f"{HOST}/team-2.ics", organizer_email="Lena.Fischer@Team.Example")
    await registry.register_all([changed], source="config")
    [row] = await registry.rows()
    assert (row.url, row.organizer_email, row.etag, row.body_sha256, row.occurrences) == (
        f"{HOST}/team-2.ics",
        "lena.fischer@team.example",  # lower case
        None,  # validators of the old URL are not sent to the new one
        None,  # nor is its body taken for the new one's
        3,  # the rest of the fetch history is kept
    )
    assert as_utc(row.next_fetch_at) == clock.now

    async with engine.begin() as conn:
        removed = await registry_module.remove(conn, "team-cal", clock.now)
        assert await registry_module.remove(conn, "no-such-feed", clock.now) is None
    assert removed == team_feed(f"{HOST}/team-2.ics")
    assert (await registry.rows())[0].removed
    assert await registry.claim_due(10, 60) == []  # a removed feed is not fetched
    assert await registry.next_due() is None

    await registry.register_all([changed], source="event")  # registered again
    assert not (await registry.rows())[0].removed
    assert [c.feed.feed_id for c in await registry.claim_due(10, 60)] == ["team-cal"]


async def test_claims_are_leased(engine: AsyncEngine, clock: Clock) -> None:
    registry = FeedRegistry(engine)
    feeds = [team_feed(f"{HOST}/{n}.ics", feed_id=f"feed-{n}") for n in range(3)]
    await registry.register_all(feeds, source="config")
    async with engine.begin() as conn:
        await registry_module.fetched(
            conn,
            feeds[0],
            status="ok",
            etag='"e0"',
            last_modified="Wed, 30 Sep 2026 00:00:00 GMT",
            occurrences=1,
            next_in_s=0,
            now=clock.now,
        )
    first = await registry.claim_due(2, lease_s=60)
    second = await registry.claim_due(2, lease_s=60)
    assert len(first) == 2 and len(second) == 1  # the limit, then what is left
    claimed = {c.feed.feed_id: (c.etag, c.last_modified) for c in first + second}
    assert claimed == {
        "feed-0": ('"e0"', "Wed, 30 Sep 2026 00:00:00 GMT"),
        "feed-1": (None, None),
        "feed-2": (None, None),
    }
    assert await registry.claim_due(10, lease_s=60) == []  # all leased
    assert as_utc(await registry.next_due() or START) == START + timedelta(seconds=60)
    clock.advance(seconds=59)
    assert await registry.claim_due(10, lease_s=60) == []
    clock.advance(seconds=1)  # the lease has run out: due again (a poller died)
    assert len(await registry.claim_due(10, lease_s=60)) == 3


async def test_two_claimers_get_disjoint_feeds(engine: AsyncEngine, clock: Clock) -> None:
    registry = FeedRegistry(engine)
    feeds = [team_feed(f"{HOST}/{n}.ics", feed_id=f"feed-{n:02d}") for n in range(24)]
    await registry.register_all(feeds, source="config")
    others = [FeedRegistry(engine) for _ in range(6)]  # six pollers at once
    rounds = await asyncio.gather(*(r.claim_due(3, lease_s=60) for r in [registry, *others]))
    claimed = [c.feed.feed_id for found in rounds for c in found]
    assert len(claimed) == len(set(claimed)) == 21  # nobody got a feed another got
    rest = await registry.claim_due(10, lease_s=60)
    assert sorted(claimed + [c.feed.feed_id for c in rest]) == [f.feed_id for f in feeds]


async def test_failures_back_off_and_success_resets(engine: AsyncEngine, clock: Clock) -> None:
    registry = FeedRegistry(engine)
    feed = team_feed(f"{HOST}/team.ics")
    await registry.register_all([feed], source="config")
    waits = []
    for failures in range(1, 5):
        wait = await registry.failed(feed, "HTTP 500 from calendar.example.com", 3600, 100)
        base = 100 * 2 ** (failures - 1)
        assert base / 2 <= wait <= base  # grows (with jitter in its upper half)
        row = await feed_row(engine)
        assert (row.last_status, row.last_error, row.failures) == (
            "failed",
            "HTTP 500 from calendar.example.com",
            failures,
        )
        assert as_utc(row.next_fetch_at) == clock.now + timedelta(seconds=wait)
        waits.append(wait)
    assert waits == sorted(waits)
    for _ in range(10):
        capped = await registry.failed(feed, "still down", 3600, 100)
    assert 1800 <= capped <= 3600  # at most the cap
    async with engine.begin() as conn:
        await registry_module.fetched(
            conn,
            feed,
            status="ok",
            etag=None,
            last_modified=None,
            occurrences=0,
            next_in_s=300,
            now=clock.now,
        )
    row = await feed_row(engine)
    assert (row.last_status, row.last_error, row.failures) == ("ok", None, 0)
    first_again = await registry.failed(feed, "down again", 3600, 100)
    assert 50 <= first_again <= 100  # from the start again


# --- the poller ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """What the calendar host answers instead of the feed."""

    status: int
    body: bytes
    content_type: str = CALENDAR


async def register(engine: AsyncEngine, *feeds: Feed) -> None:
    await FeedRegistry(engine).register_all(list(feeds), source="config")


async def test_first_poll_schedules_and_saves_the_state(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    await register(engine, team_feed(feed_host.publish(ics("team_v1.ics"), path="/team.ics")))
    await poller.poll_all_now()
    assert await commands(engine) == [("schedule_meeting", key) for key in TEAM_V1]
    async with engine.connect() as conn:
        payloads = (await conn.execute(sa.select(OUTBOX.c.payload))).scalars().all()
        inbox = (await conn.execute(sa.select(INBOX))).one()
    first = payloads[0]
    assert first["organizer_email"] == ORGANIZER and first["tenant"] == "acme"
    assert first["meeting"]["start_time"] == "2026-10-05T08:00:00Z"
    assert first["meeting"]["invitees"] == ["bob.meyer@team.example", "carol.wagner@team.example"]
    assert (inbox.type, inbox.subject, inbox.commands) == ("calendar.feed.polled", "team-cal", 7)
    state = await feed_state(engine)
    assert state is not None and list(state.meetings) == TEAM_V1
    row = await feed_row(engine)
    assert (row.last_status, row.failures, row.occurrences) == ("ok", 0, 8)
    assert row.etag and row.last_modified
    assert as_utc(row.next_fetch_at) == START + timedelta(seconds=300)
    assert poller.stats.fetches["ok"] == 1 and poller.stats.commands == 7


async def test_unchanged_feed_queues_nothing(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    """A host without validators sends the same body: not parsed again (its hash is the
    last one's), no change; expanded again once the window has moved on."""
    url = feed_host.publish(ics("team_v1.ics"), path="/team.ics", validators=False)
    await register(engine, team_feed(url))
    await poller.poll_all_now()
    before = await commands(engine)
    digest = (await feed_row(engine)).body_sha256
    assert digest is not None and len(digest) == 64
    assert poller.stats.parses == 1
    clock.advance(seconds=301)
    await poller.poll_all_now()
    assert await commands(engine) == before
    assert [r.status for r in feed_host.seen] == [200, 200]
    assert poller.stats.parses == 1  # the same body: not parsed
    row = await feed_row(engine)
    assert (row.last_status, row.occurrences, row.body_sha256) == ("unchanged", 8, digest)
    assert poller.stats.fetches == {"ok": 1, "unchanged": 1}

    clock.now = START + timedelta(seconds=poller_module.REEXPAND_S)  # the window moved on
    await poller.poll_all_now()
    assert poller.stats.parses == 2  # the same body, expanded again
    assert (await feed_row(engine)).last_status == "ok"
    assert await commands(engine) == before

    feed_host.publish(ics("team_v2.ics"), path="/team.ics", validators=False)
    clock.advance(seconds=301)
    await poller.poll_all_now()  # another body: parsed
    assert poller.stats.parses == 3
    assert sorted((await commands(engine))[7:]) == TEAM_V1_TO_V2
    assert (await feed_row(engine)).body_sha256 != digest


async def test_not_modified_leaves_everything_as_it_was(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    await register(engine, team_feed(feed_host.publish(ics("team_v1.ics"), path="/team.ics")))
    await poller.poll_all_now()
    state = await feed_state(engine)
    etag = (await feed_row(engine)).etag
    clock.advance(seconds=301)
    await poller.poll_all_now()
    assert [(r.if_none_match, r.status) for r in feed_host.seen] == [(None, 200), (etag, 304)]
    assert poller.stats.fetches["unchanged"] == 1
    row = await feed_row(engine)
    assert (row.last_status, row.etag, row.occurrences) == ("unchanged", etag, 8)
    assert as_utc(row.next_fetch_at) == clock.now + timedelta(seconds=300)
    assert len(await commands(engine)) == 7
    assert await feed_state(engine) == state


async def test_a_changed_feed_updates_cancels_and_schedules(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    url = feed_host.publish(ics("team_v1.ics"), path="/team.ics")
    await register(engine, team_feed(url))
    await poller.poll_all_now()
    feed_host.publish(ics("team_v2.ics"), path="/team.ics")
    clock.advance(seconds=301)
    await poller.poll_all_now()
    assert sorted((await commands(engine))[7:]) == TEAM_V1_TO_V2
    state = await feed_state(engine)
    assert state is not None
    assert "team-cal:hiring-panel@team.example" in state.meetings
    assert "team-cal:offsite-prep@team.example" not in state.meetings


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        (
            Served(500, b"<h1>Server error</h1>", "text/html"),
            "HTTP 500 from 127.0.0.1",  # the host, as the feed's URL names it
        ),
        (
            Served(200, ics("login_page.html"), "text/html"),
            "not iCalendar: the body looks like HTML",
        ),
        (Served(200, ics("truncated.ics")), "truncated: no END:VCALENDAR at the end"),
    ],
    ids=["http-500", "html", "truncated"],
)
async def test_a_failing_feed_cancels_nothing_and_recovers(
    engine: AsyncEngine,
    poller: FeedPoller,
    feed_host: FeedServer,
    clock: Clock,
    served: Served,
    reason: str,
) -> None:
    url = feed_host.publish(ics("team_v1.ics"), path="/team.ics")
    other = feed_host.publish(ics("overrides_and_exceptions.ics"), path="/other.ics")
    await register(engine, team_feed(url), team_feed(other, feed_id="other-cal"))
    await poller.poll_all_now()
    queued = len(await commands(engine))
    state = await feed_state(engine)

    feed_host.fail(served.status, served.body, served.content_type, path="/team.ics")
    feed_host.publish(ics("google_export.ics"), path="/other.ics")  # the other feed goes on
    clock.advance(seconds=301)
    await poller.poll_all_now()
    row = await feed_row(engine)
    assert (row.last_status, row.failures) == ("failed", 1)
    assert reason in row.last_error
    assert poller.stats.last_errors["team-cal"] == row.last_error
    assert await feed_state(engine) == state  # its meetings stay as they were
    new = [(k, e) for k, e in (await commands(engine))[queued:]]
    assert new and all(e.startswith("other-cal:") for _, e in new)  # none for the failing feed
    assert (await feed_row(engine, "other-cal")).last_status == "ok"

    # Still failing when due again: the wait grows; nothing is queued for it.
    wait = as_utc(row.next_fetch_at) - clock.now
    assert timedelta(seconds=150) <= wait <= timedelta(seconds=300)
    clock.advance(seconds=wait.total_seconds() + 1)
    await poller.poll_all_now()
    assert (await feed_row(engine)).failures == 2
    assert not any(e.startswith("team-cal:") for _, e in (await commands(engine))[queued:])

    # Recovered, with the next version: the diff is against the state saved before.
    feed_host.publish(ics("team_v2.ics"), path="/team.ics")
    clock.now = as_utc((await feed_row(engine)).next_fetch_at) + timedelta(seconds=1)
    await poller.poll_all_now()
    row = await feed_row(engine)
    assert (row.last_status, row.failures, row.last_error) == ("ok", 0, None)
    mine = [(k, e) for k, e in (await commands(engine))[queued:] if e.startswith("team-cal:")]
    assert sorted(mine) == TEAM_V1_TO_V2


ODD_SKIPPED = [
    {"uid": "no-start@odd.example", "reason": "no DTSTART"},
    {
        "uid": "bad-byday@odd.example",
        "reason": "RRULE: Expected weekday abbreviation, got: XX",
    },
    {
        "uid": "unknown-zone@odd.example",
        "reason": "DTSTART: unknown time zone 'Customized Time Zone'"
        " (no usable VTIMEZONE, no known name)",
    },
    {"uid": "bad-end@odd.example", "reason": "DTEND: Wrong datetime format: 20261032T100000Z"},
    {
        "uid": "every-five-minutes@odd.example",
        "reason": "RRULE FREQ=MINUTELY repeats too fast for meetings",
    },
]


async def test_broken_events_among_good_ones_are_skipped_and_the_good_ones_scheduled(
    engine: AsyncEngine,
    poller: FeedPoller,
    feed_host: FeedServer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real-world shaped feed with five unusable events among good ones (LF endings,
    two RRULEs, a duplicate UID, a zone without VTIMEZONE): the good ones are scheduled,
    the bad ones skipped, and the feed's row, the log and the metric say which and why."""
    skipped_before = metrics_module.FEED_EVENTS_SKIPPED.labels("no_dtstart")._value.get()
    url = feed_host.publish(ics("real/odd_good_and_broken_events.ics"), path="/odd.ics")
    await register(engine, team_feed(url))
    with caplog.at_level(logging.WARNING, logger="ucaas_sync.calendar"):
        await poller.poll_all_now()
    row = await feed_row(engine)
    assert (row.last_status, row.failures, row.last_error) == ("ok", 0, None)
    assert (row.occurrences, row.skipped_events, row.skipped_sample) == (15, 5, ODD_SKIPPED)
    queued = await commands(engine)
    assert [kind for kind, _ in queued] == ["schedule_meeting"] * 13
    meetings = {entity.removeprefix("team-cal:") for _, entity in queued}
    assert "standup@odd.example@20261005T070000Z" in meetings  # the good ones
    assert "standup@odd.example@20261007T070000Z" not in meetings  # a cancelled instance
    assert {m.split("@")[0] for m in meetings}.isdisjoint(
        {s["uid"].split("@")[0] for s in ODD_SKIPPED}
    )
    [line] = [r.getMessage() for r in caplog.records if "skipped as unusable" in r.getMessage()]
    assert line.startswith("feed team-cal: 5 event(s) skipped as unusable, their meetings kept:")
    skipped_after = metrics_module.FEED_EVENTS_SKIPPED.labels("no_dtstart")._value.get()
    assert skipped_after - skipped_before == 1
    async with engine.connect() as conn:
        views = [
            FeedView.model_validate(dict(r._mapping)) for r in await conn.execute(FEEDS.select())
        ]
    assert [(v.skipped_events, [s.uid for s in v.skipped_sample]) for v in views] == [
        (5, [s["uid"] for s in ODD_SKIPPED])
    ]

    # The same feed, no longer with broken events: the counts go back to nothing.
    feed_host.publish(ics("team_v1.ics"), path="/odd.ics")
    clock.advance(seconds=301)
    await poller.poll_all_now()
    row = await feed_row(engine)
    assert (row.skipped_events, row.skipped_sample) == (0, [])


async def test_a_meeting_whose_event_becomes_unusable_is_neither_updated_nor_cancelled(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    """team_v1, then team_v2 with the weekly series' RRULE broken: every change but the
    series' is made (its instances are neither cancelled nor updated), and the series'
    meetings stay in the state; once fixed, its changes are made."""
    url = feed_host.publish(ics("team_v1.ics"), path="/team.ics")
    await register(engine, team_feed(url))
    await poller.poll_all_now()
    assert len(await commands(engine)) == 7
    v1_state = await feed_state(engine)
    assert v1_state is not None

    broken = ics("team_v2.ics").replace(b"RRULE:FREQ=WEEKLY;COUNT=4", b"RRULE:FREQ=WEEKLY;BYDAY=XX")
    feed_host.publish(broken, path="/team.ics")
    clock.advance(seconds=301)
    await poller.poll_all_now()
    series = [(k, e) for k, e in TEAM_V1_TO_V2 if "weekly-sync@" in e]
    assert len(series) == 3  # what team_v2 asks of the series: one cancel, two updates
    assert sorted((await commands(engine))[7:]) == sorted(set(TEAM_V1_TO_V2) - set(series))
    row = await feed_row(engine)
    assert (row.last_status, row.skipped_events) == ("ok", 1)
    assert row.skipped_sample == [
        {
            "uid": "weekly-sync@team.example",
            "reason": "RRULE: Expected weekday abbreviation, got: XX",
        }
    ]
    state = await feed_state(engine)
    assert state is not None
    kept = {k: v for k, v in v1_state.meetings.items() if "weekly-sync@" in k}
    assert {k: v for k, v in state.meetings.items() if "weekly-sync@" in k} == kept

    feed_host.publish(ics("team_v2.ics"), path="/team.ics")  # fixed
    clock.advance(seconds=301)
    await poller.poll_all_now()
    assert sorted((await commands(engine))[11:]) == sorted(series)
    assert (await feed_row(engine)).skipped_events == 0


async def test_a_feed_of_100000_events_fails_in_bounded_time(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    one = "BEGIN:VEVENT\r\nUID:b{0}\r\nDTSTART:20261002T100000Z\r\nEND:VEVENT\r\n"
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bulk//EN\r\n"
        + "".join(one.format(i) for i in range(100_000))
        + "END:VCALENDAR\r\n"
    ).encode()
    assert len(body) < SETTINGS.max_bytes  # within the size cap: the count stops it
    await register(engine, team_feed(feed_host.publish(body, path="/bulk.ics")))
    started = asyncio.get_running_loop().time()
    await poller.poll_all_now()
    assert asyncio.get_running_loop().time() - started < 5.0
    row = await feed_row(engine)
    assert (row.last_status, row.last_error) == (
        "failed",
        "100000 events; at most 20000 are taken",
    )
    assert await commands(engine) == []


async def test_long_outlook_uids_fit_the_outbox(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock
) -> None:
    """A 150-character feed id (the most an event may give) with Outlook's 112-character
    UIDs: the meeting keys still fit the outbox's columns (PostgreSQL enforces them)."""
    feed_id = "tenant-acme/users/lena.fischer@team.example/calendars/" + "p" * 96
    assert len(feed_id) == 150
    url = feed_host.publish(ics("outlook_windows_tz.ics"), path="/outlook.ics")
    await register(engine, team_feed(url, feed_id=feed_id))
    await poller.poll_all_now()
    row = await feed_row(engine, feed_id)
    assert (row.last_status, row.last_error) == ("ok", None)
    queued = await commands(engine)
    assert len(queued) == 7  # the eight occurrences less the all-day holiday
    assert all(len(f"meeting:{entity}") <= 255 for _, entity in queued)
    assert len({entity for _, entity in queued}) == 7
    clock.advance(seconds=301)
    feed_host.publish(ics("outlook_windows_tz.ics"), path="/outlook.ics", validators=False)
    await poller.poll_all_now()  # the same keys again: no change
    assert len(await commands(engine)) == 7


# --- intake of calendar.feed.registered / calendar.feed.removed ----------------------------


def feed_event(type_: str, subject: str, data: dict[str, Any]) -> Envelope:
    document = {
        "specversion": "1.0",
        "id": f"feed-ev-{next(_ids)}",
        "source": "/calendars",
        "type": type_,
        "subject": subject,
        "data": data,
    }
    return parse(Record("calendar.events", 0, next(_ids), subject.encode(), orjson.dumps(document)))


@pytest.fixture
def intake(engine: AsyncEngine) -> Intake:
    return Intake(UnitOfWork(engine), LicencePolicy(), IntakeSettings())


async def test_registered_then_removed_by_events(
    engine: AsyncEngine, poller: FeedPoller, feed_host: FeedServer, clock: Clock, intake: Intake
) -> None:
    url = feed_host.publish(ics("team_v1.ics"), path="/lena.ics")
    [taken] = await intake.take(
        [
            feed_event(
                "calendar.feed.registered",
                "team-cal",
                {"url": url, "organizer_email": "Lena.Fischer@team.example", "tenant": "acme"},
            )
        ]
    )
    assert (taken.outcome, taken.commands, taken.note) == (
        "accepted",
        0,
        "feed registered: fetched soon",
    )
    row = await feed_row(engine)
    assert (row.url, row.organizer_email, row.source, row.removed) == (
        url,
        ORGANIZER,
        "event",
        False,
    )
    await poller.poll_all_now()
    assert [e for _, e in await commands(engine)] == TEAM_V1

    # Oct 12, 08:10: Oct 5 and the retro are over, the Oct 12 sync is running.
    clock.now = datetime(2026, 10, 12, 8, 10, tzinfo=UTC)
    [taken] = await intake.take(
        [feed_event("calendar.feed.removed", "team-cal", {})]  # only the id, as subject
    )
    assert (taken.outcome, taken.commands) == ("accepted", 4)
    assert taken.note == "feed removed: 4 meeting(s) cancelled"
    cancels = [(k, e) for k, e in (await commands(engine))[7:]]
    assert sorted(cancels) == [
        ("cancel_meeting", "team-cal:all-hands@team.example"),
        ("cancel_meeting", "team-cal:offsite-prep@team.example"),
        ("cancel_meeting", "team-cal:weekly-sync@team.example@20261019T080000Z"),
        ("cancel_meeting", "team-cal:weekly-sync@team.example@20261026T090000Z"),
    ]
    async with engine.connect() as conn:
        tenants = (await conn.execute(sa.select(OUTBOX.c.tenant).distinct())).scalars().all()
    assert tenants == ["acme"]  # the tenant it was registered with
    assert (await feed_row(engine)).removed
    state = await feed_state(engine)
    assert state is not None and state.meetings == {}

    clock.advance(hours=1)
    await poller.poll_all_now()  # a removed feed is not fetched any more
    assert len(feed_host.seen) == 1
    assert len(await commands(engine)) == 11


async def test_removing_an_unknown_feed_cancels_nothing(
    intake: Intake, engine: AsyncEngine
) -> None:
    [taken] = await intake.take([feed_event("calendar.feed.removed", "never-seen", {})])
    assert (taken.outcome, taken.commands) == ("accepted", 0)
    assert await commands(engine) == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"url": "http://[bad/x.ics", "organizer_email": "a@b.example", "tenant": "t"}, "URL"),
        ({"url": "ftp://x.example/a.ics", "organizer_email": "a@b.example", "tenant": "t"}, "ftp"),
        ({"url": "https://x.example/a.ics", "tenant": "t"}, "organizer_email"),
    ],
    ids=["broken-ipv6-host", "ftp", "no-organiser"],
)
async def test_an_invalid_registration_is_reported(
    intake: Intake, engine: AsyncEngine, data: dict[str, Any], reason: str
) -> None:
    """Refused as invalid (never an exception that would stop the batch)."""
    good = feed_event(
        "calendar.feed.registered",
        "good-cal",
        {"url": "https://x.example/good.ics", "organizer_email": "a@b.example", "tenant": "t"},
    )
    results = await intake.take([feed_event("calendar.feed.registered", "bad-cal", data), good])
    assert results[0].outcome == "invalid" and reason in (results[0].reason or "")
    assert results[1].outcome == "accepted"
    assert [r.feed_id for r in await FeedRegistry(engine).rows()] == ["good-cal"]
