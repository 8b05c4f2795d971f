"""How far the pipeline has got, read from the service's database, and shown with rich.

Events published (counted by the demo), events taken (inbox rows of the demo's sources,
plus dead letters), commands done and still open (the outbox) with the UCaaS calls made
(the call log), and the calendar feed's versions applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from service.devtools.demo.scenario import SOURCES
from service.outbox.tables import (
    CALLS,
    DEAD_LETTERS,
    FEEDS,
    INBOX,
    OUTBOX,
)

OPEN = ("pending", "in_flight", "waiting")
FINISHED = ("done", "dropped")


@dataclass(frozen=True)
class Snapshot:
    taken: int
    dead_letters: int
    commands: dict[str, int]  # status -> count
    calls: int
    feed_status: str | None
    feed_fetched_at: datetime | None

    @property
    def open(self) -> int:
        return sum(self.commands.get(s, 0) for s in OPEN)

    @property
    def finished(self) -> int:
        return sum(self.commands.get(s, 0) for s in FINISHED)

    @property
    def total(self) -> int:
        return sum(self.commands.values())

    @property
    def stuck(self) -> int:
        """Dead or held: they need a person, waiting longer changes nothing."""
        return self.commands.get("dead", 0) + self.commands.get("held", 0)


async def snapshot(engine: AsyncEngine, feed_id: str) -> Snapshot:
    """The statements are not one snapshot (each sees its own moment, on SQLite as on
    PostgreSQL under read committed), so their order matters: what queues commands (an
    event taken, a feed's poll) is read before the outbox. A poll committed between two
    reads then shows as commands still open, never as a version applied with its commands
    missing (the demo once read the meetings scheduled before they were)."""
    count = sa.select(sa.func.count())
    async with engine.connect() as conn:
        feed = (
            await conn.execute(
                sa.select(FEEDS.c.last_status, FEEDS.c.last_fetch_at).where(
                    FEEDS.c.feed_id == feed_id
                )
            )
        ).first()
        taken = await conn.scalar(
            count.select_from(INBOX).where(INBOX.c.source.in_(list(SOURCES.values())))
        )
        dead = await conn.scalar(count.select_from(DEAD_LETTERS))
        statuses = (
            await conn.execute(
                sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)
            )
        ).all()
        calls = await conn.scalar(count.select_from(CALLS))
    return Snapshot(
        taken=int(taken or 0),
        dead_letters=int(dead or 0),
        commands={str(status): int(n) for status, n in statuses},
        calls=int(calls or 0),
        feed_status=feed.last_status if feed is not None else None,
        feed_fetched_at=feed.last_fetch_at if feed is not None else None,
    )


class Board:
    """The live progress lines."""

    def __init__(self, console: Console, events: int) -> None:
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description:<16}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=8,
        )
        add = self.progress.add_task
        self.published = add("events published", total=events, note="")
        self.taken = add("events taken", total=events, note="")
        self.commands = add("commands done", total=None, note="")
        self.feed = add("calendar feed", total=2, note="not registered yet")

    def __enter__(self) -> Board:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def say(self, text: str) -> None:
        self.progress.console.print(text)

    def publish(self, count: int) -> None:
        self.progress.update(self.published, completed=count)

    def feed_version(self, applied: int, note: str) -> None:
        self.progress.update(self.feed, completed=applied, note=note)

    def show(self, snap: Snapshot, *, joined: bool) -> None:
        update = self.progress.update
        taken_note = "" if joined else "[dim]consumers joining the group…[/]"
        if snap.dead_letters:
            taken_note = f"[red]{snap.dead_letters} dead-lettered[/]"
        update(self.taken, completed=snap.taken + snap.dead_letters, note=taken_note)
        parts = [f"{snap.open} open", f"{snap.calls} UCaaS calls"]
        if snap.commands.get("waiting"):
            parts.append(f"{snap.commands['waiting']} waiting for a prerequisite")
        if snap.stuck:
            parts.append(f"[red]{snap.stuck} dead or held[/]")
        update(self.commands, completed=snap.finished, total=snap.total, note=", ".join(parts))
