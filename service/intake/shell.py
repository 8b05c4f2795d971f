"""Intake: CloudEvents in, commands out, in one transaction per batch.

For each envelope: map it to a domain event (an invalid one is reported, not stored),
read the entity's desired state, translate (pure), hold a deprovisioning burst for
approval, then write the inbox row, the commands and the new state through the unit of
work. A duplicate event id writes nothing. Only after the transaction commits may the
consumer commit the offsets.

A batch costs the same few statements whatever its size (reads of the states, the inbox
and the guard's counts; one write per table): round trips to the database, not Python,
were what limited the intake.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from structlog.contextvars import bound_contextvars

from connectors.events.cloudevents import Envelope
from service.calendar import registry as calendar_registry
from service.domain.commands import DEPROVISIONING, Command
from service.domain.events import DomainEvent, FeedEvent
from service.domain.translation import Translation
from service.intake.events import KNOWN_TYPES, Context, EventType, row_of
from service.intake.guard import approvals as guard_approvals
from service.intake.guard import people
from service.intake.licences import LicencePolicy
from service.intake.mapping import InvalidEventError
from service.observability import metrics
from service.outbox.sql import chunks
from service.outbox.states import SavedState
from service.outbox.tables import OUTBOX, CommandStatus, utcnow
from service.outbox.unit_of_work import Accepted, EventRecord, Transaction, UnitOfWork
from service.settings import IntakeSettings


@dataclass(frozen=True)
class Taken:
    """What became of one envelope."""

    outcome: Literal["accepted", "duplicate", "invalid"]
    commands: int = 0
    note: str | None = None
    error: str | None = None
    reason: str | None = None


def fingerprint(envelope: Envelope) -> str:
    """The content, whatever the id: to see the same event sent again under a new id."""
    body = orjson.dumps(
        {"type": envelope.type, "subject": envelope.subject, "data": envelope.data},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(body).hexdigest()


class _Raced(Exception):
    """Another transaction took some of the batch's event ids after this one looked."""


# A race is settled once the other transaction has committed: the next attempt sees it.
ATTEMPTS = 3


@dataclass(frozen=True)
class _Parsed:
    index: int
    envelope: Envelope
    event: DomainEvent
    row: EventType[Any, Any, Any]


@dataclass
class _Planned:
    """One new event of a batch: what it writes."""

    tenant: str
    translation: Translation
    accepted: Accepted


