"""reconcile against HR, against the sandbox over HTTP, on SQLite and PostgreSQL: people
provisioned by the intake from hr.user.joined events and dispatched; then a full HR
snapshot in which one has gone (an orphan) and one is inactive (a leaver still active).
Found, deprovisioned once through the outbox, held by the guard beyond its threshold,
and serialised between concurrent runs."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from connectors.hr.snapshot import list_response
from connectors.ucaas import UCaaSClient
from service.app.bootstrap import Service
from service.domain.commands import APPROVAL, user_entity
from service.outbox.outcomes import MappingKey
from service.outbox.tables import INBOX, OUTBOX, STATES
from service.reconcile import SOURCE, RepairStatus
from service.reconcile.hr_model import Found, HrReport, Snapshot
from service.reconcile.hr_people import from_list_response
from service.reconcile.hr_shell import reconcile_hr
from service.settings import IntakeSettings
from tests.support.hr_snapshot import enterprise_user, settle
from tests.support.hr_snapshot import list_response as document
from tests.support.hr_snapshot import provision as provision_staff
from tests.support.kafka import envelope

T = "CRM-1"
STAFF = ("E1", "E2", "E3", "E4", "E5")


async def provision(service: Service) -> None:
    await provision_staff(service, T, STAFF)


def hr_snapshot(*users: dict[str, Any], **kw: Any) -> Snapshot:
    return from_list_response(list_response(orjson.dumps(document(list(users), **kw))), "f", T)


# E3 has gone from HR, E2 is inactive: everyone else is as they were
HR = hr_snapshot(
    *[enterprise_user(e) for e in ("E1", "E4", "E5")], enterprise_user("E2", active=False)
)


async def ucaas_user(service: Service, api: UCaaSClient, employee: str) -> tuple[str, bool]:
    mapping = await service.store.mapping(MappingKey("user", T, employee))
    assert mapping is not None
    user = await api.users.get(mapping.ucaas_id)
    assert user.status is not None
    return user.status, bool(user.vc and user.vc.access)


async def ours(service: Service) -> list[Any]:
    async with service.engine.connect() as conn:
        query = OUTBOX.select().where(OUTBOX.c.event_source == SOURCE).order_by(OUTBOX.c.id)
        return list((await conn.execute(query)).all())


def rows(report: HrReport) -> list[tuple[Any, ...]]:
    return [
        (f.what, f.user.employee_ids, f.status, f.repair_status, f.held) for f in report.findings
    ]


async def test_orphans_and_leavers_are_found_deprovisioned_once_and_rehired(
    service: Service, api: UCaaSClient
) -> None:
    await provision(service)
    guard = IntakeSettings()

    found = await reconcile_hr(service, HR, guard=guard)
    planned = RepairStatus.PLANNED
    assert rows(found) == [
        (Found.LEAVER, ("E2",), "A", planned, None),
        (Found.ORPHAN, ("E3",), "A", planned, None),
    ]
    assert (found.checked, found.suspect, len(found.unresolved)) == (5, (), 2)
    assert await ours(service) == []  # a report writes nothing

    queued = await reconcile_hr(service, HR, guard=guard, repair=True)
    assert queued.queued == 4
    assert [f.repair_status for f in queued.findings] == [RepairStatus.QUEUED] * 2
    assert [(r.kind, r.entity, r.status) for r in await ours(service)] == [
        ("revoke_licence", user_entity(T, "E2"), "pending"),
        ("suspend_user", user_entity(T, "E2"), "pending"),
        ("revoke_licence", user_entity(T, "E3"), "pending"),
        ("suspend_user", user_entity(T, "E3"), "pending"),
    ]
    async with service.engine.connect() as conn:
        inbox = (await conn.execute(INBOX.select().where(INBOX.c.source == SOURCE))).all()
        states = dict((await conn.execute(sa.select(STATES.c.entity, STATES.c.state))).all())
    assert [(r.type, r.tenant, r.commands) for r in inbox] == [("hr.reconcile", T, 4)]
    # marked as left, as the intake's `left` rule does: a rehire reactivates them
    assert {e: (s["status"], s["apps"]) for e, s in states.items()} == {
        user_entity(T, "E1"): ("active", ["vc"]),
        user_entity(T, "E2"): ("left", []),
        user_entity(T, "E3"): ("left", []),
        user_entity(T, "E4"): ("active", ["vc"]),
        user_entity(T, "E5"): ("active", ["vc"]),
    }

    again = await reconcile_hr(service, HR, guard=guard, repair=True)
    assert again.queued == 0
    assert [f.repair_status for f in again.findings] == [RepairStatus.ALREADY_QUEUED] * 2
    assert again.unresolved == []

    await settle(service)
    assert await service.store.counts() == {"done": 12 + 4}
    assert [await ucaas_user(service, api, e) for e in STAFF] == [
        ("A", True),
        ("S", False),
        ("S", False),
        ("A", True),
        ("A", True),
    ]
    after = await reconcile_hr(service, HR, guard=guard, repair=True)
    # the leaver is suspended now; the orphan stays an orphan, with nothing left to undo
    assert [(f.what, f.user.employee_ids, f.status, f.needs, f.reason) for f in after.findings] == [
        (Found.ORPHAN, ("E3",), "S", False, "already suspended, no licence mapped")
    ]
    assert (after.queued, after.unresolved) == (0, [])

    back = await service.intake.take(
        [envelope("hr.user.joined", "E3", enterprise_user("E3", tenant=T))]
    )
    assert back[0].note == "rehire: same UCaaS user"
    rehire = [
        r for r in await service.store.rows(entity=user_entity(T, "E3")) if r.status != "done"
    ]
    assert [r.kind for r in rehire] == ["reactivate_user", "assign_licence"]


async def test_beyond_the_guards_threshold_the_repairs_are_held_for_approval(
    service: Service,
) -> None:
    await provision(service)
    # E5 left through the intake a moment ago: one person already deprovisioned
    taken = await service.intake.take(
        [envelope("hr.user.left", "E5", enterprise_user("E5", tenant=T, active=False))]
    )
    assert taken[0].commands == 2
    await settle(service)
    hr = hr_snapshot(enterprise_user("E1"), enterprise_user("E2", active=False))

    # two people here (E3 and E4 gone, E2 inactive: three) plus E5: 4 > 3
    report = await reconcile_hr(service, hr, guard=IntakeSettings(guard_threshold=3), repair=True)
    reason = f"{APPROVAL}4 people suspended/revoked in tenant {T} within 60 min (limit 3)"
    queued = RepairStatus.QUEUED
    assert rows(report) == [
        (Found.LEAVER, ("E2",), "A", queued, reason),
        (Found.ORPHAN, ("E3",), "A", queued, reason),
        (Found.ORPHAN, ("E4",), "A", queued, reason),
        # E5 left: suspended, its licence revoked; gone from this snapshot, nothing to undo
        (Found.ORPHAN, ("E5",), "S", RepairStatus.NONE, None),
    ]
    assert report.held == 3
    held = await ours(service)
    assert len(held) == 6
    assert {(r.status, r.hold_reason) for r in held} == {("held", reason)}
    await settle(service)  # nothing runs until a person approves
    assert {r.status for r in await ours(service)} == {"held"}

    # a held burst is not doubled by the next run, whatever its threshold
    later = await reconcile_hr(service, hr, guard=IntakeSettings(guard_threshold=99), repair=True)
    assert [f.repair_status for f in later.findings[:3]] == [RepairStatus.ALREADY_QUEUED] * 3
    assert (later.queued, len(await ours(service))) == (0, 6)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_concurrent_runs_queue_the_repairs_once(service: Service) -> None:
    await provision(service)
    guard = IntakeSettings()
    first, second = await asyncio.gather(
        reconcile_hr(service, HR, guard=guard, repair=True),
        reconcile_hr(service, HR, guard=guard, repair=True),
    )
    assert sorted([first.queued, second.queued]) == [0, 4]
    statuses = sorted([tuple(f.repair_status for f in r.findings) for r in (first, second)])
    assert statuses == [
        (RepairStatus.ALREADY_QUEUED,) * 2,
        (RepairStatus.QUEUED,) * 2,
    ]
    assert len(await ours(service)) == 4


async def test_a_user_rehired_under_a_new_employee_id_is_an_orphan_only_without_both(
    service: Service, api: UCaaSClient
) -> None:
    """E9 joins with E3's e-mail: the executor adopts E3's UCaaS user, so two employee ids
    map to one user. HR without E3 but with E9 has no orphan; without both, one."""
    await provision(service)
    rehired = enterprise_user("E9", tenant=T, email="e3@example.com")
    await service.intake.take([envelope("hr.user.joined", "E9", rehired)])
    await settle(service)
    e3 = await service.store.mapping(MappingKey("user", T, "E3"))
    e9 = await service.store.mapping(MappingKey("user", T, "E9"))
    assert e3 is not None and e9 is not None and e3.ucaas_id == e9.ucaas_id
    others = [enterprise_user(e) for e in ("E1", "E2", "E4", "E5")]

    with_e9 = await reconcile_hr(
        service, hr_snapshot(*others, enterprise_user("E9")), guard=IntakeSettings()
    )
    assert (with_e9.checked, with_e9.findings) == (5, [])  # five UCaaS users, six ids

    without = hr_snapshot(*others)
    report = await reconcile_hr(service, without, guard=IntakeSettings(), repair=True)
    [orphan] = report.findings
    assert (orphan.what, set(orphan.user.employee_ids), orphan.user.ucaas_id) == (
        Found.ORPHAN,
        {"E3", "E9"},
        e3.ucaas_id,
    )
    assert [c.kind.value for c in orphan.repair or ()][-1] == "suspend_user"
    await settle(service)
    assert await ucaas_user(service, api, "E9") == ("S", False)
    after = await reconcile_hr(service, without, guard=IntakeSettings(), repair=True)
    assert [(f.needs, f.reason) for f in after.findings] == [
        (False, "already suspended, no licence mapped")
    ]
