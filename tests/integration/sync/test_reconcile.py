"""reconcile against the sandbox over HTTP, on SQLite and PostgreSQL: provision through the
outbox, change UCaaS behind the service's back, find each drift exactly, queue the
repairs once, dispatch them, and find nothing left."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.ucaas import UCaaSClient
from connectors.ucaas.models.customers import CustomerChanges
from connectors.ucaas.models.subscriptions import SubscriptionChanges, SubscriptionTermChanges
from connectors.ucaas.models.users import UserChanges
from service.app.bootstrap import Service, bootstrap
from service.devtools import sample_commands as c
from service.outbox.outcomes import MappingKey
from service.outbox.tables import CALLS, OUTBOX
from service.reconcile import SOURCE, RepairStatus, Report, What, reconcile, shell
from tests.integration.conftest import service_settings
from tests.support.sandbox_server import SandboxAdmin

TENANT = "CRM-1"
KEY = "feed1:uid1:20260301"


async def provision(service: Service) -> None:
    ann = c.email_of(TENANT, "E0000")
    batch = [
        *c.onboarding(TENANT, employees=3, seats=10),
        c.schedule(TENANT, KEY, ann, c.meeting_spec("Planning")),
    ]
    assert await service.uow.accept(c.event(), batch)
    await service.dispatcher.run_until_idle()
    assert await service.store.counts() == {"done": len(batch)}


async def ucaas_id(service: Service, kind: str, tenant: str, external_id: str) -> str:
    mapping = await service.store.mapping(MappingKey(kind, tenant, external_id))
    assert mapping is not None, (kind, external_id)
    return mapping.ucaas_id


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """The calls made between two reads of the sandbox's counters, by route."""
    old = before["calls"]
    return {k: n - old.get(k, 0) for k, n in after["calls"].items() if n != old.get(k, 0)}


def table(report: Report) -> list[tuple[Any, ...]]:
    return [
        (
            d.kind,
            d.external_id,
            d.what,
            dict(d.fields),
            d.status,
            [x.kind.value for x in d.repair or ()],
        )
        for d in report.drifts
    ]


