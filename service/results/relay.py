"""The results relay: result rows out to Kafka, at least once, in the order written.

Each round takes the oldest unpublished rows, sends them (key: the entity, so one
entity's results stay in order on one partition) and marks them published once the
broker acknowledged all of them. A crash between the acknowledgement and the mark sends
them again under the same CloudEvent id, which consumers dedupe on; nothing is lost, as
a row stays unpublished until acknowledged. A broker that is away delays the results, not
the commands: the relay only reads the `result` table and backs off on its own.

On PostgreSQL one relay works at a time (a transaction-scoped advisory lock), so several
processes keep the written order; the others find the lock taken and wait their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.events.publisher import Outgoing, PublishError
from service.backoff import backoff_s
from service.observability import metrics
from service.outbox.sql import among
from service.outbox.tables import RESULTS, UtcDateTime, utcnow
from service.results.model import CONTENT_TYPE
from service.settings import ResultsSettings

log = logging.getLogger("ucaas_sync.results")

# pg_try_advisory_xact_lock's key: "results relay", any constant no other lock uses
RELAY_LOCK = 0x7563_7273_7265_6C61
BACKLOG_EVERY_S = 5.0  # how often the lag gauges are read from the database
_HEADERS = (("content-type", CONTENT_TYPE.encode()),)


class Publisher(Protocol):
    async def publish(self, records: Sequence[Outgoing]) -> None: ...

    async def stop(self) -> None: ...


class ResultRelay:
    def __init__(
        self, engine: AsyncEngine, publisher: Publisher, settings: ResultsSettings
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.publisher = publisher
        self.settings = settings
        self.published = 0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Results were written: look now rather than after the idle pause."""
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        last_backlog = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                if loop.time() - last_backlog >= BACKLOG_EVERY_S:
                    last_backlog = loop.time()
                    await self.observe_backlog()
                try:
                    sent = await self.relay_once()
                except PublishError as exc:
                    failures += 1
                    metrics.results_relay_failed()
                    pause = backoff_s(
                        failures,
                        base_s=self.settings.poll_s,
                        cap_s=self.settings.retry_cap_s,
                        jitter="half",
                    )
                    log.warning("results not published: %s; again in %.1f s", exc, pause)
                    await self._pause(pause)
                    continue
                if failures:
                    log.info("results published again after %d failed round(s)", failures)
                    failures = 0
                if sent < self.settings.batch:
                    await self._pause(self.settings.poll_s)
            if not failures:  # stopping: what the dispatcher's last batch wrote goes out too
                with contextlib.suppress(PublishError):
                    while await self.relay_once() == self.settings.batch:
                        pass
        finally:
            await self.publisher.stop()

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def relay_once(self) -> int:
        """One round; how many results were published (PublishError: none)."""
        if self.dialect == "postgresql":
            async with self.engine.begin() as conn:
                if not await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(RELAY_LOCK))):
                    return 0  # another process is relaying
                rows = await self._unpublished(conn)
                if rows:
                    await self._send(rows)
                    await self._mark(conn, rows)
            return self._count(rows)
        # SQLite: a read transaction kept open across the send could not be made a write
        # one after another writer committed (a stale WAL snapshot): three short steps.
        async with self.engine.connect() as conn:
            rows = await self._unpublished(conn)
        if rows:
            await self._send(rows)
            async with self.engine.begin() as conn:
                await self._mark(conn, rows)
        return self._count(rows)

    def _count(self, rows: Sequence[Any]) -> int:
        self.published += len(rows)
        metrics.results_published(len(rows))
        return len(rows)

    async def _unpublished(self, conn: AsyncConnection) -> Sequence[Any]:
        found = await conn.execute(
            sa.select(RESULTS.c.id, RESULTS.c.topic, RESULTS.c.subject, RESULTS.c.cloudevent)
            .where(RESULTS.c.published_at.is_(None))
            .order_by(RESULTS.c.id)
            .limit(self.settings.batch)
        )
        return found.all()

    async def _send(self, rows: Sequence[Any]) -> None:
        await self.publisher.publish(
            [
                Outgoing(topic, subject.encode(), orjson.dumps(cloudevent), _HEADERS)
                for _, topic, subject, cloudevent in rows
            ]
        )

    async def _mark(self, conn: AsyncConnection, rows: Sequence[Any]) -> None:
        await conn.execute(
            RESULTS.update()
            .where(among(self.dialect, RESULTS.c.id, [row.id for row in rows], sa.Integer))
            .values(published_at=utcnow())
        )

    async def observe_backlog(self) -> tuple[int, float | None]:
        """Unpublished results and the oldest one's age (s), also set as gauges."""
        async with self.engine.connect() as conn:
            count, oldest = (
                await conn.execute(
                    sa.select(
                        sa.func.count(), sa.func.min(RESULTS.c.created_at, type_=UtcDateTime())
                    ).where(RESULTS.c.published_at.is_(None))
                )
            ).one()
        age = _age(oldest)
        metrics.results_backlog(int(count), age)
        return int(count), age


def _age(oldest: datetime | None) -> float | None:
    return None if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
