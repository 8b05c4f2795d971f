"""The intake's batch path: a batch costs the same few statements whatever its size, an
entity's events in one batch build on each other as they would one batch at a time, a
dead command holds what comes after it, and two processes taking the same records at once
accept each event once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Envelope
from service.domain.commands import user_entity
from service.outbox import db
from service.outbox.tables import INBOX, OUTBOX, STATES, CommandStatus
from tests.integration.sync.test_intake import TENANT, hr, intake, outbox, rows


def lives(employees: int, prefix: str = "E") -> list[Envelope]:
    """Each employee joins, moves, takes a leave and comes back, then leaves: in order."""
    events = []
    for n in range(employees):
        who = f"{prefix}{n}"
        events += [
            hr("joined", who),
            hr("updated", who, department="Sales"),
            hr("leave_started", who, department="Sales"),
            hr("leave_ended", who, department="Sales"),
            hr("left", who, department="Sales"),
        ]
    return events


def statements(engine: AsyncEngine) -> list[str]:
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", seen)
    return sent


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    engine: AsyncEngine,
) -> None:
    take = intake(engine, guard_threshold=1000).take
    sent = statements(engine)
    await take(lives(2, "A"))
    small = len(sent)
    sent.clear()
    await take(lives(60, "B"))  # 300 events, 60 entities, every table written
    assert len(sent) == small
    assert small <= 10


async def test_an_entitys_events_in_one_batch_build_on_each_other(
    engine: AsyncEngine,
) -> None:
    events = lives(3)
    one_batch = await intake(engine).take(events)
    together = [(c.entity, c.kind, c.status) for c in await outbox(engine)]
    states = {r.entity: r.state for r in await rows(engine, STATES)}

    async with engine.begin() as conn:
        for table in (OUTBOX, INBOX, STATES):
            await conn.execute(table.delete())
    one_by_one = [t for e in events for t in await intake(engine).take([e])]

    assert one_batch == one_by_one
    assert [(c.entity, c.kind, c.status) for c in await outbox(engine)] == together
    assert {r.entity: r.state for r in await rows(engine, STATES)} == states
    kinds = [kind for entity, kind, _ in together if entity == user_entity(TENANT, "E0")]
    assert kinds == [
        "create_user",
        "assign_licence",
        "update_user",
        "assign_licence",
        "suspend_user",
        "reactivate_user",
        "revoke_licence",
        "revoke_licence",
        "suspend_user",
    ]


async def test_commands_behind_a_dead_command_are_held_naming_it(engine: AsyncEngine) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1"), hr("joined", "E2")])
    first = (await outbox(engine))[0]
    async with engine.begin() as conn:
        await conn.execute(
            OUTBOX.update().where(OUTBOX.c.id == first.id).values(status=CommandStatus.DEAD.value)
        )
    await take([hr("updated", "E1", department="Sales"), hr("updated", "E2", department="Sales")])
    later = (await outbox(engine))[4:]
    by_entity = {(c.entity, c.kind): (c.status, c.hold_reason) for c in later}
    assert by_entity == {
        (user_entity(TENANT, "E1"), "update_user"): ("held", f"blocked by #{first.id}"),
        (user_entity(TENANT, "E1"), "assign_licence"): ("held", f"blocked by #{first.id}"),
        (user_entity(TENANT, "E2"), "update_user"): ("pending", None),
        (user_entity(TENANT, "E2"), "assign_licence"): ("pending", None),
    }


@pytest.mark.postgres
async def test_two_intakes_taking_the_same_batch_at_once_accept_each_event_once(
    postgres_database: str,
) -> None:
    """As two consumers do while a rebalance hands a partition from one to the other."""
    await asyncio.to_thread(db.upgrade, postgres_database)
    engines = [db.make_engine(postgres_database, pool_size=2) for _ in range(2)]
    try:
        events = lives(40)
        first, second = await asyncio.gather(*(intake(e).take(events) for e in engines))
        outcomes = [{a.outcome, b.outcome} for a, b in zip(first, second, strict=True)]
        assert outcomes == [{"accepted", "duplicate"}] * len(events)
        commands = await outbox(engines[0])
        assert len(commands) == sum(t.commands for t in first + second)
        assert len(await rows(engines[0], INBOX)) == len(events)
    finally:
        for engine in engines:
            await engine.dispose()
