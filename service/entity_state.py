"""Each entity's desired state (what accepted events ask of it), read and written inside
the transaction that accepts the commands: employees, companies and calendar feeds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from service.calendar.translate import FeedState
from service.outbox.store import table_of, upsert
from service.outbox.tables import EntityState
from service.translate.crm import CompanyState
from service.translate.hr import UserState

STATES = table_of(EntityState)
MODELS: dict[str, type[BaseModel]] = {"user": UserState, "company": CompanyState, "feed": FeedState}


async def load_state(conn: AsyncConnection, entity: str, kind: str) -> BaseModel | None:
    query = sa.select(STATES.c.state).where(STATES.c.entity == entity)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # two writers must not both read-then-write it
    row = (await conn.execute(query)).first()
    return MODELS[kind].model_validate(row.state) if row is not None else None


async def save_state(
    conn: AsyncConnection,
    entity: str,
    kind: str,
    tenant: str,
    state: BaseModel,
    event_id: str,
    now: datetime,
) -> None:
    values: dict[str, Any] = {
        "entity": entity,
        "kind": kind,
        "tenant": tenant,
        "state": state.model_dump(mode="json"),
        "last_event": event_id,
        "updated_at": now,
    }
    await conn.execute(upsert(conn.dialect.name, STATES, values, ("entity",)))
