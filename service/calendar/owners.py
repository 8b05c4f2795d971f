"""Whose events a feed schedules: the ones its owner organises, once per tenant.

A person's feed holds every event they are invited to; only those they organise (their
e-mail or an alias is the ORGANIZER, or there is none: their own) become meetings, unless
the feed says to schedule what they attend too. An event (organiser + UID) is scheduled
by one feed of the tenant: the first to take it in `calendar_event_owner`; the others
leave it to that feed, until it no longer has the event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.calendar.ics import Occurrence
from service.domain.feeds import Feed
from service.outbox.sql import chunks, insert_for
from service.outbox.tables import EVENT_OWNERS, FEEDS

UID_MAX = 255


@dataclass(frozen=True)
class Taken:
    occurrences: list[Occurrence]  # what this feed schedules
    attended: int  # occurrences the owner only attends (not scheduled)
    elsewhere: int  # occurrences another feed of the tenant schedules


def owned(feed: Feed, occurrences: Sequence[Occurrence]) -> tuple[list[Occurrence], int]:
    """The occurrences of events the feed's owner organises (all, for a feed that
    schedules what they attend), and how many were left out. Pure."""
    if feed.schedule_attended:
        return list(occurrences), 0
    mine = [o for o in occurrences if feed.owns(o.organizer)]
    return mine, len(occurrences) - len(mine)


def event_of(feed: Feed, occurrence: Occurrence) -> tuple[str, str]:
    """(organiser, UID) of an occurrence's event; a UID too long is hashed."""
    organizer = (occurrence.organizer or feed.organizer_email).lower()[:255]
    uid = occurrence.uid
    if len(uid) > UID_MAX:
        uid = "#" + hashlib.sha256(uid.encode()).hexdigest()
    return organizer, uid


async def take(
    conn: AsyncConnection, feed: Feed, occurrences: Sequence[Occurrence], now: datetime
) -> Taken:
    """Claim the feed's events for it, in the poll's transaction, and keep the
    occurrences of those it holds; its claims on events it no longer has are let go."""
    mine, attended = owned(feed, occurrences)
    events = sorted({event_of(feed, o) for o in mine})
    insert = insert_for(conn.dialect.name)
    for some in chunks(events):
        rows = [
            {
                "tenant": feed.tenant,
                "organizer": o,
                "uid": u,
                "feed_id": feed.feed_id,
                "updated_at": now,
            }
            for o, u in some
        ]
        # the first feed to take an event keeps it; on PostgreSQL a second one waits for
        # the first's commit, then finds it taken
        await conn.execute(
            insert(EVENT_OWNERS).on_conflict_do_nothing(
                index_elements=["tenant", "organizer", "uid"]
            ),
            rows,
        )
    holders: dict[tuple[str, str], str] = {}
    for some in chunks(events):
        found = await conn.execute(
            sa.select(EVENT_OWNERS.c.organizer, EVENT_OWNERS.c.uid, EVENT_OWNERS.c.feed_id).where(
                EVENT_OWNERS.c.tenant == feed.tenant,
                sa.tuple_(EVENT_OWNERS.c.organizer, EVENT_OWNERS.c.uid).in_(some),
            )
        )
        holders.update(((o, u), f) for o, u, f in found)
    kept = [o for o in mine if holders.get(event_of(feed, o)) == feed.feed_id]
    await let_go(conn, feed, keep=[e for e in events if holders.get(e) == feed.feed_id])
    return Taken(kept, attended, len(mine) - len(kept))


async def let_go(conn: AsyncConnection, feed: Feed, keep: Sequence[tuple[str, str]] = ()) -> None:
    """The feed's claims on events other than `keep` (all of them for a feed removed)."""
    held = await conn.execute(
        sa.select(EVENT_OWNERS.c.organizer, EVENT_OWNERS.c.uid).where(
            EVENT_OWNERS.c.feed_id == feed.feed_id
        )
    )
    gone = sorted({(o, u) for o, u in held} - set(keep))
    for some in chunks(gone):
        await conn.execute(
            EVENT_OWNERS.delete().where(
                EVENT_OWNERS.c.feed_id == feed.feed_id,
                sa.tuple_(EVENT_OWNERS.c.organizer, EVENT_OWNERS.c.uid).in_(some),
            )
        )
    if gone:
        # another feed of the tenant may have left these to this one: its next poll
        # plans its body again, even unchanged, and takes them over
        await conn.execute(
            FEEDS.update()
            .where(FEEDS.c.tenant == feed.tenant, FEEDS.c.feed_id != feed.feed_id)
            .values(body_sha256=None, etag=None, last_modified=None)
        )
