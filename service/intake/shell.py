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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.events.cloudevents import Envelope
from service.calendar import registry as calendar_registry
from service.domain.commands import DEPROVISIONING, Command
from service.domain.events import DomainEvent, FeedEvent, HrEvent
from service.domain.translation import Translation
from service.intake.events import KNOWN_TYPES, Context, EventType, row_of
from service.intake.guard import approvals as guard_approvals
from service.intake.guard import people as people_deprovisioned
from service.intake.licences import LicencePolicy
from service.intake.lifecycle import UserState
from service.intake.mapping import InvalidEventError
from service.intake.people import People
from service.observability import metrics
from service.observability.log_context import log_context
from service.outbox.sql import chunks
from service.outbox.states import SavedState
from service.outbox.tables import OUTBOX, CommandStatus, utcnow
from service.outbox.unit_of_work import (
    Accepted,
    EventRecord,
    Transaction,
    UnitOfWork,
    Withdrawn,
    WithdrawRaced,
)
from service.outbox.vault import CredentialVault
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
    def __init__(
        self,
        uow: UnitOfWork,
        policy: LicencePolicy,
        settings: IntakeSettings,
        *,
        vault: CredentialVault | None = None,
    ) -> None:
        self.uow = uow
        self.policy = policy
        self.settings = settings
        self.vault = vault  # seals the feed URLs registered (None: kept as given, tests)

    async def take(self, envelopes: Sequence[Envelope]) -> list[Taken]:
        """Accept a batch in one transaction; one answer per envelope, in order."""
        results: list[Taken] = []
        parsed: list[_Parsed] = []
        for index, envelope in enumerate(envelopes):
            try:
                row = row_of(envelope)
                parsed.append(_Parsed(index, envelope, row.event(envelope, self.policy), row))
            except InvalidEventError as exc:
                results.append(Taken("invalid", error=exc.error, reason=exc.reason))
                continue
            results.append(Taken("accepted"))  # replaced below
        if not parsed:
            _count(envelopes, results)
            return results
        floor = None  # the batch's clock is at least this (a withdrawal that raced)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.uow.transaction() as tx:
                    taken = await self._take_batch(tx, parsed, floor)
                break
            except WithdrawRaced as raced:
                if attempt == ATTEMPTS:
                    raise
                floor = max(floor or raced.effective_at, raced.effective_at)
            except _Raced:
                if attempt == ATTEMPTS:
                    raise
        for index, answer in taken.items():
            results[index] = answer
        _count(envelopes, results)  # committed: a rolled back batch comes again, uncounted
        return results

    async def _take_batch(
        self, tx: Transaction, parsed: Sequence[_Parsed], floor: datetime | None = None
    ) -> dict[int, Taken]:
        """A constant number of statements whatever the batch's size: the states and the
        inbox read at once, the events translated in order in memory (an entity's state
        carried from one to the next), then each table written in one statement."""
        hr = [p.event for p in parsed if isinstance(p.event, HrEvent)]
        await tx.states.lock_people(k for e in hr for k in _person_keys(e, self.policy))
        states = await tx.states.load({p.event.entity: p.row.state for p in parsed})
        seen = await tx.inbox.taken((p.envelope.source, p.envelope.id) for p in parsed)
        people = await people_for(tx, self.policy, [p.event for p in parsed], states)
        taken: dict[int, Taken] = {}
        planned: list[_Planned] = []
        saved: list[SavedState] = []
        withdrawn: list[Withdrawn] = []
        for p in parsed:
            envelope, event = p.envelope, p.event
            if (envelope.source, envelope.id) in seen:
                taken[p.index] = Taken("duplicate", note="event id already taken")
                continue
            seen.add((envelope.source, envelope.id))
            now = max(utcnow(), floor) if floor is not None else utcnow()
            if isinstance(event, FeedEvent):  # a duplicate neither registers nor removes
                event = await self._feed_event(tx.conn, event, now)
            entity = event.entity
            with log_context(event_id=envelope.id, entity=entity):
                context = Context(self.policy, self.settings, now, people)
                translation = p.row.translation(event, states.get(entity), context)
            if translation.withdraw:
                lane = translation.entity or entity
                withdrawn.append(Withdrawn(lane, envelope.id, now))
                _withdraw_planned(planned, lane, now)
            outcome = "accepted" if translation.commands else (translation.note or "no change")
            record = _record(envelope, event.tenant)
            accepted = Accepted(record, translation.commands, outcome, now)
            planned.append(_Planned(event.tenant, translation, accepted))
            if translation.state is not None:
                states[entity] = translation.state
                if isinstance(translation.state, UserState):
                    people.add(entity, event.tenant, translation.state)
                kind = p.row.state.entity_kind
                saved.append(
                    SavedState(entity, kind, event.tenant, translation.state, envelope.id, now)
                )
            taken[p.index] = Taken("accepted", len(translation.commands), translation.note)
        accepted_all = await self._guard(tx.conn, planned)
        written = await tx.inbox.add(accepted_all)
        if len(written) != len(accepted_all):
            raise _Raced
        await tx.commands.withdraw(withdrawn)
        await tx.commands.add(accepted_all)
        await tx.states.save(saved)
        return taken

    async def _guard(self, conn: AsyncConnection, planned: Sequence[_Planned]) -> list[Accepted]:
        """Hold deprovisioning bursts for approval: each tenant's recent suspends and
        revokes counted once, then this batch's added in order."""
        tenants = {p.tenant for p in planned if _deprovisioning(p.accepted.commands)}
        if not tenants:
            return [p.accepted for p in planned]
        since = planned[0].accepted.now - timedelta(seconds=self.settings.guard_window_s)
        recent = await recent_deprovisioning(conn, tenants, since)
        accepted = []
        for plan in planned:
            commands = plan.accepted.commands
            count = people_deprovisioned(commands)
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

    async def _feed_event(
        self, conn: AsyncConnection, event: FeedEvent, now: datetime
    ) -> FeedEvent:
        """Register or remove the feed; a removal names the feed as it was registered (the
        event may carry only its id), so its meetings are cancelled for the right tenant."""
        if event.kind == "registered":
            await calendar_registry.register(
                conn, event.feed, source="event", now=now, vault=self.vault
            )
            return event
        known = await calendar_registry.remove(conn, event.feed.feed_id, now, self.vault)
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


