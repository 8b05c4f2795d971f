"""What the operator asks: what the service owes, what failed and why, one entity's story.

Read from the database (and the broker, for the consumer lag) so any process can answer:
the CLI (`status`, `dead`, `history`, `approve`), the admin API and the status page use
this one module. Actions (retry, drop, approve, deny) go through the outbox store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service import entity_search
from service.calendar.holds import count_held, feed_source, held_feeds
from service.domain.commands import APPROVAL
from service.outbox import audit
from service.outbox.audit import Actor, AuditView, Result
from service.outbox.store import OutboxStore
from service.outbox.tables import (
    CALLS,
    DEAD_LETTERS,
    FEEDS,
    INBOX,
    MAPPING,
    OUTBOX,
    RESULTS,
    TERMINAL,
    CommandStatus,
    utcnow,
)
from service.settings import Settings
from service.view_models import (
    Bucket,
    CallCounts,
    CallView,
    CommandView,
    DeadLetterView,
    EventView,
    Failure,
    FeedView,
    History,
    MappingView,
    Match,
    ResultView,
)

LAG_CACHE_S = 5.0  # a scrape every second must not open two Kafka connections each time


@dataclass(frozen=True)
class StatusReport:
    at: datetime
    outbox: dict[str, int]  # commands by status
    oldest_open_age_s: float | None  # the oldest command not done or dropped
    held_for_approval: int
    dead: int
    dead_letters: dict[str, int]  # records dead-lettered, by source topic
    events: dict[str, int]  # inbox rows by outcome
    feeds: dict[str, int]  # calendar feeds by last fetch status
    consumer_lag: dict[tuple[str, int], int] | None  # None: not asked or broker away
    lag_error: str | None = None
    results: ResultsSummary | None = None  # None: not read (a report made by hand)

    @property
    def open_commands(self) -> int:
        return sum(n for status, n in self.outbox.items() if status not in TERMINAL)

    def as_json(self) -> dict[str, Any]:
        lag = self.consumer_lag
        return {
            "at": self.at.isoformat(),
            "outbox": self.outbox,
            "open_commands": self.open_commands,
            "oldest_open_age_s": self.oldest_open_age_s,
            "held_for_approval": self.held_for_approval,
            "dead": self.dead,
            "dead_letters": self.dead_letters,
            "events": self.events,
            "feeds": self.feeds,
            "consumer_lag": None
            if lag is None
            else [{"topic": t, "partition": p, "lag": n} for (t, p), n in sorted(lag.items())],
            "consumer_lag_total": None if lag is None else sum(lag.values()),
            "lag_error": self.lag_error,
            "results": None if self.results is None else self.results.as_json(),
        }


@dataclass(frozen=True)
class ResultsSummary:
    """The result events' relay: what waits for it, and how far behind it is."""

    unpublished: int
    oldest_unpublished_age_s: float | None  # the relay's lag; None: nothing waits
    # results made in the last hour that are published: counted by created_at, which is
    # indexed (published_at is not, and a count of every published row reads the table)
    published_last_hour: int

    def as_json(self) -> dict[str, Any]:
        return {
            "unpublished": self.unpublished,
            "oldest_unpublished_age_s": self.oldest_unpublished_age_s,
            "published_last_hour": self.published_last_hour,
        }


async def _results_summary(conn: AsyncConnection, now: datetime) -> ResultsSummary:
    waiting = RESULTS.c.published_at.is_(None)  # the partial index ix_result_unpublished
    unpublished = await conn.scalar(sa.select(sa.func.count()).where(waiting))
    # ids grow with time: the lowest unpublished id is the oldest, one step in that index
    oldest = await conn.scalar(
        sa.select(RESULTS.c.created_at).where(waiting).order_by(RESULTS.c.id).limit(1)
    )
    published = await conn.scalar(
        sa.select(sa.func.count()).where(
            RESULTS.c.created_at >= now - timedelta(hours=1), RESULTS.c.published_at.is_not(None)
        )
    )
    return ResultsSummary(
        unpublished=int(unpublished or 0),
        oldest_unpublished_age_s=None if oldest is None else (now - oldest).total_seconds(),
        published_last_hour=int(published or 0),
    )