class Intake:
    def __init__(self, uow: UnitOfWork, policy: LicencePolicy, settings: IntakeSettings) -> None:
        self.uow = uow
        self.policy = policy
        self.settings = settings

    async def take(self, envelopes: Sequence[Envelope]) -> list[Taken]:
        """Accept a batch in one transaction; one answer per envelope, in order."""
        results: list[Taken] = []
        parsed: list[_Parsed] = []
        for index, envelope in enumerate(envelopes):
            try:
                row = row_of(envelope)
                parsed.append(_Parsed(index, envelope, row.event(envelope), row))
            except InvalidEventError as exc:
                results.append(Taken("invalid", error=exc.error, reason=exc.reason))
                continue
            results.append(Taken("accepted"))  # replaced below
        if not parsed:
            _count(envelopes, results)
            return results
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.uow.transaction() as tx:
                    taken = await self._take_batch(tx, parsed)
                break
            except _Raced:
                if attempt == ATTEMPTS:
                    raise
        for index, answer in taken.items():
            results[index] = answer
        _count(envelopes, results)  # committed: a rolled back batch comes again, uncounted
        return results

    async def _take_batch(self, tx: Transaction, parsed: Sequence[_Parsed]) -> dict[int, Taken]:
        """A constant number of statements whatever the batch's size: the states and the
        inbox read at once, the events translated in order in memory (an entity's state
        carried from one to the next), then each table written in one statement."""
        states = await tx.states.load({p.event.entity: p.row.state for p in parsed})
        seen = await tx.inbox.taken((p.envelope.source, p.envelope.id) for p in parsed)
        taken: dict[int, Taken] = {}
        planned: list[_Planned] = []
        saved: list[SavedState] = []
        for p in parsed:
            envelope, event = p.envelope, p.event
            if (envelope.source, envelope.id) in seen:
                taken[p.index] = Taken("duplicate", note="event id already taken")
                continue
            seen.add((envelope.source, envelope.id))
            now = utcnow()
            if isinstance(event, FeedEvent):  # a duplicate neither registers nor removes
                event = await self._feed_event(tx.conn, event, now)
            entity = event.entity
            with bound_contextvars(event_id=envelope.id, entity=entity):
                context = Context(self.policy, self.settings, now)
                translation = p.row.translation(event, states.get(entity), context)
            outcome = "accepted" if translation.commands else (translation.note or "no change")
            record = _record(envelope, event.tenant)
            accepted = Accepted(record, translation.commands, outcome, now)
            planned.append(_Planned(event.tenant, translation, accepted))
            if translation.state is not None:
                states[entity] = translation.state
                kind = p.row.state.entity_kind
                saved.append(
                    SavedState(entity, kind, event.tenant, translation.state, envelope.id, now)
                )
            taken[p.index] = Taken("accepted", len(translation.commands), translation.note)
        accepted_all = await self._guard(tx.conn, planned)
        written = await tx.inbox.add(accepted_all)
        if len(written) != len(accepted_all):
            raise _Raced
        await tx.commands.add(accepted_all)
        await tx.states.save(saved)
        return taken

    async def _guard(self, conn: AsyncConnection, planned: Sequence[_Planned]) -> list[Accepted]:
        """Hold deprovisioning bursts for approval: each tenant's recent suspends and
        revokes counted once, then this batch's added in order."""
        tenants = {p.tenant for p in planned if _deprovisioning(p.translation.commands)}
        if not tenants:
            return [p.accepted for p in planned]
        since = planned[0].accepted.now - timedelta(seconds=self.settings.guard_window_s)
        recent = await recent_deprovisioning(conn, tenants, since)
        accepted = []
        for plan in planned:
            commands = plan.translation.commands
            count = people(commands)
            if not count:
                accepted.append(plan.accepted)
                continue
            held = guard_approvals(
                commands,
                recent=recent[plan.tenant],
                threshold=self.settings.guard_threshold,
                window_s=self.settings.guard_window_s,
            )
            recent[plan.tenant] += count
            accepted.append(replace(plan.accepted, approvals=held))
        return accepted

    @staticmethod
    async def _feed_event(conn: AsyncConnection, event: FeedEvent, now: datetime) -> FeedEvent:
        """Register or remove the feed; a removal names the feed as it was registered (the
        event may carry only its id), so its meetings are cancelled for the right tenant."""
        if event.kind == "registered":
            await calendar_registry.register(conn, event.feed, source="event", now=now)
            return event
        known = await calendar_registry.remove(conn, event.feed.feed_id, now)
        return FeedEvent("removed", known) if known is not None else event


def _record(envelope: Envelope, tenant: str) -> EventRecord:
    return EventRecord(
        source=envelope.source,
        event_id=envelope.id,
        type=envelope.type,
        subject=envelope.subject,
        tenant=tenant,
        fingerprint=fingerprint(envelope),
    )


def _deprovisioning(commands: Sequence[Command]) -> int:
    return sum(1 for c in commands if c.kind in DEPROVISIONING)


def _count(envelopes: Sequence[Envelope], results: Sequence[Taken]) -> None:
    for envelope, taken in zip(envelopes, results, strict=True):
        type_ = envelope.type if envelope.type in KNOWN_TYPES else "unknown"
        metrics.event_taken(envelope.source, type_, taken.outcome)


async def recent_deprovisioning(
    conn: AsyncConnection, tenants: Iterable[str], since: datetime
) -> Counter[str]:
    """Each tenant's people suspended or revoked by commands accepted since then, in one
    query."""
    found: Counter[str] = Counter()
    for some in chunks(sorted(set(tenants))):
        rows = await conn.execute(
            sa.select(OUTBOX.c.tenant, sa.func.count(sa.distinct(OUTBOX.c.entity)))
            .where(
                OUTBOX.c.tenant.in_(some),
                OUTBOX.c.created_at >= since,
                OUTBOX.c.kind.in_([k.value for k in DEPROVISIONING]),
                OUTBOX.c.status != CommandStatus.DROPPED.value,
                OUTBOX.c.approved_at.is_(None),  # an approved burst is not counted again
            )
            .group_by(OUTBOX.c.tenant)
        )
        found.update({tenant: int(n) for tenant, n in rows})
    return found
