"""The outbox in memory: the store's ports (service/outbox/ports.py) without a database.

For unit tests of the dispatcher and the executors. What it keeps of the real store:

- claims: due pending or waiting rows, due longest first, whose entity has no earlier
  unfinished row (FIFO per entity), leased to an owner until a time; leases renewed,
  taken back in doubt when expired, given back at shutdown without counting the attempt;
- outcomes: a lost lease records nothing; done, retry, wait and dead move the row as the
  store's statements do (a counted retry keeps its attempt, a wait resets them); the
  mappings written and forgotten, a captured login, and a done prerequisite waking its
  tenant's waiting rows; every outcome and call is kept per row for the test to read;
- mappings: the database's, and copies of customers and users as a process keeps them,
  so a test can replace a mapping "in another process" behind a copy.

Not kept: holds across entities (followers.py) and the operator's actions.

`FunctionExecutors` is the executors' port (ports.CommandRunner) over plain functions, and
`claim_for` a claim of one command, for running an executor without a dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.ucaas import CallRecord, Credentials
from service.domain.commands import PRODUCERS, Command, Payload
from service.outbox.claims import Claim, claim_of
from service.outbox.mappings import CACHED_KINDS, IdMappingView
from service.outbox.outcome_writer import Finished
from service.outbox.outcomes import Done, MappingKey, Outcome, Retry, Wait
from service.outbox.ports import CommandQueue, CommandRunner, MappingReader
from service.outbox.tables import RUNNABLE, TERMINAL, CommandStatus, utcnow


@dataclass
class MemoryRow:
    """One outbox row, and what became of each of its attempts."""

    id: int
    entity: str
    kind: str
    tenant: str | None
    payload: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime
    status: str = CommandStatus.PENDING.value
    attempts: int = 0
    in_doubt: bool = False
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    note: str | None = None  # a Done's note or a Wait's reason, as hold_reason keeps them
    last_error: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)


@dataclass
class MemoryOutbox:
    """Implements ports.CommandQueue and ports.MappingReader."""

    clock: Callable[[], datetime] = utcnow
    rows: dict[int, MemoryRow] = field(default_factory=dict)
    database: dict[MappingKey, IdMappingView] = field(default_factory=dict)
    copies: dict[MappingKey, IdMappingView] = field(default_factory=dict)
    logins: dict[str, Credentials] = field(default_factory=dict)
    broken_claims: int = 0  # this many claims fail (the database went away) before they work
    claims: int = 0  # claims asked for

    # -- filling it -----------------------------------------------------------------------
    def add(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        entity: str,
        tenant: str | None = None,
        in_doubt: bool = False,
        created_at: datetime | None = None,
    ) -> int:
        """A pending row, due now; its id (ids follow the order rows are added)."""
        now = self.clock()
        row_id = len(self.rows) + 1
        self.rows[row_id] = MemoryRow(
            row_id, entity, kind, tenant, payload, created_at or now, now, in_doubt=in_doubt
        )
        return row_id

    def accept(self, command: Command, *, in_doubt: bool = False) -> int:
        payload = command.payload.model_dump(mode="json", exclude_none=True)
        kind, entity, tenant = command.kind.value, command.entity, command.tenant
        return self.add(kind, payload, entity=entity, tenant=tenant, in_doubt=in_doubt)

    def put_mapping(
        self,
        key: MappingKey,
        ucaas_id: str,
        natural_key: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> IdMappingView:
        """Write a mapping to the database only, as another process (reconcile) would: a
        copy this process keeps is left as it was."""
        mapping = IdMappingView(key, ucaas_id, natural_key, state or {})
        self.database.pop(key, None)  # the latest written last, as updated_at orders them
        self.database[key] = mapping
        return mapping

    def status(self, row_id: int) -> str:
        return self.rows[row_id].status

    def statuses(self) -> dict[int, str]:
        return {row_id: row.status for row_id, row in self.rows.items()}

    # -- ports.CommandQueue ---------------------------------------------------------------
    async def claim(self, owner: str, limit: int, lease_s: float) -> list[Claim]:
        self.claims += 1
        if self.broken_claims:
            self.broken_claims -= 1
            raise ConnectionError("database went away")
        now = self.clock()
        due = [r for r in self.rows.values() if r.status in RUNNABLE and r.next_attempt_at <= now]
        free = [r for r in due if not self._earlier_unfinished(r)]
        taken = sorted(free, key=lambda r: (r.next_attempt_at, r.id))[:limit]
        for row in taken:
            row.status = CommandStatus.IN_FLIGHT.value
            row.lease_owner, row.lease_expires_at = owner, now + timedelta(seconds=lease_s)
            row.attempts += 1
        return sorted((claim_of(r, owner) for r in taken), key=lambda c: c.id)

    def _earlier_unfinished(self, row: MemoryRow) -> bool:
        return any(
            r.entity == row.entity and r.id < row.id and r.status not in TERMINAL
            for r in self.rows.values()
        )

    async def extend(self, owner: str, ids: Sequence[int], lease_s: float) -> int:
        mine = [r for i in ids if (r := self.rows.get(i)) is not None and self._held_by(r, owner)]
        for row in mine:
            row.lease_expires_at = self.clock() + timedelta(seconds=lease_s)
        return len(mine)

    async def reclaim_expired(self) -> int:
        now = self.clock()
        expired = [
            r
            for r in self.rows.values()
            if r.status == CommandStatus.IN_FLIGHT.value
            and r.lease_expires_at is not None
            and r.lease_expires_at < now
        ]
        for row in expired:
            self._back_to_pending(row, now)
        return len(expired)

    async def release(self, claims: Sequence[Claim]) -> int:
        mine = [self.rows[c.id] for c in claims if self._held_by(self.rows[c.id], c.owner)]
        for row in mine:
            self._back_to_pending(row, self.clock())
            row.attempts -= 1
        return len(mine)

    def _held_by(self, row: MemoryRow, owner: str) -> bool:
        return row.status == CommandStatus.IN_FLIGHT.value and row.lease_owner == owner

    def _back_to_pending(self, row: MemoryRow, now: datetime) -> None:
        row.status, row.in_doubt, row.next_attempt_at = CommandStatus.PENDING.value, True, now
        row.lease_owner = row.lease_expires_at = None

    async def finish_many(self, items: Sequence[Finished]) -> list[bool]:
        answers = []
        for claim, outcome, calls in items:
            row = self.rows[claim.id]
            owned = self._held_by(row, claim.owner)
            answers.append(owned)
            if owned:
                self._record(row, outcome, calls)
        return answers

    def _record(self, row: MemoryRow, outcome: Outcome, calls: Sequence[CallRecord]) -> None:
        now = self.clock()
        row.outcomes.append(outcome)
        row.calls.extend(calls)
        row.lease_expires_at = None
        if isinstance(outcome, Done):
            row.status, row.note = CommandStatus.DONE.value, outcome.note
            self._write_done(outcome)
            if row.tenant and row.kind in PRODUCERS:
                self._wake_waiting(row.tenant, now)
        elif isinstance(outcome, Retry):
            row.status = CommandStatus.PENDING.value
            row.next_attempt_at = now + timedelta(seconds=outcome.delay_s)
            row.in_doubt = row.in_doubt or outcome.ambiguous
            row.attempts -= 0 if outcome.count else 1
            row.last_error = f"{outcome.code}: {outcome.message}"
        elif isinstance(outcome, Wait):
            row.status, row.note, row.attempts = CommandStatus.WAITING.value, outcome.reason, 0
            row.next_attempt_at = now + timedelta(seconds=outcome.delay_s)
        else:
            row.status = CommandStatus.DEAD.value
            row.last_error = f"{outcome.code}: {outcome.message}"

    def _write_done(self, done: Done) -> None:
        for key in done.forget:
            self.database.pop(key, None)
        for m in done.mappings:
            written = self.put_mapping(m.key, m.ucaas_id, m.natural_key, dict(m.state))
            self._keep_copy(written)
        if done.login is not None:
            self.logins[done.login.tenant] = Credentials(done.login.username, done.login.password)

    def _wake_waiting(self, tenant: str, now: datetime) -> None:
        for row in self.rows.values():
            waiting = row.status == CommandStatus.WAITING.value and row.tenant == tenant
            if waiting and row.next_attempt_at > now:
                row.next_attempt_at = now

    async def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.rows.values():
            found[row.status] = found.get(row.status, 0) + 1
        return found

    async def due(self) -> int:
        now = self.clock()
        return sum(
            1 for r in self.rows.values() if r.status in RUNNABLE and r.next_attempt_at <= now
        )

    # -- ports.MappingReader --------------------------------------------------------------
    async def mapping(self, key: MappingKey, *, fresh: bool = False) -> IdMappingView | None:
        copy = None if fresh else self.copies.get(key)
        if copy is not None:
            return copy
        found = self.database.get(key)
        if found is not None:
            self._keep_copy(found)
        elif fresh:
            self.copies.pop(key, None)
        return found

    async def mapping_by_natural(
        self, kind: str, tenant: str, natural_key: str, *, fresh: bool = False
    ) -> IdMappingView | None:
        def latest(mappings: dict[MappingKey, IdMappingView]) -> IdMappingView | None:
            wanted = (kind, tenant, natural_key)
            found = (m for m in reversed(mappings.values()) if _natural(m) == wanted)
            return next(found, None)

        copy = None if fresh else latest(self.copies)
        if copy is not None:
            return copy
        found = latest(self.database)
        if found is not None:
            self._keep_copy(found)
        elif fresh and (stale := latest(self.copies)) is not None:
            del self.copies[stale.key]
        return found

    async def mappings_of(self, kind: str, tenant: str) -> list[IdMappingView]:
        return [m for k, m in self.database.items() if (k.kind, k.tenant) == (kind, tenant)]

    async def stored_login(self, tenant: str) -> Credentials | None:
        return self.logins.get(tenant)

    def _keep_copy(self, mapping: IdMappingView) -> None:
        if mapping.key.kind in CACHED_KINDS:
            self.copies.pop(mapping.key, None)
            self.copies[mapping.key] = mapping


def _natural(mapping: IdMappingView) -> tuple[str, str, str | None]:
    return (mapping.key.kind, mapping.key.tenant, mapping.natural_key)


def claim_for(command: Command, *, in_doubt: bool = False, attempts: int = 1) -> Claim:
    """A claim of `command` as a dispatcher holds it while an executor runs (row id 1)."""
    return Claim(
        id=1,
        entity=command.entity,
        kind=command.kind.value,
        tenant=command.tenant,
        payload=command.payload.model_dump(mode="json", exclude_none=True),
        attempts=attempts,
        in_doubt=in_doubt,
        created_at=utcnow(),
        owner="test",
    )


Attempt = Callable[[Claim, Any], Awaitable[Outcome]]


@dataclass
class FunctionExecutors:
    """Implements ports.CommandRunner with plain functions: kind -> (payload model, an
    async function of the claim and the validated payload)."""

    kinds: dict[str, tuple[type[Payload], Attempt]]

    def payload_model(self, kind: str) -> type[Payload] | None:
        entry = self.kinds.get(kind)
        return entry[0] if entry else None

    async def execute(self, claim: Claim, payload: Payload) -> Outcome:
        return await self.kinds[claim.kind][1](claim, payload)


def implements_ports(
    outbox: MemoryOutbox, executors: FunctionExecutors
) -> tuple[CommandQueue, MappingReader, CommandRunner]:
    """The fakes are what the ports ask for: make lint's mypy checks this module."""
    return outbox, outbox, executors
