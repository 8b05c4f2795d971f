"""Each entity's desired state (what accepted events ask of it: an employee, a company, a
calendar feed), read and written inside the transaction that queues its commands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from service.domain.translation import DesiredState
from service.outbox.sql import among, bound, chunks, key_values, per_dialect, upsert_many, with_keys
from service.outbox.tables import STATES

# the keys in order, each hashed to an advisory lock held until the transaction ends
_LOCK_PEOPLE = sa.text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS ordered"
)


@dataclass(frozen=True)
class SavedState:
    """An entity's new state, and the event that made it."""

    entity: str
    kind: str  # entity_state.kind: user, company, feed
    tenant: str
    state: BaseModel
    event_id: str
    now: datetime


class States:
    """The entity_state rows of one transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def load(self, models: Mapping[str, type[BaseModel]]) -> dict[str, BaseModel]:
        """The states of these entities (entity -> its state's model) that have one, in one
        query per few hundred entities."""
        found: dict[str, BaseModel] = {}
        for entities in chunks(sorted(models)):
            query = sa.select(STATES.c.entity, STATES.c.state).where(
                among(self.conn.dialect.name, STATES.c.entity, entities, sa.String)
            )
            if self.conn.dialect.name == "postgresql":
                # two writers must not both read-then-write a state; locked in one order,
                # two batches that share entities wait for each other instead of deadlocking
                query = query.order_by(STATES.c.entity).with_for_update()
            for entity, state in await self.conn.execute(query):
                found[entity] = models[entity].model_validate(state)
        return found

    async def lock_people(self, keys: Iterable[str]) -> None:
        """Serialise, on PostgreSQL, the transactions that may decide about the same person
        under two entities (a rehire's new employee id and the leaver's): each waits for the
        other to commit, then reads what it wrote. Taken in one order, before any entity
        row is locked, so two batches never wait for each other in a cycle."""
        wanted = sorted(set(keys))
        if not wanted or self.conn.dialect.name != "postgresql":
            return
        await self.conn.execute(_LOCK_PEOPLE, {"keys": wanted})

    async def matching(
        self,
        kind: str,
        natural: Iterable[tuple[str, str]],
        alternative: Iterable[tuple[str, str]] = (),
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """(entity, tenant, state) of the `kind` entities with one of these (tenant,
        natural key) or (tenant, alternative key): the people an unknown employee id may
        be. One statement per few hundred keys of each (ix_entity_state_natural, _alt)."""
        found: dict[str, tuple[str, str, dict[str, Any]]] = {}
        dialect = self.conn.dialect.name
        for column, keys in (("natural_key", natural), ("alt_key", alternative)):
            statement = _MATCHING[column][dialect]
            for some in chunks(sorted(set(keys))):
                values = key_values(dialect, some) | {"b_kind": kind}
                rows = await self.conn.execute(statement, values)
                found.update((e, (e, tenant, state)) for e, tenant, state in rows)
        return list(found.values())

    async def save(self, saved: Sequence[SavedState]) -> None:
        """Insert or replace the states in one statement; for an entity named more than
        once, the last one counts."""
        last = {s.entity: s for s in saved}
        if not last:
            return
        rows: list[dict[str, Any]] = [
            {
                "entity": s.entity,
                "kind": s.kind,
                "tenant": s.tenant,
                "state": s.state.model_dump(mode="json"),
                "natural_key": _keys(s.state)[0],
                "alt_key": _keys(s.state)[1],
                "last_event": s.event_id,
                "updated_at": s.now,
            }
            for s in last.values()
        ]
        await self.conn.execute(upsert_many(self.conn.dialect.name, STATES, ["entity"]), rows)


def _keys(state: BaseModel) -> tuple[str | None, str | None]:
    return state.match_keys() if isinstance(state, DesiredState) else (None, None)


def _matching(column: str) -> dict[str, Any]:
    query = sa.select(STATES.c.entity, STATES.c.tenant, STATES.c.state).where(
        STATES.c.kind == bound("kind")
    )
    key = (STATES.c.tenant, STATES.c[column])
    return per_dialect(lambda dialect: with_keys(dialect, query, key))


_MATCHING = {column: _matching(column) for column in ("natural_key", "alt_key")}
