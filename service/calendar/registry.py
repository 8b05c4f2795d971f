"""The feeds table: register and remove feeds, claim the due ones, record each fetch.

Claims move a feed's `next_fetch_at` forward by a lease before it is fetched, so two
pollers (two service processes) never fetch one feed at once (`FOR UPDATE SKIP LOCKED`
on PostgreSQL); a poller that dies leaves the feed due again when the lease runs out. The
lease is short and renewed while the poll runs, and its end is the claim's token: a
poller whose lease ran out (or whose feed was registered again meanwhile) finds
`next_fetch_at` changed and writes nothing.

A feed's URL is kept sealed with the credential vault's key (a private calendar's address
is its password): sealed when written, opened when read. A URL stored plain by an
earlier version is read as it is, and sealed at its next registration or by `keys
rotate`. Without a vault (tests, tools without a key) URLs are kept as given.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.calendar.ics import Skipped
from service.backoff import backoff_s
from service.calendar import owners
from service.calendar.skipped import sample
from service.domain.feeds import Feed
from service.outbox.sql import upsert
from service.outbox.tables import FEEDS, CalendarFeed, utcnow
from service.outbox.vault import CredentialVault, MissingSecretKeyError, is_sealed

log = logging.getLogger("ucaas_sync.calendar")


@dataclass
class FeedLease:
    """A feed leased to one poll, with its validators; `until` is the lease's end as the
    table holds it (moved on by each renewal)."""

    feed: Feed
    etag: str | None
    last_modified: str | None
    until: datetime
    stored_url: str  # the URL as the row held it, sealed: the row unchanged still has it
    body_sha256: str | None = None  # of the last body planned: the same again is not parsed


class FeedFileError(ValueError):
    """The feeds file cannot be used; the message is one line."""


class _FileFeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000)
    organizer: str = Field(min_length=3, max_length=255)
    tenant: str = Field(min_length=1, max_length=100)
    interval_s: float | None = Field(None, gt=0)
    aliases: list[str] = Field(default_factory=list, max_length=20)
    schedule_attended: bool = False


def load_feeds_file(path: Path) -> list[Feed]:
    """[[feeds]] tables with id, url, organizer, tenant and optional interval_s, aliases
    (the owner's other addresses) and schedule_attended."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        entries = [_FileFeed.model_validate(entry) for entry in data.get("feeds", [])]
    except OSError as exc:
        raise FeedFileError(f"feeds file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FeedFileError(f"feeds file {path}: {exc}") from None
    except ValidationError as exc:
        raise FeedFileError(f"feeds file {path}: {exc.errors()[0]['msg']}") from None
    return [
        Feed(
            feed_id=e.id,
            url=e.url,
            organizer_email=e.organizer,
            tenant=e.tenant,
            interval_s=e.interval_s,
            aliases=tuple(a.lower() for a in e.aliases),
            schedule_attended=e.schedule_attended,
        )
        for e in entries
    ]


def stored_url(url: str, vault: CredentialVault | None) -> str:
    """The URL as the table keeps it."""
    return url if vault is None else vault.seal_text(url)


def opened_url(stored: str, vault: CredentialVault | None) -> str:
    """The URL the table keeps, to fetch."""
    if vault is not None:
        return vault.open_text(stored)
    if is_sealed(stored):
        raise MissingSecretKeyError("a feed URL is sealed: the feed registry needs the vault")
    return stored


def feed_of(row: Any, vault: CredentialVault | None) -> Feed:
    return Feed(
        feed_id=row.feed_id,
        url=opened_url(row.url, vault),
        organizer_email=row.organizer_email,
        tenant=row.tenant,
        interval_s=row.interval_s,
        aliases=tuple(row.aliases or ()),
        schedule_attended=bool(row.schedule_attended),
    )


async def register(
    conn: AsyncConnection,
    feed: Feed,
    *,
    source: str,
    now: datetime,
    vault: CredentialVault | None = None,
) -> None:
    """Add or change a feed, its URL sealed; it is fetched soon, in full (no validators
    nor body hash: a feed removed and registered again, or moved to a new URL, must not be
    skipped). Its failure history is kept."""
    values = {
        "feed_id": feed.feed_id,
        "url": stored_url(feed.url, vault),
        "organizer_email": feed.organizer_email.lower(),
        "tenant": feed.tenant,
        "interval_s": feed.interval_s,
        "aliases": list(feed.aliases),
        "schedule_attended": feed.schedule_attended,
        "removed": False,
        "source": source,
        "next_fetch_at": now,
        "updated_at": now,
        "etag": None,
        "last_modified": None,
        "body_sha256": None,
    }
    await conn.execute(upsert(conn.dialect.name, FEEDS, values, ("feed_id",)))


async def remove(
    conn: AsyncConnection, feed_id: str, now: datetime, vault: CredentialVault | None = None
) -> Feed | None:
    row = (await conn.execute(sa.select(FEEDS).where(FEEDS.c.feed_id == feed_id))).first()
    if row is None:
        return None
    await conn.execute(
        FEEDS.update().where(FEEDS.c.feed_id == feed_id).values(removed=True, updated_at=now)
    )
    feed = feed_of(row, vault)
    await owners.let_go(conn, feed)  # its events are free for another feed
    return feed


class FeedRegistry:
    def __init__(self, engine: AsyncEngine, vault: CredentialVault | None = None) -> None:
        self.engine = engine
        self.vault = vault  # seals and opens the URLs

    async def register_all(self, feeds: list[Feed], *, source: str) -> None:
        now = utcnow()
        async with self.engine.begin() as conn:
            for feed in feeds:
                await register(conn, feed, source=source, now=now, vault=self.vault)

    async def claim_due(self, limit: int, lease_s: float) -> list[FeedLease]:
        """Due feeds with their validators (etag, last-modified), leased for `lease_s`."""
        now = utcnow()
        due = (
            sa.select(FEEDS.c.feed_id)
            .where(FEEDS.c.removed.is_(False), FEEDS.c.next_fetch_at <= now)
            .order_by(FEEDS.c.next_fetch_at)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    FEEDS.update()
                    .where(FEEDS.c.feed_id.in_(due.scalar_subquery()))
                    .values(next_fetch_at=now + timedelta(seconds=lease_s))
                    .returning(*FEEDS.c)
                )
            ).all()
        leases = []
        for r in rows:
            try:
                feed = feed_of(r, self.vault)
            except MissingSecretKeyError as exc:
                # a URL no configured key opens holds up no other feed: this one is due
                # again when its lease runs out, and said again then
                log.error("feed %s: its URL cannot be opened: %s", r.feed_id, exc)
                continue
            leases.append(
                FeedLease(feed, r.etag, r.last_modified, r.next_fetch_at, r.url, r.body_sha256)
            )
        return leases

    async def renew(self, claim: FeedLease, lease_s: float) -> bool:
        """Move the lease on; False when the claim is no longer this poll's (its lease ran
        out and another poller took the feed, or it was registered again)."""
        until = utcnow() + timedelta(seconds=lease_s)
        async with self.engine.begin() as conn:
            done = await conn.execute(
                FEEDS.update()
                .where(FEEDS.c.feed_id == claim.feed.feed_id, FEEDS.c.next_fetch_at == claim.until)
                .values(next_fetch_at=until)
            )
        if not done.rowcount:
            return False
        claim.until = until
        return True

    async def next_due(self) -> datetime | None:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                sa.select(sa.func.min(FEEDS.c.next_fetch_at)).where(FEEDS.c.removed.is_(False))
            )
        return found if isinstance(found, datetime) else None

    async def failed(
        self,
        feed: Feed,
        reason: str,
        retry_cap_s: float,
        interval_s: float,
        claim: FeedLease | None = None,
    ) -> float | None:
        """Record a failure; the feed is tried again after a growing wait (returned). With
        the poll's `claim`: only while it holds (None, nothing written, once it is lost)."""
        now = utcnow()
        mine = FEEDS.c.feed_id == feed.feed_id
        if claim is not None:
            mine &= FEEDS.c.next_fetch_at == claim.until
        async with self.engine.begin() as conn:
            failures = (
                int(
                    await conn.scalar(
                        sa.select(FEEDS.c.failures).where(FEEDS.c.feed_id == feed.feed_id)
                    )
                    or 0
                )
                + 1
            )
            wait = backoff_s(failures, base_s=interval_s, cap_s=retry_cap_s, jitter="half")
            done = await conn.execute(
                FEEDS.update()
                .where(mine)
                .values(
                    last_status="failed",
                    last_error=reason[:500],
                    failures=failures,
                    last_fetch_at=now,
                    next_fetch_at=now + timedelta(seconds=wait),
                    updated_at=now,
                )
            )
        return wait if done.rowcount else None

    async def rows(self) -> list[CalendarFeed]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(FEEDS).order_by(FEEDS.c.feed_id))).all()
        return [CalendarFeed.model_validate(dict(r._mapping)) for r in rows]


