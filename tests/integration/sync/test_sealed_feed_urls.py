"""Feed URLs at rest, on SQLite and PostgreSQL: registered sealed with the vault's key (a
private calendar's address is its password), opened to fetch, shown masked; a URL stored
plain by an earlier version still works and is sealed at its next registration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Envelope, Record, parse
from service.app.bootstrap import bootstrap
from service.calendar import poller as poller_module
from service.calendar import registry as registry_module
from service.calendar.poller import FeedPoller
from service.calendar.registry import FeedRegistry
from service.domain.feeds import Feed
from service.intake import shell as intake_module
from service.intake.licences import LicencePolicy
from service.intake.shell import Intake
from service.outbox.store import OutboxStore
from service.outbox.tables import FEEDS
from service.outbox.unit_of_work import UnitOfWork
from service.outbox.vault import CredentialVault, is_sealed, new_key
from service.settings import CalendarSettings, IntakeSettings, Settings
from service.views import Operations
from tests.support.feeds import FeedServer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ics"
START = datetime(2026, 10, 1, tzinfo=UTC)  # the fixture's events are ahead of it
SECRET_PATH = "/private-f00d/basic.ics?token=s3cr3t-token"
SETTINGS = CalendarSettings(jitter=0.0, allow_private_addresses=True)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (poller_module, registry_module, intake_module):
        monkeypatch.setattr(module, "utcnow", lambda: START)


@pytest.fixture
def feed_host() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def vault() -> CredentialVault:
    return CredentialVault(SecretStr(new_key()))


@pytest.fixture
async def polling(engine: AsyncEngine, vault: CredentialVault) -> AsyncIterator[FeedPoller]:
    poller = FeedPoller(FeedRegistry(engine, vault), SETTINGS, uow=UnitOfWork(engine))
    yield poller
    await poller.aclose()


def registered(feed_id: str, url: str, n: int) -> Envelope:
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"sealed-ev-{feed_id}-{n}",
        "source": "/calendars",
        "type": "calendar.feed.registered",
        "subject": feed_id,
        "data": {
            "url": url,
            "organizer_email": "lena@team.example",
            "tenant": "acme",
            "schedule_attended": True,
        },
    }
    return parse(Record("calendar.feeds", 0, n, feed_id.encode(), orjson.dumps(document)))


async def stored(engine: AsyncEngine, feed_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(FEEDS).where(FEEDS.c.feed_id == feed_id))).one()


async def test_a_registered_url_is_stored_sealed_and_still_fetched(
    engine: AsyncEngine, vault: CredentialVault, polling: FeedPoller, feed_host: FeedServer
) -> None:
    url = feed_host.publish((FIXTURES / "team_v1.ics").read_bytes(), path=SECRET_PATH)
    intake = Intake(UnitOfWork(engine), LicencePolicy(), IntakeSettings(), vault=vault)
    [taken] = await intake.take([registered("team-cal", url, 1)])
    assert taken.outcome == "accepted"
    row = await stored(engine, "team-cal")
    assert row.url != url
    assert "s3cr3t-token" not in row.url
    assert is_sealed(row.url)
    assert vault.open_text(row.url) == url

    await polling.poll_all_now()
    assert [s.path for s in feed_host.seen] == [SECRET_PATH]
    row = await stored(engine, "team-cal")
    assert (row.last_status, row.occurrences > 0) == ("ok", True)
    assert polling.stats.commands > 0

    # shown masked where the service has its vault, "(sealed)" where it has not
    settings = Settings(database_url=str(engine.url))
    [shown] = await Operations(engine, OutboxStore(engine, vault), settings).feeds()
    assert shown.url == f"{url.split('/private')[0]}/private-f00d/…?…"
    [without] = await Operations(engine, OutboxStore(engine), settings).feeds()
    assert without.url == "(sealed)"


async def test_a_plain_url_of_an_earlier_version_works_and_is_sealed_when_registered_again(
    engine: AsyncEngine, vault: CredentialVault, polling: FeedPoller, feed_host: FeedServer
) -> None:
    url = feed_host.publish((FIXTURES / "team_v1.ics").read_bytes(), path=SECRET_PATH)
    feed = Feed(feed_id="old-cal", url=url, organizer_email="lena@team.example", tenant="acme")
    await FeedRegistry(engine).register_all([feed], source="config")  # as before sealing
    assert (await stored(engine, "old-cal")).url == url

    await polling.poll_all_now()
    assert (await stored(engine, "old-cal")).last_status == "ok"

    await FeedRegistry(engine, vault).register_all([feed], source="config")
    row = await stored(engine, "old-cal")
    assert is_sealed(row.url)
    assert vault.open_text(row.url) == url


async def test_the_service_is_wired_to_seal(tmp_path: Path) -> None:
    service = await bootstrap(
        Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
            secret_key=SecretStr(new_key()),
        ),
        migrate=True,
    )
    try:
        assert service.intake.vault is not None
        assert service.poller.registry.vault is service.intake.vault
        assert service.store.vault is service.intake.vault
    finally:
        await service.aclose()


async def test_a_url_no_key_opens_holds_up_no_other_feed(
    engine: AsyncEngine, vault: CredentialVault, caplog: pytest.LogCaptureFixture
) -> None:
    lost = CredentialVault(SecretStr(new_key()))
    feeds = [
        Feed(feed_id=f, url=f"https://x.example/{f}.ics", organizer_email="a@x.example", tenant="t")
        for f in ("a-cal", "b-cal")
    ]
    await FeedRegistry(engine, lost).register_all(feeds[:1], source="config")
    await FeedRegistry(engine, vault).register_all(feeds[1:], source="config")
    claims = await FeedRegistry(engine, vault).claim_due(10, 15.0)
    assert [c.feed.feed_id for c in claims] == ["b-cal"]
    assert "feed a-cal: its URL cannot be opened" in caplog.text
