"""Id mappings as the executors read them, and a tenant's stored login.

Executors read mappings several times per command, so customers and users are kept in
memory (bounded); everything else, and every `fresh` read, comes from the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.ucaas import Credentials
from service.outbox.outcomes import MappingKey
from service.outbox.sql import bound
from service.outbox.tables import LOGINS, MAPPING
from service.outbox.vault import CredentialVault

# Mappings this process keeps copies of. Customers and users are added, and replaced only
# after their UCaaS object vanished (reconcile forgets the mapping and queues a create, in
# this or another process). So a copy can only point at an object that is gone: creates
# check the database itself, and an answer a gone id explains (404, an unknown customer, a
# refused login) makes the executor re-read what it used (executors/base.py, `healing`).
# Licences, subscriptions and meetings are forgotten or superseded (revoke, cancel, a new
# purchase): always read from the database.
CACHED_KINDS = frozenset({"customer", "user"})
# At most this many copies (about 1 KB each): a large initial load makes a user per
# employee, and unbounded copies grew the dispatcher by ~1 GB per million. A copy let go
# is read from the database when next needed.
CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class IdMappingView:
    key: MappingKey
    ucaas_id: str
    natural_key: str | None
    state: dict[str, Any]

    @classmethod
    def of(cls, row: sa.Row[Any]) -> IdMappingView:
        return cls(
            MappingKey(row.kind, row.tenant, row.external_id),
            row.ucaas_id,
            row.natural_key,
            row.state,
        )


class MappingReads:
    """Mappings by key or natural key (with the copies in memory), a tenant's mappings of
    a kind, and a tenant's stored login."""

    def __init__(
        self, engine: AsyncEngine, vault: CredentialVault | None, cache_limit: int
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.cache_limit = cache_limit
        # Single-statement reads need no transaction: on PostgreSQL, no BEGIN and ROLLBACK
        # round trips around each lookup (asyncpg's autocommit is a client-side flag).
        # SQLite's driver opens no transaction for a read anyway.
        self._reads = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )
        self._by_key: dict[MappingKey, IdMappingView] = {}
        self._by_natural: dict[tuple[str, str, str], IdMappingView] = {}

    async def mapping(self, key: MappingKey, *, fresh: bool = False) -> IdMappingView | None:
        """The mapping of `key`; `fresh` reads the database even when a copy is kept, and
        brings the copy up to date (drops it when the database has none)."""
        cached = None if fresh else self._by_key.get(key)
        if cached is not None:
            return cached
        async with self._reads.connect() as conn:
            values = {"b_kind": key.kind, "b_tenant": key.tenant, "b_external": key.external_id}
            row = (await conn.execute(_BY_KEY, values)).first()
        found = IdMappingView.of(row) if row else None
        if found is not None:
            self.remember(found)
        elif fresh:
            self._drop(self._by_key.get(key))
        return found

    async def mapping_by_natural(
        self, kind: str, tenant: str, natural_key: str, *, fresh: bool = False
    ) -> IdMappingView | None:
        cached = None if fresh else self._by_natural.get((kind, tenant, natural_key))
        if cached is not None:
            return cached
        async with self._reads.connect() as conn:
            values = {"b_kind": kind, "b_tenant": tenant, "b_natural": natural_key}
            row = (await conn.execute(_BY_NATURAL, values)).first()
        found = IdMappingView.of(row) if row else None
        if found is not None:
            self.remember(found)
        elif fresh:
            self._drop(self._by_natural.get((kind, tenant, natural_key)))
        return found

    def remember(self, mapping: IdMappingView) -> None:
        """Keep a copy of a customer or user mapping just read or written."""
        if mapping.key.kind not in CACHED_KINDS:
            return
        self._drop(self._by_key.get(mapping.key))  # its old natural key may differ
        self._by_key[mapping.key] = mapping
        if len(self._by_key) > self.cache_limit:
            # the copy kept longest goes: insertion order, a dict's own
            self._drop(next(iter(self._by_key.values())))
        if mapping.natural_key is not None:
            self._by_natural[_natural(mapping)] = mapping

    def _drop(self, mapping: IdMappingView | None) -> None:
        if mapping is None:
            return
        if self._by_key.get(mapping.key) is mapping:
            del self._by_key[mapping.key]
        if mapping.natural_key is not None and self._by_natural.get(_natural(mapping)) is mapping:
            del self._by_natural[_natural(mapping)]

    async def mappings_of(self, kind: str, tenant: str) -> list[IdMappingView]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(MAPPING).where(MAPPING.c.kind == kind, MAPPING.c.tenant == tenant)
                )
            ).all()
        return [IdMappingView.of(r) for r in rows]

    async def stored_login(self, tenant: str) -> Credentials | None:
        """The tenant's login kept in the database (sealed by the vault), opened; None
        without one, or without a vault to open it."""
        if self.vault is None:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(LOGINS).where(LOGINS.c.tenant == tenant))).first()
        if row is None:
            return None
        return Credentials(row.username, self.vault.open(row.secret))


def _natural(mapping: IdMappingView) -> tuple[str, str, str]:
    return (mapping.key.kind, mapping.key.tenant, mapping.natural_key or "")


_BY_KEY = sa.select(MAPPING).where(
    MAPPING.c.kind == bound("kind"),
    MAPPING.c.tenant == bound("tenant"),
    MAPPING.c.external_id == bound("external"),
)
_BY_NATURAL = (
    sa.select(MAPPING)
    .where(
        MAPPING.c.kind == bound("kind"),
        MAPPING.c.tenant == bound("tenant"),
        MAPPING.c.natural_key == bound("natural"),
    )
    .order_by(MAPPING.c.updated_at.desc())
    .limit(1)
)
