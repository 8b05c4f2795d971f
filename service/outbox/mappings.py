"""Id mappings as the executors read them, and a tenant's stored login.

Executors read mappings several times per command, so customers and users are kept in
memory (bounded); everything else, and every `fresh` read, comes from the database, in
one statement with the other reads of the same moment (read_batches.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.ucaas import Credentials
from service.outbox import direct
from service.outbox.outcomes import MappingKey
from service.outbox.read_batches import ReadBatcher
from service.outbox.sql import chunks, key_values, per_dialect, with_keys
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
        self.dialect = engine.dialect.name
        self._keys = ReadBatcher(self._load_keys)
        self._naturals = ReadBatcher(self._load_naturals)

    async def mapping(self, key: MappingKey, *, fresh: bool = False) -> IdMappingView | None:
        """The mapping of `key`; `fresh` reads the database even when a copy is kept, and
        brings the copy up to date (drops it when the database has none)."""
        cached = None if fresh else self._by_key.get(key)
        if cached is not None:
            return cached
        found = await self._keys.get(key)
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
        found = await self._naturals.get((kind, tenant, natural_key))
        if found is not None:
            self.remember(found)
        elif fresh:
            self._drop(self._by_natural.get((kind, tenant, natural_key)))
        return found

    async def _load_keys(self, keys: Sequence[MappingKey]) -> dict[MappingKey, IdMappingView]:
        async with self._reads.connect() as conn:
            return {view.key: view for view in await read_keys(conn, keys)}

    async def _load_naturals(
        self, keys: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], IdMappingView]:
        async with self._reads.connect() as conn:
            statement = _BY_NATURALS[self.dialect]
            rows = await direct.rows(conn, statement, key_values(self.dialect, keys))
        found: dict[tuple[str, str, str], IdMappingView] = {}
        for view in map(IdMappingView.of, rows):  # newest first: the first one of a key wins
            found.setdefault(_natural(view), view)
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


async def read_keys(conn: AsyncConnection, keys: Iterable[MappingKey]) -> list[IdMappingView]:
    """The mappings of these keys (those that exist), in one statement per 500 keys."""
    dialect = conn.dialect.name
    found: list[IdMappingView] = []
    for batch in chunks({(k.kind, k.tenant, k.external_id) for k in keys}):
        rows = await direct.rows(conn, _BY_KEYS[dialect], key_values(dialect, batch))
        found += map(IdMappingView.of, rows)
    return found


def _matching(column: str, query: Any) -> dict[str, Any]:
    """Mappings whose (kind, tenant, `column`) is one of the key triples given."""
    key = (MAPPING.c.kind, MAPPING.c.tenant, MAPPING.c[column])
    return per_dialect(lambda dialect: with_keys(dialect, query, key))


_BY_KEYS = _matching("external_id", sa.select(MAPPING))
# Several rows may share a natural key (a re-created object): the newest is the one.
_BY_NATURALS = _matching("natural_key", sa.select(MAPPING).order_by(MAPPING.c.updated_at.desc()))