async def fetched(
    conn: AsyncConnection,
    feed: Feed,
    *,
    status: str,
    etag: str | None,
    last_modified: str | None,
    occurrences: int | None,
    next_in_s: float,
    now: datetime,
    body_sha256: str | None = None,
    skipped: Sequence[Skipped] | None = None,
) -> None:
    """A fetch that worked; with an expansion (`occurrences`, and the events `skipped`
    as unusable: how many, and the first few with their reasons)."""
    values: dict[str, Any] = {
        "last_status": status,
        "last_error": None,
        "failures": 0,
        "etag": etag,
        "last_modified": last_modified,
        "last_fetch_at": now,
        "next_fetch_at": now + timedelta(seconds=next_in_s),
        "updated_at": now,
    }
    if occurrences is not None:
        values["occurrences"] = occurrences
    else:
        # Unchanged. Another feed of the tenant letting go of events clears this one's
        # validators and body hash (owners.let_go) so its next poll plans it and takes
        # them over; an answer to a request sent before that must not put them back.
        let_go = FEEDS.c.body_sha256.is_(None)
        values["etag"] = sa.case((let_go, sa.null()), else_=sa.literal(etag, sa.String))
        values["last_modified"] = sa.case(
            (let_go, sa.null()), else_=sa.literal(last_modified, sa.String)
        )
    if body_sha256 is not None:
        values["body_sha256"] = body_sha256
    if skipped is not None:
        values["skipped_events"] = len(skipped)
        values["skipped_sample"] = sample(skipped)
    await conn.execute(FEEDS.update().where(FEEDS.c.feed_id == feed.feed_id).values(**values))
