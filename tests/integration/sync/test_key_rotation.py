"""`keys rotate` on SQLite and PostgreSQL: tenant logins and feed URLs sealed under an
earlier key (and URLs stored plain by an earlier version) are sealed again under the
current key, in batches; a second run rewrites nothing; after the old key is removed
everything still opens; a value no configured key opens stops it before any change."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from service.calendar.registry import FeedRegistry
from service.cli.main import app
from service.domain.feeds import Feed
from service.outbox import db
from service.outbox.rotation import UnopenableSecretsError, rotate
from service.outbox.store import OutboxStore
from service.outbox.tables import FEEDS, LOGINS, utcnow
from service.outbox.vault import CredentialVault, is_sealed, new_key

URLS = {
    "ann-cal": "https://cal.example.com/private-a1/basic.ics?token=ann",
    "bob-cal": "https://cal.example.com/private-b2/basic.ics?token=bob",
    "old-cal": "https://cal.example.com/private-c3/basic.ics?token=old",  # stored plain
}


def key() -> SecretStr:
    return SecretStr(new_key())


def feed(feed_id: str) -> Feed:
    return Feed(feed_id=feed_id, url=URLS[feed_id], organizer_email="a@x.example", tenant="T1")


async def add_login(engine: AsyncEngine, vault: CredentialVault, tenant: str, pw: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            LOGINS.insert().values(
                tenant=tenant,
                username=f"admin@{tenant}.example",
                secret=vault.seal(SecretStr(pw)),
                source="captured",
                updated_at=utcnow(),
            )
        )


async def stored(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        logins = (await conn.execute(sa.select(LOGINS.c.tenant, LOGINS.c.secret))).all()
        feeds = (await conn.execute(sa.select(FEEDS.c.feed_id, FEEDS.c.url))).all()
    return {str(k): str(v) for k, v in [*logins, *feeds]}


async def before_rotation(engine: AsyncEngine, old: SecretStr) -> None:
    """What a deployment has under its old key: two logins, two sealed URLs, a plain one."""
    under_old = CredentialVault(old)
    await add_login(engine, under_old, "T1", "pw-one")
    await add_login(engine, under_old, "T2", "pw-two")
    await FeedRegistry(engine, under_old).register_all(
        [feed("ann-cal"), feed("bob-cal")], source="config"
    )
    await FeedRegistry(engine).register_all([feed("old-cal")], source="config")


async def test_rotation_seals_everything_under_the_new_key(engine: AsyncEngine) -> None:
    old, new = key(), key()
    await before_rotation(engine, old)
    during = CredentialVault(new, [old])

    report = await rotate(engine, during, batch=2)  # batches of two: three feeds span two
    assert report.resealed == {"tenant logins": 2, "feed URLs": 3}
    values = await stored(engine)
    assert all(is_sealed(v) for v in values.values())
    assert not any(url in values.values() for url in URLS.values())

    again = await rotate(engine, during, batch=2)
    assert again.resealed == {"tenant logins": 0, "feed URLs": 0}
    assert again.current == {"tenant logins": 2, "feed URLs": 3}
    assert await stored(engine) == values

    # the old key removed: the logins and the feeds open with the new key alone
    after = CredentialVault(new)
    store = OutboxStore(engine, after)
    login = await store.mappings.stored_login("T2")
    assert login is not None
    assert login.password.get_secret_value() == "pw-two"
    claims = await FeedRegistry(engine, after).claim_due(10, 15.0)
    assert {c.feed.feed_id: c.feed.url for c in claims} == URLS
    with pytest.raises(UnopenableSecretsError):  # nothing is left for the old key alone
        await rotate(engine, CredentialVault(old), batch=2)


async def test_a_value_no_key_opens_stops_rotation_before_any_change(engine: AsyncEngine) -> None:
    old, new, lost = key(), key(), key()
    await before_rotation(engine, old)
    await add_login(engine, CredentialVault(lost), "T3", "pw-three")
    before = await stored(engine)
    with pytest.raises(UnopenableSecretsError) as raised:
        await rotate(engine, CredentialVault(new, [old]))
    message = str(raised.value)
    assert message.startswith("1 stored value(s) open with none of the configured keys")
    assert "(the login of tenant T3)" in message
    assert "UCAAS_SYNC_SECRET_KEYS_PREVIOUS" in message
    assert await stored(engine) == before


def test_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "new"])
    assert made.exit_code == 0
    new = made.output.strip()
    CredentialVault(SecretStr(new))  # a Fernet key

    url = f"sqlite+aiosqlite:///{tmp_path / 'sync.db'}"
    db.upgrade(url)
    old = key()

    async def seed() -> None:
        engine = db.make_engine(url, pool_size=1)
        try:
            await before_rotation(engine, old)
        finally:
            await engine.dispose()

    asyncio.run(seed())
    env: dict[str, Any] = {
        "UCAAS_SYNC_DATABASE_URL": url,
        "UCAAS_SYNC_SECRET_KEY": new,
    }
    refused = runner.invoke(app, ["keys", "rotate"], env=env)
    assert refused.exit_code == 1
    # the plain URL opens without a key; the four sealed values need the old one
    assert refused.output.startswith("error: 4 stored value(s) open with none")

    env["UCAAS_SYNC_SECRET_KEYS_PREVIOUS"] = old.get_secret_value()
    done = runner.invoke(app, ["keys", "rotate"], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.strip() == (
        "sealed again under the current key: 2 tenant logins, 3 feed URLs "
        "(already under it: 0 tenant logins, 0 feed URLs)"
    )
    again = runner.invoke(app, ["keys", "rotate", "--json"], env=env)
    assert again.output.strip() == (
        '{"resealed":{"tenant logins":0,"feed URLs":0},"current":{"tenant logins":2,"feed URLs":3}}'
    )
