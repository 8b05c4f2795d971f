"""What the outbox's parts need of each other, as Protocols.

    dispatcher ──CommandQueue──> store        claims, leases, outcomes, counts
    recorder ───OutcomeStore──> store         group commit
    dispatcher ─CommandRunner──> executors    a kind's payload model, one attempt
    executors ──MappingReader──> store        id mappings, a tenant's stored login

`OutboxStore` is the one implementation on a database, `service.executors.Executors` the
one on the UCaaS API (bootstrap wires them); tests/support/memory_outbox.py implements
the store's ports in memory. So the outbox imports nothing of the executors, and either
side can be tested without the other's I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from connectors.ucaas import Credentials
from service.domain.commands import Payload
from service.outbox.claims import Claim
from service.outbox.mappings import IdMappingView
from service.outbox.outcome_writer import Finished
from service.outbox.outcomes import MappingKey, Outcome


class OutcomeStore(Protocol):
    """Where the recorder writes what came of claimed commands."""

    async def finish_many(self, items: Sequence[Finished]) -> list[bool]:
        """Record many outcomes at once; per item, False when its lease was lost (and
        nothing of it written)."""
        ...


class CommandQueue(OutcomeStore, Protocol):
    """The outbox as the dispatcher sees it: due commands under leases (FIFO per entity),
    and how many are left."""

    async def claim(self, owner: str, limit: int, lease_s: float) -> list[Claim]: ...

    async def extend(self, owner: str, ids: Sequence[int], lease_s: float) -> int: ...

    async def reclaim_expired(self) -> int: ...

    async def release(self, claims: Sequence[Claim]) -> int: ...

    async def counts(self) -> dict[str, int]:
        """Commands per status."""
        ...

    async def due(self) -> int:
        """Commands a claim would look at now."""
        ...


class MappingReader(Protocol):
    """What executors read: id mappings (`fresh`: from the database, not a copy kept in
    memory) and a tenant's stored login. They write nothing: their outcome carries it."""

    async def mapping(self, key: MappingKey, *, fresh: bool = False) -> IdMappingView | None: ...

    async def mapping_by_natural(
        self, kind: str, tenant: str, natural_key: str, *, fresh: bool = False
    ) -> IdMappingView | None: ...

    async def mappings_of(self, kind: str, tenant: str) -> list[IdMappingView]: ...

    async def stored_login(self, tenant: str) -> Credentials | None: ...


class CommandRunner(Protocol):
    """The executors as the dispatcher sees them."""

    def payload_model(self, kind: str) -> type[Payload] | None:
        """The model a kind's payload is validated with; None for a kind nobody runs."""
        ...

    async def execute(self, claim: Claim, payload: Payload) -> Outcome:
        """One attempt at a claimed command. Raises what the attempt failed with
        (failures.py decides retry, wait or dead), WaitForError for a missing
        prerequisite."""
        ...