async def _count_by(
    conn: AsyncConnection, column: sa.ColumnElement[Any], *where: sa.ColumnElement[bool]
) -> dict[str, int]:
    query = sa.select(column, sa.func.count()).where(*where).group_by(column)
    return {str(key): int(count) for key, count in (await conn.execute(query)).all()}


def _views(model: type[Any], rows: Any) -> list[Any]:
    return [model.model_validate(dict(r._mapping)) for r in rows]


def external_of(entity: str) -> tuple[str, str | None, str | None] | None:
    """(kind, tenant, external id) of `user:T:E`, `customer:C`, `subscriptions:C` (every
    purchase of C: no one external id) and `subscription:C:P` (commands queued before a
    company's purchases became one entity)."""
    kind, _, rest = entity.partition(":")
    if kind == "user" and rest.count(":") >= 1:
        tenant, _, external = rest.partition(":")
        return "user", tenant, external
    if kind == "customer" and rest:
        return "customer", None, rest
    if kind == "subscriptions" and rest:
        return "subscription", rest, None
    if kind == "subscription" and ":" in rest:
        crm, _, purchase = rest.partition(":")
        return "subscription", crm, purchase
    return None


@dataclass
class Operations:
    engine: AsyncEngine
    store: OutboxStore
    settings: Settings
    _lag: tuple[float, dict[tuple[str, int], int] | None, str | None] | None = field(
        default=None, repr=False
    )

    # -- the whole picture ------------------------------------------------------------------
    async def status(self, *, with_lag: bool = True) -> StatusReport:
        now = utcnow()
        async with self.engine.connect() as conn:
            by_status = await _count_by(conn, OUTBOX.c.status)
            oldest = await conn.scalar(
                sa.select(sa.func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status.not_in(TERMINAL))
            )
            held = await conn.scalar(
                sa.select(sa.func.count()).where(
                    OUTBOX.c.status == CommandStatus.HELD.value,
                    OUTBOX.c.hold_reason.like(f"{APPROVAL}%"),
                )
            )
            letters = await _count_by(conn, DEAD_LETTERS.c.topic)
            events = await _count_by(conn, INBOX.c.outcome)
            feeds = await _count_by(conn, FEEDS.c.last_status, FEEDS.c.removed.is_(False))
            await count_held(conn, feeds)
            results = await _results_summary(conn, now)
        lag, lag_error = await self.lag() if with_lag else (None, None)
        return StatusReport(
            at=now,
            outbox=by_status,
            oldest_open_age_s=(now - oldest).total_seconds() if oldest is not None else None,
            held_for_approval=int(held or 0),
            dead=int(by_status.get(CommandStatus.DEAD.value, 0)),
            dead_letters=letters,
            events=events,
            feeds={("not fetched" if k == "None" else k): v for k, v in feeds.items()},
            consumer_lag=lag,
            lag_error=lag_error,
            results=results,
        )

    async def lag(self) -> tuple[dict[tuple[str, int], int] | None, str | None]:
        kafka = self.settings.kafka
        if kafka.bootstrap_servers is None:
            return None, "no broker configured (KAFKA_BOOTSTRAP_SERVERS)"
        from connectors.events.lag import LagUnknownError, consumer_lag  # noqa: PLC0415 - aiokafka, faststream: CLI start-up time

        cached = self._lag
        if cached is not None and time.monotonic() - cached[0] < LAG_CACHE_S:
            return cached[1], cached[2]
        try:
            lag: dict[tuple[str, int], int] | None = await consumer_lag(
                kafka.connection(kafka.bootstrap_servers), kafka.group_id, kafka.topics
            )
            error = None
        except LagUnknownError as exc:
            lag, error = None, str(exc)
        self._lag = (time.monotonic(), lag, error)
        return lag, error

    # -- commands ----------------------------------------------------------------------------
    async def commands(
        self, *, status: str | None = None, entity: str | None = None, limit: int = 100
    ) -> list[CommandView]:
        query = sa.select(OUTBOX).order_by(OUTBOX.c.id.desc()).limit(limit)
        if status:
            query = query.where(OUTBOX.c.status == status)
        if entity:
            query = query.where(OUTBOX.c.entity == entity)
        async with self.engine.connect() as conn:
            return _views(CommandView, (await conn.execute(query)).all())

    # Actions are audited when an actor is given; `store.operator.retry` and `.drop` also
    # say why not (`not_found`, `conflict`), as the admin API and the CLI show it.
    async def retry(self, command_id: int, actor: Actor | None = None) -> bool:
        return await self.store.operator.retry(command_id, actor) == "ok"

    async def drop(self, command_id: int, actor: Actor | None = None) -> bool:
        return await self.store.operator.drop(command_id, actor) == "ok"

    async def held(self) -> list[CommandView]:
        held = await self.store.held_for_approval()
        return [CommandView.model_validate(row.model_dump()) for row in held]

    async def decide(
        self,
        action: Literal["approve", "deny"],
        *,
        command_id: int | None = None,
        tenant: str | None = None,
        feed: str | None = None,
        actor: Actor | None = None,
    ) -> tuple[int, Result]:
        """Held commands run (approve) or are dropped (deny): one, a tenant's, or a calendar
        feed's held cancels. How many, and `ok` or `not_found` (nothing of it anywhere)."""
        source = None if feed is None else feed_source(feed)
        act = self.store.operator.approve if action == "approve" else self.store.operator.deny
        return await act(command_id=command_id, tenant=tenant, source=source, actor=actor)

    async def approve(self, **chosen: Any) -> int:
        """`decide("approve", ...)`'s count: command_id, tenant or feed (and actor)."""
        return (await self.decide("approve", **chosen))[0]

    async def deny(self, **chosen: Any) -> int:
        return (await self.decide("deny", **chosen))[0]

    async def audit(
        self, *, since: datetime | None = None, actor: str | None = None, limit: int = 100
    ) -> list[AuditView]:
        """Operator actions, newest first."""
        found = await audit.entries(self.engine, since=since, actor=actor, limit=limit)
        return [AuditView.model_validate(e.model_dump()) for e in found]

    # -- intake and feeds --------------------------------------------------------------------
    async def dead_letters(
        self, *, topic: str | None = None, limit: int = 100
    ) -> list[DeadLetterView]:
        query = sa.select(DEAD_LETTERS).order_by(DEAD_LETTERS.c.id.desc()).limit(limit)
        if topic:
            query = query.where(DEAD_LETTERS.c.topic == topic)
        async with self.engine.connect() as conn:
            return _views(DeadLetterView, (await conn.execute(query)).all())

    async def feeds(self) -> list[FeedView]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(FEEDS).order_by(FEEDS.c.feed_id))).all()
            held = await held_feeds(conn)
        return [
            FeedView.model_validate(
                {**r._mapping, "url": self._url(r.url), "held": held.get(r.feed_id)}
            )
            for r in rows
        ]

    def _url(self, stored: str) -> str:
        """A feed's URL opened, to be shown masked; sealed it stays without the vault."""
        vault = self.store.vault
        if vault is None or not vault.opens(stored):
            return stored
        return vault.open_text(stored)

    # -- one entity ----------------------------------------------------------------------------
    async def history(self, entity: str) -> History:
        """Every event, command, UCaaS call and result event of one entity, oldest first."""
        async with self.engine.connect() as conn:
            commands = _views(
                CommandView,
                (
                    await conn.execute(
                        sa.select(OUTBOX).where(OUTBOX.c.entity == entity).order_by(OUTBOX.c.id)
                    )
                ).all(),
            )
            calls = _views(
                CallView,
                (
                    await conn.execute(
                        sa.select(CALLS).where(CALLS.c.entity == entity).order_by(CALLS.c.id)
                    )
                ).all(),
            )
            event_ids = {c.event_id for c in commands if c.event_id}
            found = external_of(entity)
            about: list[sa.ColumnElement[bool]] = (
                [INBOX.c.event_id.in_(event_ids)] if event_ids else []
            )
            if found is not None and found[0] in ("user", "customer"):
                _, tenant, external = found
                about.append(
                    sa.and_(INBOX.c.subject == external, INBOX.c.tenant == (tenant or external))
                )
            events = (
                _views(
                    EventView,
                    (
                        await conn.execute(
                            sa.select(INBOX).where(sa.or_(*about)).order_by(INBOX.c.received_at)
                        )
                    ).all(),
                )
                if about
                else []
            )
            mappings: list[MappingView] = []
            if found is not None:
                kind, tenant, external = found
                query = sa.select(MAPPING).where(MAPPING.c.kind.like(f"{kind}%"))
                if external is not None:
                    query = query.where(MAPPING.c.external_id == external)
                if tenant is not None:
                    query = query.where(MAPPING.c.tenant == tenant)
                mappings = _views(MappingView, (await conn.execute(query)).all())
            results = [
                ResultView(
                    event_id=r.event_id,
                    type=r.type,
                    command_id=r.command_id,
                    topic=r.topic,
                    at=r.created_at,
                    published=r.published_at is not None,
                    published_at=r.published_at,
                    data=r.cloudevent.get("data") if isinstance(r.cloudevent, dict) else None,
                )
                for r in await conn.execute(
                    sa.select(RESULTS).where(RESULTS.c.subject == entity).order_by(RESULTS.c.id)
                )
            ]
        return History(
            entity=entity,
            events=events,
            commands=commands,
            calls=calls,
            mappings=mappings,
            results=results,
        )

    async def find(self, query: str) -> list[Match]:
        """The entities (at most 20) a person's e-mail or employee id, a company's CRM id
        or name, or a meeting's feed id, UID or key find: what `history` then tells."""
        async with self.engine.connect() as conn:
            return await entity_search.find(conn, query)

    # -- over time -------------------------------------------------------------------------------
    async def throughput(self, *, minutes: int = 60) -> list[Bucket]:
        """Per minute over the last `minutes`: events taken, commands done or parked dead,
        UCaaS calls. Counted in Python: one bucketing for SQLite and PostgreSQL."""
        now = utcnow()
        since = now - timedelta(minutes=minutes)
        start = since.replace(second=0, microsecond=0)
        buckets = {
            start + timedelta(minutes=i): Bucket(minute=start + timedelta(minutes=i))
            for i in range(minutes + 1)
        }

        def bucket(at: datetime) -> Bucket | None:
            return buckets.get(at.replace(second=0, microsecond=0))

        async with self.engine.connect() as conn:
            for (at,) in await conn.execute(
                sa.select(INBOX.c.received_at).where(INBOX.c.received_at >= since)
            ):
                if (b := bucket(at)) is not None:
                    b.events += 1
            for at, status in await conn.execute(
                sa.select(OUTBOX.c.updated_at, OUTBOX.c.status).where(
                    OUTBOX.c.updated_at >= since,
                    OUTBOX.c.status.in_((CommandStatus.DONE.value, CommandStatus.DEAD.value)),
                )
            ):
                if (b := bucket(at)) is not None:
                    if status == CommandStatus.DONE.value:
                        b.commands_done += 1
                    else:
                        b.commands_failed += 1
            for (at,) in await conn.execute(sa.select(CALLS.c.at).where(CALLS.c.at >= since)):
                if (b := bucket(at)) is not None:
                    b.calls += 1
        return [buckets[k] for k in sorted(buckets)]

    async def calls(self, *, minutes: int = 60) -> CallCounts:
        """UCaaS calls of the last `minutes` by HTTP status ('error': no answer)."""
        since = utcnow() - timedelta(minutes=minutes)
        async with self.engine.connect() as conn:
            counted = await _count_by(conn, CALLS.c.status, CALLS.c.at >= since)
        return CallCounts(
            since=since,
            by_status={("error" if k == "None" else k): n for k, n in counted.items()},
        )

    async def recent_failures(self, *, limit: int = 20) -> list[Failure]:
        """Dead commands, dead letters and failing feeds, newest first, with their reasons."""
        failures = [
            Failure(
                what="command",
                id=f"#{c.id} {c.kind} {c.entity}",
                reason=f"{c.last_error_code or ''} {c.last_error or ''}".strip() or "dead",
                at=c.updated_at,
                command_id=c.id,
            )
            for c in await self.commands(status=CommandStatus.DEAD.value, limit=limit)
        ]
        failures += [
            Failure(
                what="dead_letter",
                id=f"{d.topic}[{d.partition}]@{d.offset}",
                reason=f"{d.error}: {d.reason}",
                at=d.at,
            )
            for d in await self.dead_letters(limit=limit)
        ]
        failures += [
            Failure(
                what="feed",
                id=f.feed_id,
                reason=f.last_error or "failed",
                at=f.last_fetch_at,
            )
            for f in await self.feeds()
            if f.last_status == "failed" and not f.removed
        ]
        failures.sort(key=lambda f: f.at or utcnow(), reverse=True)
        return failures[:limit]