# S (suspended) and C (closed) customers refuse the tenant's login (403, 4014): the user,
# licence and meeting repairs must run after the customer's reactivation, not beside it.
@pytest.mark.parametrize("status", ["S", "C"])
async def test_drift_is_found_repaired_once_and_gone(
    service: Service, api: UCaaSClient, sandbox: SandboxAdmin, status: str
) -> None:
    await provision(service)
    clean = await reconcile(service)
    # customer, subscription, 3 users, 3 licences, 1 meeting
    assert (clean.checked, clean.drifts) == (9, [])

    customer_id = await ucaas_id(service, "customer", "", TENANT)
    subscription_id = await ucaas_id(service, "subscription", TENANT, f"{TENANT}-p1")
    await api.customers.edit(
        customer_id, CustomerChanges(customer_name="Renamed Co", status=status)
    )
    await api.subscriptions.update(
        subscription_id, SubscriptionChanges(subscription=SubscriptionTermChanges(no_of_license=12))
    )
    await api.users.edit(
        await ucaas_id(service, "user", TENANT, "E0001"), UserChanges(first_name="Someone")
    )
    await api.users.revoke_licence(await ucaas_id(service, "user", TENANT, "E0002"), "vc")
    await api.meetings.cancel(await ucaas_id(service, "meeting", TENANT, KEY), "vc")

    found = await reconcile(service)
    planned, none = RepairStatus.PLANNED, RepairStatus.NONE
    assert table(found) == [
        (
            "customer",
            TENANT,
            What.DIFFERS,
            {"customer_name": ("Company CRM-1", "Renamed Co"), "status": ("A", status)},
            planned,
            ["update_customer"],
        ),
        ("subscription", f"{TENANT}-p1", What.DIFFERS, {"seats": (10, 12)}, none, []),
        (
            "user",
            "E0001",
            What.DIFFERS,
            {"first_name": ("Emp", "Someone")},
            planned,
            ["update_user"],
        ),
        (
            "licence",
            "E0002:vc",
            What.MISSING,
            {"access": (True, False)},
            planned,
            ["assign_licence"],
        ),
        ("meeting", KEY, What.GONE, {}, planned, ["update_meeting"]),
    ]
    assert (found.checked, found.in_step, len(found.unresolved)) == (9, 4, 5)
    assert await service.store.counts() == {"done": 6 * 1 + 2 + 1}  # nothing queued yet

    queued = await reconcile(service, repair=True)
    assert queued.queued == 4
    assert [d.status for d in queued.drifts] == [RepairStatus.QUEUED] * 1 + [none] + [
        RepairStatus.QUEUED
    ] * 3
    async with service.engine.connect() as conn:
        rows = (await conn.execute(OUTBOX.select().where(OUTBOX.c.event_source == SOURCE))).all()
    [gate] = [r.id for r in rows if r.kind == "update_customer"]
    behind = f"blocked by #{gate}"
    assert sorted((r.kind, r.entity, r.status, r.hold_reason) for r in rows) == [
        ("assign_licence", "user:CRM-1:E0002", "held", behind),
        ("update_customer", "customer:CRM-1", "pending", None),
        ("update_meeting", f"meeting:{KEY}", "held", behind),
        ("update_user", "user:CRM-1:E0001", "held", behind),
    ]
    assert [d.reason for d in queued.drifts if d.kind in ("user", "licence", "meeting")] == [
        f"after #{gate}, the customer's reactivation"
    ] * 3

    # Before dispatch, a second run queues nothing more: the repairs are already open.
    again = await reconcile(service, repair=True)
    assert again.queued == 0
    assert [d.status for d in again.drifts] == [RepairStatus.ALREADY_QUEUED, none] + [
        RepairStatus.ALREADY_QUEUED
    ] * 3
    assert [d.kind for d in again.unresolved] == ["subscription"]

    before = sandbox.calls()
    # A slow reactivation: repairs beside it rather than behind it would be refused (4014).
    sandbox.faults(latency_ms=300, only=["PATCH /customers"])
    await service.dispatcher.run_until_idle()
    sandbox.faults(latency_ms=0)
    counts = await service.store.counts()
    assert counts == {"done": 9 + 4}, await service.store.rows(status="dead")
    # The others' calls all came after the reactivation, and none was refused.
    async with service.engine.connect() as conn:
        log = (await conn.execute(CALLS.select().where(CALLS.c.command_id >= gate))).all()
    [reactivation] = [c for c in log if c.command_id == gate]
    assert reactivation.status == 200
    others = [c for c in log if c.command_id != gate]
    assert {c.command_id for c in others} == {r.id for r in rows} - {gate}
    assert all(c.at >= reactivation.at and c.status != 403 for c in others), others
    assert "PATCH /customers/{customer_id}" in delta(before, sandbox.calls())

    # What no command changes, a person puts back; then nothing is left.
    await api.subscriptions.update(
        subscription_id, SubscriptionChanges(subscription=SubscriptionTermChanges(no_of_license=10))
    )
    after = await reconcile(service)
    assert (after.checked, after.drifts) == (9, [])
    state = sandbox.state()
    meetings = [m for m in state["meetings"] if m["cancelled_at"] is None]
    assert [m["room_name"] for m in meetings] == ["Planning"]  # scheduled again, once
    assert await service.store.counts() == {"done": 13}  # the clean run queued nothing


