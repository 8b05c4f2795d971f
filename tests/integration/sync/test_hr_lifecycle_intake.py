"""The HR lifecycle through the intake and the outbox, on SQLite and PostgreSQL: a
termination dated ahead neither blocks the notice period's updates nor survives its
withdrawal; a rehire under a new id is found by e-mail; old events change nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.domain.commands import user_entity
from service.outbox import db
from service.outbox.claims import Claims
from service.outbox.tables import OUTBOX, STATES, CommandStatus
from service.outbox.unit_of_work import UnitOfWork, Withdrawn, WithdrawRaced
from tests.integration.sync.test_intake import TENANT, hr, intake, rows


def ahead(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


async def commands_of(engine: AsyncEngine, employee: str) -> list[sa.Row[tuple[object, ...]]]:
    entity = user_entity(TENANT, employee)
    return [r for r in await rows(engine, OUTBOX, OUTBOX.c.id) if r.entity == entity]


async def finish(engine: AsyncEngine, ids: list[int]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            OUTBOX.update().where(OUTBOX.c.id.in_(ids)).values(status=CommandStatus.DONE.value)
        )


async def test_an_update_in_the_notice_period_runs_before_the_dated_termination(
    engine: AsyncEngine,
) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1")])
    await finish(engine, [r.id for r in await commands_of(engine, "E1")])
    when = ahead(30)
    await take([hr("left", "E1", effective_at=when.isoformat())])
    await take([hr("updated", "E1", title="Lead")])  # a new title, now
    commands = await commands_of(engine, "E1")
    open_ = [(r.kind, r.effective_at) for r in commands if r.status != "done"]
    assert open_ == [
        ("revoke_licence", when),
        ("suspend_user", when),
        ("update_user", None),
    ]

    claimed = await Claims(engine).claim("me", limit=10, lease_s=30)
    assert [c.kind for c in claimed] == ["update_user"]  # not held up by the termination


async def test_the_notice_periods_licence_change_replans_the_termination(
    engine: AsyncEngine,
) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1")])
    when = ahead(30)
    await take([hr("left", "E1", effective_at=when.isoformat())])
    await take([hr("updated", "E1", department="Sales")])  # now vc + wb: both to revoke
    commands = await commands_of(engine, "E1")
    dropped = [r for r in commands if r.status == CommandStatus.DROPPED.value]
    assert [r.kind for r in dropped] == ["revoke_licence", "suspend_user"]
    assert all(r.hold_reason.startswith("withdrawn by event ") for r in dropped)
    dated = [r for r in commands if r.effective_at is not None and r.status == "pending"]
    assert [(r.kind, r.payload.get("app")) for r in dated] == [
        ("revoke_licence", "vc"),
        ("revoke_licence", "wb"),
        ("suspend_user", None),
    ]


async def test_a_withdrawn_termination_never_runs(engine: AsyncEngine) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1")])
    await take([hr("left", "E1", effective_at=ahead(30).isoformat())])
    [rescinded] = await take([hr("joined", "E1")])
    assert rescinded.commands == 0
    after = await commands_of(engine, "E1")
    dated = [r for r in after if r.effective_at is not None]
    assert {r.status for r in dated} == {CommandStatus.DROPPED.value}
    [state] = [s for s in await rows(engine, STATES) if s.entity == user_entity(TENANT, "E1")]
    assert state.state["status"] == "active"
    assert state.state["pending"] is None


async def test_both_events_in_one_batch_leave_nothing_dated(engine: AsyncEngine) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1")])
    await take([hr("left", "E1", effective_at=ahead(30).isoformat()), hr("joined", "E1")])
    assert [r for r in await commands_of(engine, "E1") if r.effective_at is not None] == []


async def test_a_withdrawal_that_raced_a_claim_is_translated_again(engine: AsyncEngine) -> None:
    """The dated suspend started (its date came by the claiming host's clock) while the
    rescinding event was translated: the event is taken again as of that date, so the
    person is rehired after the termination instead of left terminated."""
    take = intake(engine).take
    await take([hr("joined", "E1")])
    when = ahead(1)
    await take([hr("left", "E1", effective_at=when.isoformat())])
    dated = [r for r in await commands_of(engine, "E1") if r.effective_at is not None]
    async with engine.begin() as conn:  # a dispatcher with a fast clock claims them
        await conn.execute(
            OUTBOX.update()
            .where(OUTBOX.c.id.in_([r.id for r in dated]))
            .values(status=CommandStatus.IN_FLIGHT.value)
        )
    [taken] = await take([hr("joined", "E1")])
    assert taken.commands >= 2
    after = await commands_of(engine, "E1")
    new = [r for r in after if r.id > dated[-1].id]
    assert [r.kind for r in new][:2] == ["reactivate_user", "assign_licence"]
    ids = {r.id for r in dated}
    assert {r.status for r in after if r.id in ids} == {"in_flight"}  # not withdrawn


async def test_withdraw_refuses_when_a_dated_command_has_started(engine: AsyncEngine) -> None:
    await intake(engine).take([hr("joined", "E1")])
    when = ahead(2)
    await intake(engine).take([hr("left", "E1", effective_at=when.isoformat())])
    [first, *_] = [r for r in await commands_of(engine, "E1") if r.effective_at is not None]
    async with engine.begin() as conn:
        await conn.execute(
            OUTBOX.update().where(OUTBOX.c.id == first.id).values(status="in_flight")
        )
    with pytest.raises(WithdrawRaced):
        async with intake(engine).uow.transaction() as tx:
            await tx.commands.withdraw([Withdrawn(user_entity(TENANT, "E1"), "x", ahead(0))])


async def test_a_rehire_under_a_new_id_takes_back_the_leavers_user(engine: AsyncEngine) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1"), hr("left", "E1")])
    # the same person back under a new employee id, with the same work e-mail
    [back] = await take([hr("joined", "E2", userName="e1@acme.example")])
    assert back.note == "rehire of E1: their UCaaS user"
    # one UCaaS user, one queue: behind E1's suspension, on E1's entity
    assert await commands_of(engine, "E2") == []
    commands = [r for r in await commands_of(engine, "E1") if r.payload["employee_id"] == "E2"]
    assert [r.kind for r in commands][:2] == ["create_user", "reactivate_user"]
    assert commands[0].payload["rehire_of"] == "E1"
    # an active person's e-mail: the same user, shared on their queue (not a rehire)
    await take([hr("joined", "E3", userName="e3@acme.example")])
    [other] = await take([hr("joined", "E4", userName="e3@acme.example")])
    assert other.note == "same person as E3: their UCaaS user"
    shared = [r for r in await commands_of(engine, "E3") if r.payload["employee_id"] == "E4"]
    # adopted, E4's name pushed; E3's licence is E4's too: nothing assigned or revoked
    assert [r.kind for r in shared] == ["create_user", "update_user"]


async def test_an_older_event_is_recorded_and_changes_nothing(engine: AsyncEngine) -> None:
    take = intake(engine).take
    t = datetime(2026, 12, 1, 9, tzinfo=UTC)
    newer = {"meta": {"lastModified": (t + timedelta(hours=1)).isoformat()}}
    older = {"meta": {"lastModified": t.isoformat()}}
    await take([hr("joined", "E1", department="Sales", **newer)])
    [late] = await take([hr("left", "E1", **older)])
    assert late.commands == 0
    assert "older" in (late.note or "")
    assert {r.kind for r in await commands_of(engine, "E1")} == {"create_user", "assign_licence"}


async def test_active_false_on_an_update_is_a_leaver(engine: AsyncEngine) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1")])
    [gone] = await take([hr("updated", "E1", active=False)])
    assert gone.commands == 2
    kinds = [r.kind for r in await commands_of(engine, "E1")]
    assert kinds[-2:] == ["revoke_licence", "suspend_user"]
    [back] = await take([hr("updated", "E1", active=True)])
    assert [r.kind for r in await commands_of(engine, "E1")][-2:] == [
        "reactivate_user",
        "assign_licence",
    ]
    assert back.note == "rehire: same UCaaS user"


async def test_a_rehires_joiner_heard_before_the_leaver_keeps_the_user(
    engine: AsyncEngine,
) -> None:
    take = intake(engine).take
    await take([hr("joined", "E1")])
    await take([hr("joined", "E2", userName="e1@acme.example")])  # before E1's leaving
    [gone] = await take([hr("left", "E1")])
    assert gone.commands == 0  # E2 has the user, with the same licence
    assert "suspend_user" not in [r.kind for r in await commands_of(engine, "E1")]


@pytest.mark.postgres
async def test_two_batches_about_one_person_wait_for_each_other(postgres_database: str) -> None:
    """A rehire's new id and the leaver's old one may be taken by two processes at once:
    on PostgreSQL the second waits for the first to commit, then sees what it wrote."""
    await asyncio.to_thread(db.upgrade, postgres_database)
    engine = db.make_engine(postgres_database, pool_size=2)
    uow = UnitOfWork(engine)
    key = f"{TENANT}/email/e1@acme.example"
    try:
        async with uow.transaction() as first:
            await first.states.lock_people([key, "other"])

            async def second() -> None:
                async with uow.transaction() as tx:
                    await tx.states.lock_people([key])

            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.5)
            assert not waiting.done()
        await asyncio.wait_for(waiting, 5)
    finally:
        await engine.dispose()


async def test_a_leave_of_one_id_does_not_suspend_a_user_another_id_has(
    engine: AsyncEngine,
) -> None:
    """The rehire's new id heard first, then the first id's whole history: its leave
    and its leaving leave the user to the new id, active."""
    take = intake(engine).take
    await take([hr("joined", "R1", userName="e1@acme.example")])
    for kind in ("joined", "leave_started", "left"):
        await take([hr(kind, "E1")])
    kinds = [r.kind for r in await commands_of(engine, "R1")]
    assert "suspend_user" not in kinds, kinds


async def test_the_upgrade_gives_the_people_known_before_their_email_key(
    database_url: str,
) -> None:
    """A leaver known before migration 0008 is matched by e-mail after it, like one known
    since."""
    await asyncio.to_thread(db.upgrade, database_url, "0007")
    engine = db.make_engine(database_url)
    try:
        state = {"status": "left", "profile": {"email": "ann@acme.example", "first_name": "A"}}
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO entity_state (entity, kind, tenant, state, updated_at)"
                    " VALUES ('user:CRM-1:E1', 'user', 'CRM-1', :state, :now)"
                ),
                {"state": orjson.dumps(state).decode(), "now": datetime.now(UTC)},
            )
        await asyncio.to_thread(db.upgrade, database_url)
        [row] = await rows(engine, STATES)
        assert row.natural_key == "ann@acme.example"
        [back] = await intake(engine).take([hr("joined", "E2", userName="ann@acme.example")])
        assert back.note == "rehire of E1: their UCaaS user"
    finally:
        await engine.dispose()
