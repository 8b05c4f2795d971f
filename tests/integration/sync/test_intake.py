"""Intake: CloudEvents to inbox, outbox and desired state in one transaction per batch,
on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Envelope
from connectors.hr.scim import ENTERPRISE
from service.domain.commands import user_entity
from service.intake.licences import LicencePolicy, Rule
from service.intake.shell import Intake, fingerprint
from service.outbox.store import OutboxStore
from service.outbox.tables import INBOX, OUTBOX, STATES, CommandStatus
from service.outbox.unit_of_work import UnitOfWork
from service.settings import IntakeSettings
from tests.support.kafka import envelope as parsed

_ids = itertools.count(1)
TENANT = "CRM-1"
COMPANY = {
    "name": "Acme Robotics",
    "legal_name": "Acme Robotics SAS",
    "contact": {"name": "Paul Martin", "email": "billing@acme.example"},
    "office_address": {"line1": "12 rue de la Paix", "city": "Paris", "country": "FR"},
}


def cloudevent(type_: str, subject: str, data: Any, event_id: str | None = None) -> Envelope:
    return parsed(type_, subject, data, event_id=event_id or f"ev-{next(_ids)}", source="/test")


def hr(
    kind: str,
    employee: str,
    event_id: str | None = None,
    *,
    tenant: str = TENANT,
    department: str = "Finance",
    **extra: Any,
) -> Envelope:
    data = {
        "userName": f"{employee.lower()}@acme.example",
        "name": {"givenName": "Emp", "familyName": employee},
        ENTERPRISE: {"employeeNumber": employee, "department": department},
        "tenant": tenant,
        **extra,
    }
    return cloudevent(f"hr.user.{kind}", employee, data, event_id)


def intake(engine: AsyncEngine, commits: list[int] | None = None, **settings: Any) -> Intake:
    policy = LicencePolicy(rules=(Rule(department="Sales", apps=("vc", "wb")),))
    on_commit = (lambda: commits.append(1)) if commits is not None else None
    return Intake(UnitOfWork(engine, on_commit), policy, IntakeSettings(**settings))


async def rows(engine: AsyncEngine, table: sa.Table, *order: Any) -> list[Any]:
    async with engine.connect() as conn:
        query = sa.select(table)
        if order:
            query = query.order_by(*order)
        return list((await conn.execute(query)).all())


async def outbox(engine: AsyncEngine) -> list[Any]:
    return await rows(engine, OUTBOX, OUTBOX.c.id)


async def counts(engine: AsyncEngine) -> tuple[int, int, int]:
    return (
        len(await rows(engine, INBOX)),
        len(await outbox(engine)),
        len(await rows(engine, STATES)),
    )


async def test_an_event_writes_inbox_commands_and_state(engine: AsyncEngine) -> None:
    commits: list[int] = []
    envelope = hr("joined", "E1", department="Sales")
    [taken] = await intake(engine, commits).take([envelope])
    assert (taken.outcome, taken.commands, taken.note) == ("accepted", 3, None)
    assert commits == [1]

    [inbox] = await rows(engine, INBOX)
    assert (inbox.source, inbox.event_id, inbox.type) == ("/test", envelope.id, "hr.user.joined")
    assert (inbox.subject, inbox.tenant, inbox.commands) == ("E1", TENANT, 3)
    assert inbox.outcome == "accepted"
    assert inbox.fingerprint == fingerprint(envelope)
    assert len(inbox.fingerprint) == 64

    commands = await outbox(engine)
    assert [c.kind for c in commands] == ["create_user", "assign_licence", "assign_licence"]
    assert {c.entity for c in commands} == {user_entity(TENANT, "E1")}
    assert {(c.tenant, c.status, c.event_id) for c in commands} == {
        (TENANT, CommandStatus.PENDING.value, envelope.id)
    }
    assert commands[0].payload["profile"]["email"] == "e1@acme.example"
    assert [c.payload.get("app") for c in commands[1:]] == ["vc", "wb"]

    [state] = await rows(engine, STATES)
    assert (state.entity, state.kind, state.tenant) == (user_entity(TENANT, "E1"), "user", TENANT)
    assert state.last_event == envelope.id
    assert state.state["status"] == "active"
    assert state.state["apps"] == ["vc", "wb"]


async def test_a_duplicate_event_id_writes_nothing(engine: AsyncEngine) -> None:
    envelope = hr("joined", "E1")
    take = intake(engine).take
    assert [t.outcome for t in await take([envelope])] == ["accepted"]
    before = await counts(engine)
    [again] = await take([envelope])
    assert (again.outcome, again.commands) == ("duplicate", 0)
    assert await counts(engine) == before
    # twice in one batch: the second is the duplicate, and only one set of commands
    other = hr("joined", "E2")
    results = await take([other, other])
    assert [(t.outcome, t.commands) for t in results] == [("accepted", 2), ("duplicate", 0)]
    assert len(await outbox(engine)) == 4


async def test_the_same_content_under_a_new_id_is_accepted_with_no_commands(
    engine: AsyncEngine,
) -> None:
    first = hr("joined", "E1")
    again = cloudevent(first.type, "E1", first.data)
    assert again.id != first.id
    take = intake(engine).take
    await take([first])
    [taken] = await take([again])
    assert (taken.outcome, taken.commands, taken.note) == (
        "accepted",
        0,
        "nothing changed: active already",
    )
    assert len(await outbox(engine)) == 2
    inbox = {r.event_id: r for r in await rows(engine, INBOX)}
    assert inbox[again.id].outcome == "nothing changed: active already"
    assert inbox[again.id].commands == 0
    assert inbox[again.id].fingerprint == inbox[first.id].fingerprint


async def test_invalid_events_are_reported_and_nothing_of_them_stored(
    engine: AsyncEngine,
) -> None:
    commits: list[int] = []
    results = await intake(engine, commits).take(
        [
            cloudevent("hr.user.promoted", "E1", {"tenant": TENANT}),
            hr("joined", "E2", name={"familyName": "NoGiven"}),
            hr("joined", "E3", userName="not-an-address"),
            cloudevent("crm.company.created", "CRM-9", {"name": "Partial"}),
            cloudevent("crm.subscription.purchased", "CRM-9", {"purchase_id": "P", "seats": 0}),
        ]
    )
    assert [(t.outcome, t.error) for t in results] == [
        ("invalid", "unknown_type"),
        ("invalid", "invalid_data"),
        ("invalid", "invalid_data"),
        ("invalid", "invalid_data"),
        ("invalid", "invalid_data"),
    ]
    assert all(t.reason for t in results)
    assert "name.givenName" in (results[1].reason or "")
    assert await counts(engine) == (0, 0, 0)
    assert commits == []


async def test_a_batch_mixes_valid_and_invalid_in_order(engine: AsyncEngine) -> None:
    # with its tenant, longer than the outbox's entity column takes (a PostgreSQL error
    # there would fail the whole batch, again and again)
    long_id = "E" * 200
    results = await intake(engine).take(
        [
            hr("joined", "E1"),
            hr(
                "joined",
                long_id,
                tenant="T" * 100,
                emails=[{"value": "long@acme.example"}],
                name={"givenName": "L"},
            ),
            cloudevent("crm.company.created", "CRM-2", COMPANY),
            hr("joined", "E2", tenant="T" * 100),
        ]
    )
    assert [t.outcome for t in results] == ["accepted", "invalid", "accepted", "accepted"]
    assert "longer than 100" in (results[1].reason or "")
    assert await counts(engine) == (3, 5, 3)


async def test_state_persists_across_batches_and_intakes(engine: AsyncEngine) -> None:
    bought = {
        "purchase_id": "P-1",
        "plan": "vc-basic",
        "app": "vc",
        "seats": 3,
        "start": "2026-12-01",
    }
    await intake(engine).take(
        [hr("joined", "E1"), cloudevent("crm.subscription.purchased", "CRM-5", bought)]
    )
    later = intake(engine)  # a new process would start with nothing in memory
    [leave] = await later.take([hr("leave_started", "E1")])
    assert leave.commands == 1
    [leave_again] = await later.take([hr("leave_started", "E1")])
    assert leave_again.commands == 0
    assert leave_again.note == "nothing changed: on leave already"
    [back] = await intake(engine).take([hr("leave_ended", "E1")])
    assert back.commands == 1
    [created] = await intake(engine).take([cloudevent("crm.company.created", "CRM-5", COMPANY)])
    assert created.commands == 1
    kinds = [c.kind for c in await outbox(engine)]
    assert kinds == [
        "create_user",
        "assign_licence",
        "create_subscription",
        "suspend_user",
        "reactivate_user",
        "create_customer",  # not an update: the purchase came first
    ]
    states = {r.entity: r for r in await rows(engine, STATES)}
    user = states[user_entity(TENANT, "E1")]
    assert user.state["status"] == "active"
    company = states["customer:CRM-5"]
    assert company.kind == "company"
    assert company.state["created"] is True
    assert company.state["purchases"] == {
        "P-1": {"status": "active", "seats": 3, "plan": "vc-basic", "subscribed": True}
    }


async def test_left_for_an_unknown_user_is_recorded_and_does_nothing(
    engine: AsyncEngine,
) -> None:
    [taken] = await intake(engine).take([hr("left", "E404")])
    assert (taken.outcome, taken.commands) == ("accepted", 0)
    [inbox] = await rows(engine, INBOX)
    assert inbox.outcome == "left for an unknown user: recorded, nothing to do"
    assert await outbox(engine) == []
    assert await rows(engine, STATES) == []


async def test_the_guard_holds_a_deprovisioning_burst_for_approval(
    database_url: str, engine: AsyncEngine
) -> None:
    take = intake(engine, guard_threshold=3).take
    employees = [f"E{n}" for n in range(1, 6)]
    await take([hr("joined", e) for e in employees])  # one licence each (vc)
    results = await take([hr("left", e) for e in employees])
    assert [t.commands for t in results] == [2, 2, 2, 2, 2]

    lefts = [c for c in await outbox(engine) if c.kind in ("revoke_licence", "suspend_user")]
    assert len(lefts) == 10
    # the guard counts people: three leavers (3 <= 3) run, the fourth and fifth are held
    assert [c.status for c in lefts[:6]] == [CommandStatus.PENDING.value] * 6
    held = lefts[6:]
    assert {c.status for c in held} == {CommandStatus.HELD.value}
    assert all(c.hold_reason.startswith("approval: ") for c in held)
    assert f"4 people suspended/revoked in tenant {TENANT}" in held[0].hold_reason
    assert "(limit 3)" in held[0].hold_reason

    # another tenant is not affected; this tenant stays held while the window lasts
    [other] = await take([hr("joined", "X1", tenant="CRM-2")])
    assert other.commands == 2
    await take([hr("left", "X1", tenant="CRM-2")])
    await take([hr("joined", "E9"), hr("left", "E9")])
    rows_ = await outbox(engine)
    assert {c.status for c in rows_ if c.tenant == "CRM-2"} == {CommandStatus.PENDING.value}
    late = [c for c in rows_ if c.entity == user_entity(TENANT, "E9")]
    assert [c.status for c in late] == ["pending", "pending", "held", "held"]

    store = OutboxStore(engine)
    assert [r.id for r in await store.held_for_approval()] == [c.id for c in held] + [
        c.id for c in late[2:]
    ]
    assert await store.deny(command_id=held[0].id) == 1
    assert await store.deny(command_id=held[0].id) == 0  # no longer held
    assert await store.approve(tenant="CRM-2") == 0
    assert await store.approve(tenant=TENANT) == 5
    after = {c.id: c for c in await outbox(engine)}
    assert after[held[0].id].status == CommandStatus.DROPPED.value
    assert {after[c.id].status for c in held[1:]} == {CommandStatus.PENDING.value}
    assert all(after[c.id].hold_reason is None for c in held[1:])
    assert await store.held_for_approval() == []


async def test_dropped_commands_do_not_count_towards_the_guard(engine: AsyncEngine) -> None:
    take = intake(engine, guard_threshold=1).take
    await take([hr("joined", "E1"), hr("joined", "E2")])
    await take([hr("left", "E1")])  # 1 person: at the limit, runs
    await take([hr("left", "E2")])  # 2 people: held
    store = OutboxStore(engine)
    assert await store.deny(tenant=TENANT) == 2
    await take([hr("joined", "E3"), hr("leave_started", "E3")])  # 1 counted + 1 = 2: held
    [suspend] = [c for c in await outbox(engine) if c.entity == user_entity(TENANT, "E3")][-1:]
    assert suspend.status == CommandStatus.HELD.value


async def test_effective_dated_commands_wait_until_then(engine: AsyncEngine) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)
    await intake(engine).take(
        [
            hr("joined", "E1", effective_at=when.isoformat()),
            hr("joined", "E2", effective_at=past.isoformat()),
        ]
    )
    commands = await outbox(engine)
    dated = [c for c in commands if c.entity == user_entity(TENANT, "E1")]
    now_ = [c for c in commands if c.entity == user_entity(TENANT, "E2")]
    assert [c.next_attempt_at for c in dated] == [when, when]
    assert all(c.next_attempt_at < when - timedelta(days=6) for c in now_)
    assert all(c.next_attempt_at > past for c in now_)


async def test_approving_keeps_the_effective_date(engine: AsyncEngine) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    take = intake(engine, guard_threshold=0).take
    await take([hr("joined", "E1")])
    await take([hr("left", "E1", effective_at=when.isoformat())])
    assert await OutboxStore(engine).approve(tenant=TENANT) == 2
    dated = [c for c in await outbox(engine) if c.kind in ("revoke_licence", "suspend_user")]
    assert [(c.status, c.next_attempt_at) for c in dated] == [("pending", when)] * 2


async def test_an_approved_burst_is_not_counted_again(engine: AsyncEngine) -> None:
    take = intake(engine, guard_threshold=1).take
    await take([hr("joined", f"E{n}") for n in range(4)])
    await take([hr("left", "E0"), hr("left", "E1")])  # 2 people: over the limit of 1
    store = OutboxStore(engine)
    held = await store.held_for_approval()
    assert len(held) >= 2
    assert await store.approve(tenant=TENANT) == len(held)
    # one more leaver: the approved ones are not counted, the 2 that ran are
    await take([hr("left", "E2")])
    assert len(await store.held_for_approval()) == 2  # E0 ran + E2 = 2 people > 1: held
    await store.deny(tenant=TENANT)
    assert await store.held_for_approval() == []
