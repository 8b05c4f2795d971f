"""Each entity's desired state (what accepted events ask of it: an employee, a company, a
calendar feed), read and written inside the transaction that queues its commands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from service.outbox.sql import chunks, upsert_many
from service.outbox.tables import STATES


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
            query = sa.select(STATES.c.entity, STATES.c.state).where(STATES.c.entity.in_(entities))
            if self.conn.dialect.name == "postgresql":
                # two writers must not both read-then-write a state; locked in one order,
                # two batches that share entities wait for each other instead of deadlocking
                query = query.order_by(STATES.c.entity).with_for_update()
            for entity, state in await self.conn.execute(query):
                found[entity] = models[entity].model_validate(state)
        return found

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
                "last_event": s.event_id,
                "updated_at": s.now,
            }
            for s in last.values()
        ]
        await self.conn.execute(upsert_many(self.conn.dialect.name, STATES, ["entity"]), rows)
