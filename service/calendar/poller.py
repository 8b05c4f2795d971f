"""The feed poller: fetch each due feed, expand it, diff it, and queue the meeting changes.

One feed at a time per task, a few feeds at once. A feed that fails (HTTP error, not
iCalendar, truncated, too many events or occurrences, too slow to expand) is recorded with
its reason and tried again after a growing wait; its meetings are left alone, and the
other feeds go on. An event that cannot be used is skipped (logged, counted, its UID and
reason on the feed's row) and its meetings kept as they were; the rest of the feed is
planned. Parsing runs in a worker thread, bounded by the size and count caps.

The window moves on with time: a feed is fetched without its validators (so in full, and
expanded again) when this process has not expanded it for `REEXPAND_S`, else the
occurrences that come into the window while its server answers 304 are never scheduled.
Between those, a 200 whose body hashes as the last one planned (a server without
validators) is not parsed. A version that would cancel many meetings at once has its
cancels held for approval (holds.py, guard.py).
A fetch's result is dropped when the feed was removed or redefined while it was in flight,
or when its claim was lost (checked, and the row locked, in the transaction that would
write it).

A claim is leased for `LEASE_S` and renewed every `RENEW_S` while its poll runs, so a
process killed mid-poll holds its feeds back for seconds, not for a fetch timeout. Any
error in a poll, the writing of its result included (a deadlock, a lost connection), is
recorded on the feed like a fetch failure and retried on the same schedule: a poll task
never ends with an exception nobody sees while its feed waits for its lease to run out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.calendar.fetch import FeedError, FeedFetcher, FetchLimits
from connectors.calendar.ics import ParsedFeed, ParseLimits, parse_feed
from service.calendar import holds, owners, registry, skipped
from service.calendar.guard import CancelGuard
from service.calendar.registry import FeedLease, FeedRegistry
from service.calendar.translate import FeedState, MeetingRules
from service.domain.feeds import feed_entity
from service.observability import metrics
from service.observability.log_context import log_context
from service.outbox.states import SavedState
from service.outbox.tables import FEEDS, utcnow
from service.outbox.unit_of_work import Accepted, EventRecord, UnitOfWork
from service.settings import CalendarSettings

log = logging.getLogger("ucaas_sync.calendar")

# How long an expansion stands in for the feed while its server answers 304: the window
# has moved on by then, and occurrences have come into it.
REEXPAND_S = 6 * 3600.0
# A claim's lease and how often a running poll renews it: the lease outlives a few missed
# renewals (a busy event loop, a slow database), and is all a dead poller holds a feed for.
LEASE_S = 15.0
RENEW_S = 4.0


@dataclass
class PollStats:
    fetches: Counter[str] = field(default_factory=Counter)  # ok, unchanged, failed, superseded
    commands: int = 0
    parses: int = 0  # bodies parsed and expanded
    held: int = 0  # versions held by the mass-cancel guard
    last_errors: dict[str, str] = field(default_factory=dict)


def rules_of(settings: CalendarSettings) -> MeetingRules:
    return MeetingRules(
        include_all_day=settings.include_all_day,
        max_participants=settings.max_participants,
        max_duration_min=settings.max_duration_min,
    )


def limits_of(settings: CalendarSettings) -> ParseLimits:
    return ParseLimits(
        max_events=settings.max_events,
        max_occurrences=settings.max_occurrences,
        max_rule_steps=settings.max_rule_steps,
        max_seconds=settings.max_parse_s,
    )


class FeedPoller:
    lease_s = LEASE_S
    renew_s = RENEW_S

    def __init__(
        self,
        registry_: FeedRegistry,
        settings: CalendarSettings,
        *,
        uow: UnitOfWork,
        fetcher: FeedFetcher | None = None,
    ) -> None:
        self.registry = registry_
        self.uow = uow  # the meeting changes, the feed's state and its fetch, in one go
        self.settings = settings
        self.fetcher = fetcher or FeedFetcher(
            FetchLimits(
                timeout_s=settings.timeout_s,
                max_bytes=settings.max_bytes,
                max_redirects=settings.max_redirects,
                allow_private=settings.allow_private_addresses,
            )
        )
        self.limits = limits_of(settings)
        self.rules = rules_of(settings)
        self.guard = CancelGuard.of(settings)
        self.stats = PollStats()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()  # a poll is done: its feed's next fetch is known
        self._running: set[asyncio.Task[None]] = set()
        self._expanded: dict[str, datetime] = {}  # feed id -> when last expanded here

    async def run(self) -> None:
        await self.load_config()
        self._stopping.clear()
        while not self._stopping.is_set():
            self._wake.clear()
            await self.poll_due()
            idle = await self._idle_s()
            stopping = asyncio.ensure_future(self._stopping.wait())
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    (stopping, woken), timeout=idle, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopping.cancel()
                woken.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def stop(self) -> None:
        self._stopping.set()

    async def aclose(self) -> None:
        await self.fetcher.aclose()

    async def load_config(self) -> None:
        if self.settings.feeds_file is not None:
            feeds = registry.load_feeds_file(self.settings.feeds_file)
            await self.registry.register_all(feeds, source="config")

    async def poll_due(self) -> int:
        """Start polling the feeds that are due (as many as there are free slots)."""
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            return 0
        try:
            claimed = await self.registry.claim_due(free, self.lease_s)
        except Exception:
            log.exception("could not claim due feeds")
            return 0
        for claim in claimed:
            task = asyncio.create_task(self.poll(claim))
            self._running.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()
        # `poll` reports its own errors; anything else is said here, not lost with the task.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("a feed poll ended with %s", _reason(exc), exc_info=exc)

    async def poll_all_now(self) -> None:
        """Poll every due feed and wait for them (tests, `ucaas-sync poll`)."""
        await self.poll_due()
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
            await self.poll_due()

    async def _idle_s(self) -> float:
        if len(self._running) >= self.settings.concurrency:
            return 0.2
        due = await self.registry.next_due()
        if due is None:
            return 5.0
        return min(5.0, max(0.05, (due - utcnow()).total_seconds()))

    async def poll(self, claim: FeedLease) -> None:
        """Poll one claimed feed, its lease renewed meanwhile; every error is recorded on
        the feed (retried after the failure backoff) and logged."""
        feed = claim.feed
        writing = asyncio.Lock()  # renewals and the poll's own writes, one at a time
        with log_context(feed_id=feed.feed_id):
            keeping = asyncio.create_task(self._keep(claim, writing))
            try:
                await self._poll(claim, writing)
            except Exception as exc:
                reason = _reason(exc)
                # A database error's text holds the statement's parameters (a feed's URL
                # may carry its secret): its traceback is not logged.
                database = isinstance(exc, sa.exc.StatementError)
                log.error(
                    "feed %s: poll failed: %s",
                    feed.feed_id,
                    reason,
                    exc_info=None if database else exc,
                )
                async with writing:
                    await self._failed(claim, reason)
            finally:
                async with writing:  # never cancelled inside a database call
                    keeping.cancel()

    async def _keep(self, claim: FeedLease, writing: asyncio.Lock) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            async with writing:
                try:
                    kept = await self.registry.renew(claim, self.lease_s)
                except Exception as exc:  # the next renewal may get through
                    log.warning("feed %s: lease not renewed: %s", claim.feed.feed_id, _reason(exc))
                    continue
            if not kept:
                log.info("feed %s: claim lost; this poll writes nothing", claim.feed.feed_id)
                return

    def _count(self, outcome: str) -> None:
        self.stats.fetches[outcome] += 1
        metrics.feed_polled(outcome)

    async def _poll(self, claim: FeedLease, writing: asyncio.Lock) -> None:
        feed, etag, last_modified = claim.feed, claim.etag, claim.last_modified
        now = utcnow()
        interval = feed.interval_s or self.settings.interval_s
        next_in = interval * (1 + self.settings.jitter * random.random())
        expanded = self._expanded.get(feed.feed_id)
        moved = expanded is None or now - expanded >= timedelta(seconds=REEXPAND_S)
        if moved:
            etag = last_modified = None  # in full: the window has moved on
        try:
            got = await self.fetcher.fetch(feed.url, etag=etag, last_modified=last_modified)
            parsed: ParsedFeed | None = None
            digest = None if got.not_modified else body_digest(got.body)
            # A 200 with the body planned last time (a server without validators): no parse.
            if digest is not None and (moved or digest != claim.body_sha256):
                self.stats.parses += 1
                parsed = await asyncio.to_thread(
                    parse_feed,
                    got.body,
                    start=now,
                    end=now + timedelta(days=self.settings.horizon_days),
                    limits=self.limits,
                )
        except FeedError as exc:
            async with writing:
                await self._failed(claim, exc.reason)
            return
        if parsed is None:
            async with writing, self.uow.transaction() as tx:
                if not await _still_current(tx.conn, claim, now):
                    self._count("superseded")
                    return
                await registry.fetched(
                    tx.conn,
                    feed,
                    status="unchanged",
                    etag=got.etag or etag,
                    last_modified=got.last_modified or last_modified,
                    occurrences=None,
                    next_in_s=next_in,
                    now=now,
                )
            self._count("unchanged")
            return
        async with writing:
            commands = await self._apply(
                claim, parsed, digest or "", got.etag, got.last_modified, next_in
            )
        if commands is None:
            log.info("feed %s was removed or changed while it was fetched", feed.feed_id)
            self._count("superseded")
            return
        self._expanded[feed.feed_id] = now
        self._count("ok")
        skipped.report(feed.feed_id, parsed.skipped)
        self.stats.commands += commands
        self.stats.last_errors.pop(feed.feed_id, None)

    async def _apply(
        self,
        claim: FeedLease,
        parsed: ParsedFeed,
        digest: str,
        etag: str | None,
        last_modified: str | None,
        next_in: float,
    ) -> int | None:
        """Queue the meeting changes; the number of commands, None if the feed has been
        removed or redefined meanwhile, or the claim lost (nothing is written then)."""
        feed = claim.feed
        now = utcnow()
        entity = feed_entity(feed.feed_id)
        async with self.uow.transaction() as tx:
            conn = tx.conn
            if not await _still_current(conn, claim, now):
                return None
            state = (await tx.states.load({entity: FeedState})).get(entity)
            known = state if isinstance(state, FeedState) else None
            taken = await owners.take(conn, feed, parsed.occurrences, now)
            if taken.attended or taken.elsewhere:
                metrics.feed_events_not_scheduled(taken.attended, taken.elsewhere)
                log.info(
                    "feed %s: %d occurrence(s) its owner only attends, %d another feed has",
                    feed.feed_id,
                    taken.attended,
                    taken.elsewhere,
                )
            guarded = await holds.guarded_diff(
                conn,
                feed,
                taken.occurrences,
                known,
                now,
                self.rules,
                self.guard,
                empty=not parsed.occurrences and not parsed.skipped,
                skipped=parsed.skipped_uids,
            )
            translation = guarded.translation
            if translation.commands:
                record = EventRecord(
                    source=holds.feed_source(feed.feed_id),
                    event_id=f"{now.isoformat()}:{digest[:16]}",
                    type="calendar.feed.polled",
                    subject=feed.feed_id,
                    tenant=feed.tenant,
                    fingerprint=digest,
                )
                outcome = f"{len(translation.commands)} meeting change(s)"
                if guarded.newly_held:
                    outcome += f", {guarded.newly_held} cancel(s) held for approval"
                accepted = Accepted(record, translation.commands, outcome, now)
                await tx.inbox.add([accepted])
                await tx.commands.add([accepted])
            if translation.state is not None:
                kind = FeedState.entity_kind
                await tx.states.save(
                    [SavedState(entity, kind, feed.tenant, translation.state, "poll", now)]
                )
            await registry.fetched(
                conn,
                feed,
                status="ok",
                etag=etag,
                last_modified=last_modified,
                occurrences=len(parsed.occurrences),
                next_in_s=next_in,
                now=now,
                body_sha256=digest,
                skipped=parsed.skipped,
            )
        if guarded.newly_held:
            self.stats.held += 1
            metrics.feed_version_held()
            log.warning("feed %s: held for approval: %s", feed.feed_id, guarded.reason)
        return len(translation.commands)

    async def _failed(self, claim: FeedLease, reason: str) -> None:
        feed = claim.feed
        interval = feed.interval_s or self.settings.interval_s
        self._count("failed")
        self.stats.last_errors[feed.feed_id] = reason
        try:
            wait = await self.registry.failed(
                feed, reason, self.settings.retry_cap_s, interval, claim
            )
        except Exception as exc:  # its lease runs out soon: the feed is polled again then
            log.error("feed %s: could not record its failure: %s", feed.feed_id, _reason(exc))
            return
        if wait is None:
            log.warning("feed %s failed (%s); its claim was lost meanwhile", feed.feed_id, reason)
            return
        log.warning("feed %s failed: %s; again in %.0f s", feed.feed_id, reason, wait)


def body_digest(body: bytes) -> str:
    """What a fetched body is known by (the feed row's body_sha256): a 200 whose body
    hashes as the last one planned, from a server without validators, is not parsed."""
    return hashlib.sha256(body).hexdigest()


def _reason(exc: BaseException) -> str:
    """One line for the feed's last_error: a database error without its statement and
    parameters, which could carry a feed URL's secret."""
    if isinstance(exc, sa.exc.StatementError):
        cause = exc.orig if exc.orig is not None else exc
        lines = str(cause).strip().splitlines() or [""]
        return f"database error: {type(cause).__name__}: {lines[0]}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


async def _still_current(conn: AsyncConnection, claim: FeedLease, now: datetime) -> bool:
    """Whether the feed is still registered as it was claimed, and the claim still this
    poll's, locking its row for the rest of the transaction (the first write: SQLite takes
    its write lock here too), so a removal waits for this transaction, or this one sees it
    and writes nothing."""
    feed = claim.feed
    done = await conn.execute(
        FEEDS.update()
        .where(
            FEEDS.c.feed_id == feed.feed_id,
            FEEDS.c.next_fetch_at == claim.until,
            FEEDS.c.removed.is_(False),
            # the row's sealed value as claimed: Fernet's random IV gives a URL registered
            # again (or sealed again by `keys rotate`) a new value, so no opening is needed
            FEEDS.c.url == claim.stored_url,
            FEEDS.c.organizer_email == feed.organizer_email,
            FEEDS.c.tenant == feed.tenant,
        )
        .values(updated_at=now)
    )
    return bool(done.rowcount)