async def people_for(
    tx: Transaction,
    policy: LicencePolicy,
    events: Sequence[DomainEvent],
    states: Mapping[str, BaseModel],
) -> People:
    """The people an unknown employee id among `events` may be (a rehire under a new id),
    or who share a leaver's UCaaS user: those the database has with their e-mail or
    employee number, and those of `states`."""
    found = People(policy.rehire_match)
    unknown = [
        e for e in events if isinstance(e, HrEvent) and (e.entity not in states or _may_suspend(e))
    ]
    if unknown:
        natural = [(e.tenant, e.profile.email) for e in unknown]
        numbered = "employee_number" in policy.rehire_match
        alternative = [
            (e.tenant, e.employee_number) for e in unknown if numbered and e.employee_number
        ]
        for entity, tenant, saved in await tx.states.matching(
            UserState.entity_kind, natural, alternative
        ):
            found.add(entity, tenant, UserState.model_validate(saved))
    tenants = {e.entity: e.tenant for e in events}
    for entity, state in states.items():
        if isinstance(state, UserState):
            found.add(entity, tenants[entity], state)
    return found


def _person_keys(event: HrEvent, policy: LicencePolicy) -> list[str]:
    """Who the person is whatever their employee id: their e-mail (their UCaaS user's),
    and their employee number when rehires are matched by it."""
    keys = [f"{event.tenant}/email/{event.profile.email}"]
    if event.employee_number and "employee_number" in policy.rehire_match:
        keys.append(f"{event.tenant}/number/{event.employee_number}")
    return keys


def _may_suspend(event: HrEvent) -> bool:
    """Whether the event may take its person's UCaaS user away (a leaver, a leave), which
    it does not do to a user another active person shares."""
    return (
        not event.active
        or event.kind in ("left", "leave_started")
        or event.out_of_scope is not None
    )


def _withdraw_planned(planned: list[_Planned], entity: str, now: datetime) -> None:
    """What an earlier event of the batch dated ahead for `entity` is withdrawn too."""
    for index, plan in enumerate(planned):
        kept = [
            c
            for c in plan.accepted.commands
            if c.entity != entity or c.not_before is None or c.not_before <= now
        ]
        if len(kept) != len(plan.accepted.commands):
            planned[index] = replace(plan, accepted=replace(plan.accepted, commands=kept))


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
