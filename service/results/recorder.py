"""Result events written in the outcome's transaction (the outbox's ResultLog port).

Per batch: one read of the id mappings the results report (before the batch's writes,
so a cancelled meeting still names its UCaaS id) and one insert of the events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from service.outbox.outcomes import Dead, Done, MappingKey, Outcome
from service.outbox.result_log import CommandRef
from service.outbox.sql import chunks
from service.outbox.tables import MAPPING, RESULTS
from service.results.model import (
    Known,
    ResultEvent,
    ResultPolicy,
    after_batch,
    keys_read,
    on_dead,
    on_done,
    on_held,
)


class ResultRecorder:
    def __init__(self, policy: ResultPolicy, new_id: Callable[[], str] | None = None) -> None:
        self.policy = policy
        self.new_id = new_id or (lambda: str(uuid4()))

    async def finished(
        self, conn: AsyncConnection, items: Sequence[tuple[CommandRef, Outcome]], now: datetime
    ) -> None:
        done = [(c, o) for c, o in items if isinstance(o, Done)]
        before = await known(conn, {key for c, _ in done for key in keys_read(c)})
        after = after_batch(before, (o for _, o in done))
        events: list[ResultEvent] = []
        for command, outcome in items:
            if isinstance(outcome, Done):
                found = on_done(command, outcome, before, after, self.policy, now, self.new_id)
                if found is not None:
                    events.append(found)
            elif isinstance(outcome, Dead):
                events.append(on_dead(command, outcome, self.policy, now, self.new_id))
        await _insert(conn, events, now)

    async def held(
        self, conn: AsyncConnection, items: Sequence[tuple[CommandRef, str]], now: datetime
    ) -> None:
        events = [on_held(c, reason, self.policy, now, self.new_id) for c, reason in items]
        await _insert(conn, events, now)


async def known(conn: AsyncConnection, keys: Iterable[MappingKey]) -> dict[MappingKey, Known]:
    """The id mappings of these keys, as they are in this transaction."""
    found: dict[MappingKey, Known] = {}
    for batch in chunks(sorted(set(keys), key=lambda k: (k.kind, k.tenant, k.external_id))):
        columns = sa.tuple_(MAPPING.c.kind, MAPPING.c.tenant, MAPPING.c.external_id)
        rows = await conn.execute(
            sa.select(
                MAPPING.c.kind,
                MAPPING.c.tenant,
                MAPPING.c.external_id,
                MAPPING.c.ucaas_id,
                MAPPING.c.natural_key,
            ).where(columns.in_([(k.kind, k.tenant, k.external_id) for k in batch]))
        )
        for kind, tenant, external_id, ucaas_id, natural_key in rows:
            found[MappingKey(kind, tenant, external_id)] = Known(ucaas_id, natural_key)
    return found


async def _insert(conn: AsyncConnection, events: Sequence[ResultEvent], now: datetime) -> None:
    if events:
        await conn.execute(RESULTS.insert(), [e.row(now) for e in events])
