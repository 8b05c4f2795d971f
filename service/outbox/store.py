"""The outbox store: the one object callers build, over the outbox's database parts.

    store = OutboxStore(engine, vault)

Each job lives in a module of its own, and the store hands each call to its part:

- claims.py: claim due commands under a lease, renew, take back, give back;
- outcome_writer.py: record a batch of outcomes in one transaction;
- mappings.py: id mappings (with bounded copies in memory) and a tenant's stored login;
- operator.py: retry, drop, approve, deny.

The store itself answers the status reads (counts, due, rows). It is what the dispatcher
(ports.CommandQueue) and the executors (ports.MappingReader) are given in production.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.ucaas import CallRecord, Credentials
from service.outbox import followers
from service.outbox.claims import Claim, Claims
from service.outbox.mappings import CACHE_LIMIT, IdMappingView, MappingReads
from service.outbox.operator import OperatorActions
from service.outbox.outcome_writer import Finished, OutcomeWriter
from service.outbox.outcomes import MappingKey, Outcome
from service.outbox.result_log import ResultLog
from service.outbox.tables import OUTBOX, OutboxRow, utcnow
from service.outbox.tenant_rates import TenantRates
from service.outbox.vault import CredentialVault


class OutboxStore:
    def __init__(
        self,
        engine: AsyncEngine,
        vault: CredentialVault | None = None,
        *,
        cache_limit: int = CACHE_LIMIT,
        results: ResultLog | None = None,
        rates: TenantRates | None = None,
        claims_engine: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.vault = vault
        self.claims = Claims(engine, rates, claims_engine)
        self.rates = rates
        self.mappings = MappingReads(engine, vault, cache_limit)
        self.outcomes = OutcomeWriter(
            engine, vault, remember=self.mappings.remember, results=results
        )
        self.operator = OperatorActions(engine)

    # -- claims (claims.py) ---------------------------------------------------------------
    async def claim(self, owner: str, limit: int, lease_s: float) -> list[Claim]:
        return await self.claims.claim(owner, limit, lease_s)

    async def reclaim_expired(self) -> int:
        return await self.claims.reclaim_expired()

    async def extend(self, owner: str, ids: Sequence[int], lease_s: float) -> int:
        return await self.claims.extend(owner, ids, lease_s)

    async def release(self, claims: Sequence[Claim]) -> int:
        return await self.claims.release(claims)

    # -- outcomes (outcome_writer.py) -----------------------------------------------------
    async def finish(
        self, claim: Claim, outcome: Outcome, calls: Sequence[CallRecord] = ()
    ) -> bool:
        """Record the outcome; False when the lease was lost (another worker has the row)."""
        [recorded] = await self.finish_many([(claim, outcome, calls)])
        return recorded

    async def finish_many(self, items: Sequence[Finished]) -> list[bool]:
        if self.rates is not None:  # a rate limit counts calls: settle the claim's charge
            self.rates.settle((claim.tenant or "", len(calls)) for claim, _, calls in items)
        return await self.outcomes.finish_many(items)

    # -- operator actions (operator.py) ---------------------------------------------------
    # Unaudited, for the service's own use and tests; an operator's go through
    # `self.operator` with an Actor, which records them (views.Operations).
    async def retry(self, command_id: int) -> bool:
        return await self.operator.retry(command_id) == "ok"

    async def drop(self, command_id: int) -> bool:
        return await self.operator.drop(command_id) == "ok"

    async def approve(
        self, *, command_id: int | None = None, tenant: str | None = None, source: str | None = None
    ) -> int:
        changed, _ = await self.operator.approve(
            command_id=command_id, tenant=tenant, source=source
        )
        return changed

    async def deny(
        self, *, command_id: int | None = None, tenant: str | None = None, source: str | None = None
    ) -> int:
        changed, _ = await self.operator.deny(command_id=command_id, tenant=tenant, source=source)
        return changed

    async def held_for_approval(self) -> list[OutboxRow]:
        return await self.operator.held_for_approval()

    # -- mappings and logins (mappings.py) ------------------------------------------------
    async def mapping(self, key: MappingKey, *, fresh: bool = False) -> IdMappingView | None:
        return await self.mappings.mapping(key, fresh=fresh)

    async def mapping_by_natural(
        self, kind: str, tenant: str, natural_key: str, *, fresh: bool = False
    ) -> IdMappingView | None:
        return await self.mappings.mapping_by_natural(kind, tenant, natural_key, fresh=fresh)

    async def mappings_of(self, kind: str, tenant: str) -> list[IdMappingView]:
        return await self.mappings.mappings_of(kind, tenant)

    async def stored_login(self, tenant: str) -> Credentials | None:
        return await self.mappings.stored_login(tenant)

    # -- status reads ---------------------------------------------------------------------
    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)
                )
            ).all()
        return {str(status): int(count) for status, count in rows}

    async def due(self) -> int:
        """Rows a claim would look at now: pending or waiting, and due (ix_outbox_due)."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                sa.select(sa.func.count()).where(
                    OUTBOX.c.status.in_(followers.RUNNABLE_LITERALS),
                    OUTBOX.c.next_attempt_at <= utcnow(),
                )
            )
        return int(found or 0)

    async def rows(
        self, *, status: str | None = None, entity: str | None = None, limit: int = 100
    ) -> list[OutboxRow]:
        query = sa.select(OUTBOX).order_by(OUTBOX.c.id).limit(limit)
        if status:
            query = query.where(OUTBOX.c.status == status)
        if entity:
            query = query.where(OUTBOX.c.entity == entity)
        async with self.engine.connect() as conn:
            result = (await conn.execute(query)).all()
        return [OutboxRow.model_validate(dict(r._mapping)) for r in result]