async def test_everything_missing_is_created_again(
    service: Service, sandbox: SandboxAdmin, database_url: str
) -> None:
    await provision(service)
    sandbox.reset()  # UCaaS loses everything the service made

    report = await reconcile(service, repair=True)
    assert [(d.kind, d.what, d.status) for d in report.drifts] == [
        ("customer", What.MISSING, RepairStatus.QUEUED),
        ("subscription", What.MISSING, RepairStatus.QUEUED),
        *[("user", What.MISSING, RepairStatus.QUEUED)] * 3,
        *[("licence", What.MISSING, RepairStatus.QUEUED)] * 3,
        ("meeting", What.GONE, RepairStatus.QUEUED),
    ]
    assert report.queued == 9

    # Dispatchers keep customer ids and logins: the repairs run in a fresh process.
    fresh = await bootstrap(service_settings(database_url, sandbox), migrate=False)
    try:
        await fresh.dispatcher.run_until_idle()
        counts = await fresh.store.counts()
        assert counts == {"done": 9 + 9}, await fresh.store.rows(status="dead")
        after = await reconcile(fresh)
        assert (after.checked, after.drifts) == (9, [])
    finally:
        await fresh.aclose()
    state = sandbox.state()
    assert [x["customer_code"] for x in state["customers"] if x["customer_code"] == TENANT] == [
        TENANT
    ]
    assert len([u for u in state["users"] if u["user_type"] == "AP"]) == 3


@pytest.mark.parametrize("kinds", [["meeting"], ["licence"]])
async def test_tenant_and_kind_filters(
    service: Service, api: UCaaSClient, kinds: list[str]
) -> None:
    await provision(service)
    await api.users.revoke_licence(await ucaas_id(service, "user", TENANT, "E0000"), "vc")
    await api.meetings.cancel(await ucaas_id(service, "meeting", TENANT, KEY), "vc")
    report = await reconcile(service, tenant=TENANT, kinds=kinds)
    assert report.checked == (1 if kinds == ["meeting"] else 3)
    assert [d.kind for d in report.drifts] == kinds
    other = await reconcile(service, tenant="CRM-OTHER")
    assert (other.checked, other.drifts) == (0, [])


async def test_many_objects_are_read_with_list_routes(
    service: Service, api: UCaaSClient, sandbox: SandboxAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    await provision(service)
    await api.users.edit(
        await ucaas_id(service, "user", TENANT, "E0001"), UserChanges(first_name="Someone")
    )
    await api.meetings.cancel(await ucaas_id(service, "meeting", TENANT, KEY), "vc")
    monkeypatch.setattr(shell, "FEW", 0)  # as if there were more objects than GETs are worth
    before = sandbox.calls()
    report = await reconcile(service)
    assert [(d.kind, d.external_id) for d in report.drifts] == [("user", "E0001"), ("meeting", KEY)]
    calls = delta(before, sandbox.calls())
    assert {route for route in calls if route.startswith("GET")} == {
        "GET /customers",
        "GET /subscriptions",
        "GET /users",
        "GET /meetings",
    }, calls
    assert all(count == 1 for count in calls.values()), calls  # one page each


async def test_repairs_stay_held_while_the_reactivation_is_dead_and_run_after_its_retry(
    service: Service, api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    await provision(service)
    customer_id = await ucaas_id(service, "customer", "", TENANT)
    await api.customers.edit(customer_id, CustomerChanges(status="S"))
    await api.users.edit(
        await ucaas_id(service, "user", TENANT, "E0001"), UserChanges(first_name="Someone")
    )
    assert (await reconcile(service, repair=True)).queued == 2
    [gate] = await service.store.rows(entity=f"customer:{TENANT}", status="pending")
    [user] = await service.store.rows(entity=f"user:{TENANT}:E0001", status="held")

    sandbox.faults(error_rate=1.0, error_status=400, only=["PATCH /customers"])
    await service.dispatcher.run_until_idle()
    assert await service.store.counts() == {"done": 9, "dead": 1, "held": 1}
    [held] = await service.store.rows(status="held")
    assert (held.id, held.hold_reason) == (user.id, f"blocked by #{gate.id}")

    # Retried, the reactivation runs first again: the user's repair waits until it is done.
    sandbox.faults(error_rate=0.0, latency_ms=300)
    assert await service.store.retry(gate.id)
    assert [r.status for r in await service.store.rows(entity=user.entity)][-1] == "held"
    await service.dispatcher.run_until_idle()
    assert await service.store.counts() == {"done": 11}, await service.store.rows(status="dead")
    after = await reconcile(service)
    assert (after.checked, after.drifts) == (9, [])
