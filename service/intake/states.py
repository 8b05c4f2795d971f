"""Each entity's desired state (what accepted events ask of it), read and written inside
the transaction that accepts the commands: employees, companies and calendar feeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from service.calendar.translate import FeedState
from service.intake.crm import CompanyState
from service.intake.hr import UserState
from service.outbox.sql import chunks, upsert_many
from service.outbox.tables import STATES

MODELS: dict[str, type[BaseModel]] = {"user": UserState, "company": CompanyState, "feed": FeedState}


@dataclass(frozen=True)
class Saved:
    """An entity's new state, and the event that made it."""

    entity: str
    kind: str
    tenant: str
    state: BaseModel
    event_id: str
    now: datetime


async def load_state(conn: AsyncConnection, entity: str, kind: str) -> BaseModel | None:
    return (await load_states(conn, {entity: kind})).get(entity)


async def load_states(conn: AsyncConnection, kinds: Mapping[str, str]) -> dict[str, BaseModel]:
    """The states of these entities (entity -> kind of state) that have one, in one query
    per few hundred entities."""
    found: dict[str, BaseModel] = {}
    for entities in chunks(sorted(kinds)):
        query = sa.select(STATES.c.entity, STATES.c.state).where(STATES.c.entity.in_(entities))
        if conn.dialect.name == "postgresql":
            # two writers must not both read-then-write a state; locked in one order, two
            # batches that share entities wait for each other instead of deadlocking
            query = query.order_by(STATES.c.entity).with_for_update()
        for entity, state in await conn.execute(query):
            found[entity] = MODELS[kinds[entity]].model_validate(state)
    return found


async def save_state(
    conn: AsyncConnection,
    entity: str,
    kind: str,
    tenant: str,
    state: BaseModel,
    event_id: str,
    now: datetime,
) -> None:
    await save_states(conn, [Saved(entity, kind, tenant, state, event_id, now)])


async def save_states(conn: AsyncConnection, saved: Sequence[Saved]) -> None:
    """Insert or replace the states in one statement; for an entity named more than once,
    the last one counts."""
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
    await conn.execute(upsert_many(conn.dialect.name, STATES, ["entity"]), rows)
