"""Dry runs that know history: `plan --events FILE` (events in order, from an empty state)
and `plan --live --event FILE` (one event against the database's state, nothing written).

Both run the intake's own mapping, translation, rehire matching and guard; what they
print is each command with the event that caused it, its date when it waits, and the
reason when a person would have to approve it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Envelope, InvalidRecordError, Record, parse
from service.domain.commands import Command
from service.domain.translation import Translation
from service.intake.events import Context, row_of
from service.intake.guard import approvals, people
from service.intake.licences import LicencePolicy
from service.intake.lifecycle import UserState
from service.intake.mapping import InvalidEventError
from service.intake.people import People
from service.intake.shell import people_for, recent_deprovisioning
from service.outbox.tables import utcnow
from service.outbox.unit_of_work import Transaction
from service.settings import IntakeSettings


class LineError(Exception):
    """One input line cannot be planned; the message is the one line to show."""


@dataclass(frozen=True)
class Withdrawal:
    entity: str
    event: str
    count: int


def envelope_of(raw: bytes) -> Envelope:
    record = Record(topic="plan", partition=0, offset=0, key=None, value=raw)
    try:
        return parse(record)
    except InvalidRecordError as exc:
        raise LineError(f"{exc.error}: {exc.reason}") from None


def planned(command: Command, event_id: str, held: str | None) -> dict[str, Any]:
    """A command as plan prints it: with its event, its date, and why it would be held."""
    out = command.as_json() | {"event": event_id}
    if held is not None:
        out["held"] = held
    return out


@dataclass
class History:
    """What `plan --events` has applied so far, in memory: the states, the people, and the
    people each tenant has had deprovisioned (the guard's count, the file being one
    window)."""

    policy: LicencePolicy
    settings: IntakeSettings
    now: datetime
    states: dict[str, BaseModel] = field(default_factory=dict)
    recent: Counter[str] = field(default_factory=Counter)
    queued: list[tuple[Command, dict[str, Any]]] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[dict[str, Any]]:
        """What plan prints: each command still queued, in order."""
        return [line for _, line in self.queued]

    def __post_init__(self) -> None:
        self.people = People(self.policy.rehire_match)

    def take(self, raw: bytes) -> str | None:
        """Apply one CloudEvent; its translation's note (LineError if it is not usable)."""
        envelope = envelope_of(raw)
        try:
            row = row_of(envelope)
            event = row.event(envelope, self.policy)
        except InvalidEventError as exc:
            raise LineError(f"{exc.error}: {exc.reason}") from None
        entity = event.entity
        context = Context(self.policy, self.settings, self.now, self.people)
        translation: Translation = row.translation(event, self.states.get(entity), context)
        if translation.withdraw:
            self._withdraw(translation.entity or entity, envelope.id)
        held = approvals(
            translation.commands,
            recent=self.recent[event.tenant],
            threshold=self.settings.guard_threshold,
            window_s=self.settings.guard_window_s,
        )
        self.recent[event.tenant] += people(translation.commands)
        for index, command in enumerate(translation.commands):
            reason = held.get(index) or command.held
            self.queued.append((command, planned(command, envelope.id, reason)))
        if translation.note:
            self.notes.append(f"{envelope.id}: {translation.note}")
        if translation.state is not None:
            self.states[entity] = translation.state
            if isinstance(translation.state, UserState):
                self.people.add(entity, event.tenant, translation.state)
        return translation.note

    def _withdraw(self, entity: str, event_id: str) -> None:
        """As the intake does: the entity's commands dated ahead are dropped."""
        kept = [
            (c, line)
            for c, line in self.queued
            if c.entity != entity or c.not_before is None or c.not_before <= self.now
        ]
        self.withdrawals.append(Withdrawal(entity, event_id, len(self.queued) - len(kept)))
        self.queued = kept


def plan_events(
    lines: Iterable[bytes],
    policy: LicencePolicy,
    settings: IntakeSettings,
    now: datetime | None = None,
) -> tuple[History, list[str]]:
    """Every event of a file of CloudEvents, one per line, in order; the history and one
    error line per unusable input line (the others still planned)."""
    history = History(policy, settings, now or utcnow())
    errors: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            history.take(raw)
        except LineError as exc:
            errors.append(f"line {number}: {exc}")
    return history, errors


async def plan_live(
    raw: bytes, engine: AsyncEngine, policy: LicencePolicy, settings: IntakeSettings
) -> Iterator[dict[str, Any]]:
    """What one CloudEvent would do now, against the database's state; nothing written
    (the transaction is rolled back)."""
    envelope = envelope_of(raw)
    try:
        row = row_of(envelope)
        event = row.event(envelope, policy)
    except InvalidEventError as exc:
        raise LineError(f"{exc.error}: {exc.reason}") from None
    now = utcnow()
    async with engine.connect() as conn:
        tx = Transaction.on(conn)
        states = await tx.states.load({event.entity: row.state})
        known = await people_for(tx, policy, [event], states)
        context = Context(policy, settings, now, known)
        translation = row.translation(event, states.get(event.entity), context)
        since = now - timedelta(seconds=settings.guard_window_s)
        recent = await recent_deprovisioning(conn, [event.tenant], since)
        await conn.rollback()
    held = approvals(
        translation.commands,
        recent=recent[event.tenant],
        threshold=settings.guard_threshold,
        window_s=settings.guard_window_s,
    )
    return iter(
        [
            planned(command, envelope.id, held.get(index) or command.held)
            for index, command in enumerate(translation.commands)
        ]
    )
