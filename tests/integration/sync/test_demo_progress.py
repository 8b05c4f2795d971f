"""The demo's progress snapshot against a poll committed between its reads.

The demo waits for "the feed's version fetched, every command done" and then reads the
meetings scheduled. Its snapshot is several statements, not one database snapshot: a poll
that commits (its commands and the feed's fetch time in one transaction) between two of
them must never show as a version applied with no command open. It once did, and the demo
read its meetings before they were scheduled (CI: "meetings cancelled 1 asked, 0 found").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calendar.registry import FeedRegistry
from service.devtools.demo.progress import snapshot
from service.domain.feeds import Feed
from service.outbox import db
from service.outbox.tables import FEEDS, OUTBOX

FEED = "crm-1-e1"
STATEMENTS = 5  # what snapshot() runs; a poll is committed before each one in turn


async def _register(engine: AsyncEngine) -> None:
    feed = Feed(
        feed_id=FEED,
        url="https://calendar.example.com/owner.ics",
        organizer_email="owner@example.com",
        tenant="crm-1",
    )
    await FeedRegistry(engine).register_all([feed], source="event")


def _poll(sync_url: str) -> None:
    """A poll as the poller commits it: a command queued and the fetch recorded, at once."""
    now = datetime.now(UTC)
    engine = sa.create_engine(sync_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                OUTBOX.insert().values(
                    entity="meeting:crm-1-e1:review@demo",
                    kind="schedule_meeting",
                    tenant="crm-1",
                    payload={},
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                FEEDS.update()
                .where(FEEDS.c.feed_id == FEED)
                .values(last_status="ok", last_fetch_at=now, updated_at=now)
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("before", range(1, STATEMENTS))
async def test_a_poll_committed_between_reads_never_looks_applied_with_nothing_open(
    engine: AsyncEngine, database_url: str, before: int
) -> None:
    await _register(engine)
    seen = 0

    def between(*_: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == before + 1:  # the statement after `before` of them have run
            _poll(db.sync_url(database_url))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", between)
    try:
        snap = await snapshot(engine, FEED)
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", between)

    assert seen == STATEMENTS, "snapshot() runs another number of statements: update STATEMENTS"
    fetched = snap.feed_fetched_at is not None and snap.feed_status == "ok"
    assert not (fetched and snap.open == 0), (
        f"the poll committed before statement {before + 1} shows as fetched, "
        f"with commands {snap.commands}"
    )
    # and the next snapshot sees both
    again = await snapshot(engine, FEED)
    assert again.feed_fetched_at is not None and again.open == 1
