"""Result events written in the outcome's transaction (the outbox's ResultLog port).

Per batch: one read of the id mappings the results report (before the batch's writes,
so a cancelled meeting still names its UCaaS id) and one insert of the events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from service.outbox import direct
from service.outbox.mappings import read_keys
from service.outbox.outcomes import Dead, Done, MappingKey, Outcome
from service.outbox.result_log import CommandRef
from service.outbox.tables import RESULTS
from service.results.model import (
    Known,
    ResultEvent,
    ResultPolicy,
    after_batch,
    keys_read,
    on_dead,
    on_done,
    on_held,
    payload_of,
)


class ResultRecorder:
    def __init__(self, policy: ResultPolicy, new_id: Callable[[], str] | None = None) -> None:
        self.policy = policy
        self.new_id = new_id or (lambda: str(uuid4()))

    async def finished(
        self, conn: AsyncConnection, items: Sequence[tuple[CommandRef, Outcome]], now: datetime
    ) -> None:
        # each payload parsed once, for the keys to read and for the event
        parsed = {id(c): payload_of(c) for c, o in items if isinstance(o, Done)}
        keys = {key for c, o in items if isinstance(o, Done) for key in keys_read(c, parsed[id(c)])}
        before = await known(conn, keys)
        after = after_batch(before, (o for _, o in items if isinstance(o, Done)))
        events: list[ResultEvent] = []
        for command, outcome in items:
            if isinstance(outcome, Done):
                payload = parsed[id(command)]
                found = on_done(
                    command, outcome, before, after, self.policy, now, self.new_id, payload
                )
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
    return {m.key: Known(m.ucaas_id, m.natural_key) for m in await read_keys(conn, keys)}


async def _insert(conn: AsyncConnection, events: Sequence[ResultEvent], now: datetime) -> None:
    await direct.run(conn, _INSERT, [e.row(now) for e in events])


_INSERT = RESULTS.insert()
