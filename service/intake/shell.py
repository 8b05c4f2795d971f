"""Intake: CloudEvents in, commands out, in one transaction per batch.

For each envelope: map it to a domain event (an invalid one is reported, not stored),
read the entity's desired state, translate (pure), hold a deprovisioning burst for
approval, then write the inbox row, the commands and the new state. A duplicate event id
writes nothing. Only after the transaction commits may the consumer commit the offsets.

A batch costs the same few statements whatever its size (reads of the states, the inbox
and the guard's counts; one write per table): round trips to the database, not Python,
were what limited the intake.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypeVar

import orjson
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.contextvars import bound_contextvars

from connectors.events.cloudevents import Envelope
from service.calendar import registry as calendar_registry
from service.calendar.poller import feed_entity
from service.calendar.translate import FeedState, cancel_all
from service.domain.commands import DEPROVISIONING, Command, customer_entity, user_entity
from service.domain.events import (
    CompanyEvent,
    DomainEvent,
    FeedEvent,
    HrEvent,
    InvalidEventError,
    to_domain,
)
from service.domain.translation import Translation
from service.intake.crm import CompanyState, translate_company, translate_purchase
from service.intake.guard import holds as guard_holds
from service.intake.hr import UserState, translate_hr
from service.intake.licences import LicencePolicy
from service.intake.states import Saved, load_states, save_states
from service.observability import metrics
from service.outbox.sql import chunks
from service.outbox.tables import OUTBOX, CommandStatus, utcnow
from service.outbox.unit_of_work import (
    Accepted,
    EventRecord,
    insert_command_rows,
    insert_inbox_rows,
    taken_ids,
)
from service.settings import IntakeSettings


@dataclass(frozen=True)
class Taken:
    """What became of one envelope."""

    outcome: Literal["accepted", "duplicate", "invalid"]
    commands: int = 0
    note: str | None = None
    error: str | None = None
    reason: str | None = None


def entity_of(event: DomainEvent) -> tuple[str, str]:
    """(entity key, kind of state) the event belongs to."""
    if isinstance(event, HrEvent):
        return user_entity(event.tenant, event.employee_id), "user"
    if isinstance(event, FeedEvent):
        return feed_entity(event.feed.feed_id), "feed"
    return customer_entity(event.crm_id), "company"


def tenant_of(event: DomainEvent) -> str:
    if isinstance(event, HrEvent):
        return event.tenant
    if isinstance(event, FeedEvent):
        return event.feed.tenant
    return event.crm_id


def translate(
    event: DomainEvent,
    state: BaseModel | None,
    policy: LicencePolicy,
    settings: IntakeSettings,
    now: datetime,
) -> Translation:
    """The one translation `take` and the dry-run `plan` share."""
    if isinstance(event, HrEvent):
        return translate_hr(event, _as(UserState, state), policy, now=now)
    if isinstance(event, CompanyEvent):
        return translate_company(event, _as(CompanyState, state), settings.close_status)
    if isinstance(event, FeedEvent):
        if event.kind == "registered":
            return Translation(note="feed registered: fetched soon")
        return cancel_all(event.feed, _as(FeedState, state), now)
    return translate_purchase(event, _as(CompanyState, state))


S = TypeVar("S", bound=BaseModel)


def _as(model: type[S], state: BaseModel | None) -> S | None:
    return state if isinstance(state, model) else None


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


@dataclass
class _Planned:
    """One new event of a batch: what it writes."""

    tenant: str
    translation: Translation
    accepted: Accepted


class Intake:
    def __init__(
        self,
        engine: AsyncEngine,
        policy: LicencePolicy,
        settings: IntakeSettings,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.settings = settings
        self.on_commit = on_commit

    async def take(self, envelopes: Sequence[Envelope]) -> list[Taken]:
        """Accept a batch in one transaction; one answer per envelope, in order."""
        results: list[Taken] = []
        parsed: list[tuple[int, Envelope, DomainEvent]] = []
        for index, envelope in enumerate(envelopes):
            try:
                parsed.append((index, envelope, to_domain(envelope)))
            except InvalidEventError as exc:
                results.append(Taken("invalid", error=exc.error, reason=exc.reason))
                continue
            results.append(Taken("accepted"))  # replaced below
        if not parsed:
            _count(envelopes, results)
            return results
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.engine.begin() as conn:
                    taken = await self._take_batch(conn, parsed)
                break
            except _Raced:
                if attempt == ATTEMPTS:
                    raise
        for index, answer in taken.items():
            results[index] = answer
        _count(envelopes, results)  # committed: a rolled back batch comes again, uncounted
        if any(t.commands for t in taken.values()) and self.on_commit is not None:
            self.on_commit()
        return results

    async def _take_batch(
        self, conn: AsyncConnection, parsed: Sequence[tuple[int, Envelope, DomainEvent]]
    ) -> dict[int, Taken]:
        """A constant number of statements whatever the batch's size: the states and the
        inbox read at once, the events translated in order in memory (an entity's state
        carried from one to the next), then each table written in one statement."""
        states = await load_states(conn, dict(entity_of(e) for _, _, e in parsed))
        seen = await taken_ids(conn, ((env.source, env.id) for _, env, _ in parsed))
        taken: dict[int, Taken] = {}
        planned: list[_Planned] = []
        saved: list[Saved] = []
        for index, envelope, event in parsed:
            if (envelope.source, envelope.id) in seen:
                taken[index] = Taken("duplicate", note="event id already taken")
                continue
            seen.add((envelope.source, envelope.id))
            now = utcnow()
            if isinstance(event, FeedEvent):  # a duplicate neither registers nor removes
                event = await self._feed_event(conn, event, now)
            entity, kind = entity_of(event)
            with bound_contextvars(event_id=envelope.id, entity=entity):
                translation = translate(event, states.get(entity), self.policy, self.settings, now)
            tenant = tenant_of(event)
            outcome = "accepted" if translation.commands else (translation.note or "no change")
            record = _record(envelope, tenant)
            planned.append(
                _Planned(tenant, translation, Accepted(record, translation.commands, outcome, now))
            )
            if translation.state is not None:
                states[entity] = translation.state
                saved.append(Saved(entity, kind, tenant, translation.state, envelope.id, now))
            taken[index] = Taken("accepted", len(translation.commands), translation.note)
        accepted = await self._guard(conn, planned)
        written = await insert_inbox_rows(conn, accepted)
        if len(written) != len(accepted):
            raise _Raced
        await insert_command_rows(conn, accepted)
        await save_states(conn, saved)
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
            count = _deprovisioning(commands)
            if not count:
                accepted.append(plan.accepted)
                continue
            holds = guard_holds(
                commands,
                recent=recent[plan.tenant],
                threshold=self.settings.guard_threshold,
                window_s=self.settings.guard_window_s,
            )
            recent[plan.tenant] += count
            accepted.append(replace(plan.accepted, holds=holds))
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
        metrics.event_taken(envelope.source, envelope.type, taken.outcome)


async def recent_deprovisioning(
    conn: AsyncConnection, tenants: Iterable[str], since: datetime
) -> Counter[str]:
    """Each tenant's suspends and revokes accepted since then, in one query."""
    found: Counter[str] = Counter()
    for some in chunks(sorted(set(tenants))):
        rows = await conn.execute(
            sa.select(OUTBOX.c.tenant, sa.func.count())
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
