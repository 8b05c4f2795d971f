"""The mass-cancel guard's rows in the outbox: what became of a feed's held cancels, and
releasing or dropping them as a later version decides (calendar/guard.py decides, purely).

A feed's commands carry its event source (`calendar:<feed id>`), and a held cancel is the
latest cancel_meeting of its meeting from that source. The poller reads and changes them
in the transaction that queues the version's commands, after it has locked the feed's
row; on PostgreSQL the rows read are locked too (`FOR UPDATE`), so an approval or denial
that comes meanwhile is either seen here or finds them no longer held.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from service.calendar.guard import CancelGuard, Fate, Guarded, judge, settle
from service.calendar.translate import FeedState, MeetingRules, diff_feed
from service.domain.commands import APPROVAL, Kind, meeting_entity
from service.domain.feeds import Feed
from service.outbox.sql import chunks
from service.outbox.tables import FEEDS, OUTBOX, CommandStatus

if TYPE_CHECKING:  # annotations only: icalendar and httpx would slow the CLI's `status` down
    from connectors.calendar.ics import Occurrence

MOOT = "moot: a later version of the feed does not cancel it"


def feed_source(feed_id: str) -> str:
    """The event source of a feed's polls (inbox rows, and the outbox rows they queue)."""
    return f"calendar:{feed_id}"


def _held_for_approval() -> sa.ColumnElement[bool]:
    return sa.and_(
        OUTBOX.c.status == CommandStatus.HELD.value, OUTBOX.c.hold_reason.like(f"{APPROVAL}%")
    )


def _cancels(feed_id: str, keys: Iterable[str]) -> sa.ColumnElement[bool]:
    return sa.and_(
        OUTBOX.c.entity.in_([meeting_entity(k) for k in keys]),
        OUTBOX.c.kind == Kind.CANCEL_MEETING.value,
        OUTBOX.c.event_source == feed_source(feed_id),
    )


async def fates(conn: AsyncConnection, feed_id: str, keys: Iterable[str]) -> dict[str, Fate]:
    """What became of the held cancels of these meetings: each one's latest cancel."""
    found: dict[str, Fate] = {}
    prefix = len(meeting_entity(""))
    for some in chunks(sorted(set(keys))):
        query = (
            sa.select(OUTBOX.c.entity, OUTBOX.c.status, OUTBOX.c.hold_reason)
            .where(_cancels(feed_id, some))
            .order_by(OUTBOX.c.id)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        for entity, status, reason in await conn.execute(query):
            if status == CommandStatus.HELD.value and (reason or "").startswith(APPROVAL):
                fate: Fate = "held"
            elif status == CommandStatus.DROPPED.value:
                fate = "dropped"
            else:
                fate = "approved"
            found[entity[prefix:]] = fate  # the latest wins
    return found


async def release(conn: AsyncConnection, feed_id: str, keys: Sequence[str], now: datetime) -> int:
    """Held cancels a version that passes the guard asks for too: they run now."""
    values = {
        "status": CommandStatus.PENDING.value,
        "hold_reason": None,
        "approved_at": now,
        "updated_at": now,
    }
    return await _settle_held(conn, feed_id, keys, values)


async def drop_moot(conn: AsyncConnection, feed_id: str, keys: Sequence[str], now: datetime) -> int:
    """Held cancels no later version asks for (the feed has the meeting again, or it has
    started): dropped, so nobody approves them."""
    values = {
        "status": CommandStatus.DROPPED.value,
        "hold_reason": MOOT,
        "updated_at": now,
        "done_at": now,
    }
    return await _settle_held(conn, feed_id, keys, values)


async def _settle_held(
    conn: AsyncConnection, feed_id: str, keys: Sequence[str], values: Mapping[str, object]
) -> int:
    done = 0
    for some in chunks(keys):
        result = await conn.execute(
            OUTBOX.update().where(_cancels(feed_id, some), _held_for_approval()).values(**values)
        )
        done += result.rowcount
    return done


async def held_feeds(conn: AsyncConnection) -> dict[str, str]:
    """The feeds with cancels held for approval: feed id -> the reason (for the views)."""
    prefix = feed_source("")
    rows = await conn.execute(
        sa.select(OUTBOX.c.event_source, sa.func.min(OUTBOX.c.hold_reason))
        .where(_held_for_approval(), OUTBOX.c.event_source.like(f"{prefix}%"))
        .group_by(OUTBOX.c.event_source)
    )
    return {str(source)[len(prefix) :]: str(reason) for source, reason in rows}


async def count_held(conn: AsyncConnection, feeds: dict[str, int]) -> None:
    """Feed counts by last status (the views'), with the feeds whose cancels are held
    counted as "held" instead (a failing one stays "failed")."""
    held = await held_feeds(conn)
    if not held:
        return
    rows = await conn.execute(
        sa.select(FEEDS.c.last_status).where(
            FEEDS.c.feed_id.in_(list(held)), FEEDS.c.removed.is_(False)
        )
    )
    for (status,) in rows:
        if status == "failed":
            continue
        feeds[str(status)] = feeds.get(str(status), 0) - 1  # (read a moment before)
        feeds["held"] = feeds.get("held", 0) + 1
    for status in [k for k, n in feeds.items() if n <= 0]:
        del feeds[status]


async def guarded_diff(
    conn: AsyncConnection,
    feed: Feed,
    occurrences: Sequence[Occurrence],
    state: FeedState | None,
    now: datetime,
    rules: MeetingRules,
    guard: CancelGuard,
    *,
    empty: bool | None = None,
    skipped: Collection[str] = (),
) -> Guarded:
    """diff_feed, with the operator's decisions on held cancels folded in first and the
    guard's verdict after; the held cancels it no longer needs are released or dropped.
    The translation's state is None when it is unchanged."""
    held = state.hold.held if state is not None and state.hold is not None else ()
    settled = settle(state, await fates(conn, feed.feed_id, held) if held else {})
    diffed = diff_feed(feed, occurrences, settled, now, rules, skipped)
    # empty: the feed had no event at all (not: none of its events is the owner's)
    empty = not occurrences if empty is None else empty
    guarded = judge(feed, diffed, settled, now, guard, empty=empty)
    if guarded.release:
        await release(conn, feed.feed_id, guarded.release, now)
    if guarded.moot:
        await drop_moot(conn, feed.feed_id, guarded.moot, now)
    if guarded.translation.state == (state or FeedState()):
        return replace(guarded, translation=replace(guarded.translation, state=None))
    return guarded
