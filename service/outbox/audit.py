"""The audit log: who did what to the outbox, when, and what came of it.

Rows are written on the connection of the action they describe, so an action and its
audit row commit (or roll back) together. Only names, ids and outcomes go in: never a
token, a header or a request body.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.outbox.tables import AUDIT, AuditEntry, utcnow

Role = Literal["reader", "operator"]
# ok: done; not_found: nothing of that id, tenant or feed; conflict: not in a state that
# allows it; refused: the role may not; failed: it raised.
Result = Literal["ok", "not_found", "conflict", "refused", "failed"]


class AuditView(BaseModel):
    """One operator action, as the admin API and `ucaas-sync audit` show it."""

    id: int
    at: datetime
    actor: str  # a token's name, `anonymous`, or `cli:<OS user>`
    role: str
    action: str
    target: str
    result: str
    detail: str | None


@dataclass(frozen=True)
class Actor:
    """Who acts: an admin token's name, or `cli:<OS user>`."""

    name: str
    role: Role


def cli_actor() -> Actor:
    """The CLI acts as the OS user running it (no token: it has the database already)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no $USER: a bare container
        user = "unknown"
    return Actor(f"cli:{user}", "operator")


def _cut(text: str | None, size: int) -> str | None:
    return None if text is None else text[:size]


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    target: str,
    result: Result,
    detail: str | None = None,
) -> None:
    """One row, on the caller's connection (its transaction)."""
    await conn.execute(
        AUDIT.insert().values(
            at=utcnow(),
            actor=actor.name[:100],
            role=actor.role,
            action=action[:40],
            target=target[:255],
            result=result,
            detail=_cut(detail, 1000),
        )
    )


async def record_alone(
    engine: AsyncEngine,
    actor: Actor,
    action: str,
    target: str,
    result: Result,
    detail: str | None = None,
) -> None:
    """One row in its own transaction: for a refusal, or an action that commits in steps."""
    async with engine.begin() as conn:
        await record(conn, actor, action, target, result, detail)


async def entries(
    engine: AsyncEngine,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first."""
    query = sa.select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if actor is not None:
        query = query.where(AUDIT.c.actor == actor)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [AuditEntry.model_validate(dict(r._mapping)) for r in rows]
