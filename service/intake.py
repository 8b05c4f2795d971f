"""Intake: CloudEvents in, commands out, in one transaction per batch.

For each envelope: map it to a domain event (an invalid one is reported, not stored),
read the entity's desired state, translate (pure), hold a deprovisioning burst for
approval, then write the inbox row, the commands and the new state. A duplicate event id
writes nothing. Only after the transaction commits may the consumer commit the offsets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import orjson
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.contextvars import bound_contextvars

from connectors.events.cloudevents import Envelope
from service import metrics
from service.calendar import registry as calendar_registry
from service.calendar.poller import feed_entity
from service.calendar.translate import FeedState, cancel_all
from service.config import IntakeSettings
from service.domain.commands import DEPROVISIONING, customer_entity, user_entity
from service.domain.events import (
    CompanyEvent,
    DomainEvent,
    FeedEvent,
    HrEvent,
    InvalidEventError,
    to_domain,
)
from service.entity_state import load_state, save_state
from service.outbox.store import OUTBOX
from service.outbox.tables import Status, utcnow
from service.outbox.unit_of_work import EventRecord, insert_commands, insert_inbox
from service.translate import Translation
from service.translate.crm import CompanyState, translate_company, translate_purchase
from service.translate.guard import holds as guard_holds
from service.translate.hr import UserState, translate_hr
from service.translate.policy import LicencePolicy


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
        written = 0
        async with self.engine.begin() as conn:
            batch = _Batch(conn)
            for index, envelope, event in parsed:
                with bound_contextvars(event_id=envelope.id, entity=entity_of(event)[0]):
                    taken = await self._take_one(batch, envelope, event)
                results[index] = taken
                written += taken.commands
        _count(envelopes, results)  # committed: a rolled back batch comes again, uncounted
        if written and self.on_commit is not None:
            self.on_commit()
        return results

    async def _take_one(self, batch: _Batch, envelope: Envelope, event: DomainEvent) -> Taken:
        now = utcnow()
        if isinstance(event, FeedEvent):
            event = await self._feed_event(batch, event, now)
        entity, kind = entity_of(event)
        state = await batch.state(entity, kind)
        translation = translate(event, state, self.policy, self.settings, now)
        tenant = tenant_of(event)
        holds: dict[int, str] = {}
        if any(c.kind in DEPROVISIONING for c in translation.commands):
            recent = await batch.recent_deprovisioning(tenant, self.settings.guard_window_s, now)
            holds = guard_holds(
                translation.commands,
                recent=recent,
                threshold=self.settings.guard_threshold,
                window_s=self.settings.guard_window_s,
            )
        record = EventRecord(
            source=envelope.source,
            event_id=envelope.id,
            type=envelope.type,
            subject=envelope.subject,
            tenant=tenant,
            fingerprint=fingerprint(envelope),
        )
        outcome = "accepted" if translation.commands else (translation.note or "no change")
        count = len(translation.commands)
        if not await insert_inbox(batch.conn, record, count, outcome, now):
            return Taken("duplicate", note="event id already taken")
        await insert_commands(batch.conn, record, translation.commands, holds, now)
        batch.count_deprovisioning(tenant, translation.commands)
        if translation.state is not None:
            await batch.save(entity, kind, tenant, translation.state, envelope.id, now)
        return Taken("accepted", count, translation.note)

    @staticmethod
    async def _feed_event(batch: _Batch, event: FeedEvent, now: datetime) -> FeedEvent:
        """Register or remove the feed; a removal names the feed as it was registered (the
        event may carry only its id), so its meetings are cancelled for the right tenant."""
        if event.kind == "registered":
            await calendar_registry.register(batch.conn, event.feed, source="event", now=now)
            return event
        known = await calendar_registry.remove(batch.conn, event.feed.feed_id, now)
        return FeedEvent("removed", known) if known is not None else event


def _count(envelopes: Sequence[Envelope], results: Sequence[Taken]) -> None:
    for envelope, taken in zip(envelopes, results, strict=True):
        metrics.event_taken(envelope.source, envelope.type, taken.outcome)


class _Batch:
    """One transaction's reads and writes, with what it has seen kept at hand."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._states: dict[str, BaseModel | None] = {}
        self._recent: dict[str, int] = {}

    async def state(self, entity: str, kind: str) -> BaseModel | None:
        if entity not in self._states:
            self._states[entity] = await load_state(self.conn, entity, kind)
        return self._states[entity]

    async def save(
        self, entity: str, kind: str, tenant: str, state: BaseModel, event_id: str, now: datetime
    ) -> None:
        await save_state(self.conn, entity, kind, tenant, state, event_id, now)
        self._states[entity] = state

    async def recent_deprovisioning(self, tenant: str, window_s: float, now: datetime) -> int:
        if tenant not in self._recent:
            since = now - timedelta(seconds=window_s)
            self._recent[tenant] = int(
                await self.conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(OUTBOX)
                    .where(
                        OUTBOX.c.tenant == tenant,
                        OUTBOX.c.created_at >= since,
                        OUTBOX.c.kind.in_([k.value for k in DEPROVISIONING]),
                        OUTBOX.c.status != Status.DROPPED.value,
                        OUTBOX.c.approved_at.is_(None),  # an approved burst is not counted again
                    )
                )
                or 0
            )
        return self._recent[tenant]

    def count_deprovisioning(self, tenant: str, commands: Sequence[Any]) -> None:
        if tenant in self._recent:
            self._recent[tenant] += sum(1 for c in commands if c.kind in DEPROVISIONING)
