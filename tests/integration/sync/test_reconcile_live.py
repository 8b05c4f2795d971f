"""A dispatcher that keeps running while reconcile re-creates what vanished from UCaaS.

Dispatcher A provisions a tenant, so it keeps the customer's id, the tenant's login and
the users' ids in memory; then UCaaS loses everything behind the service's back, and
`reconcile --repair` from another service instance (as another process would) forgets the
mappings and queues the creates. A, never restarted, runs the repairs (or finds them run
by another dispatcher) and then the tenant's ordinary commands against the new objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from service.app.bootstrap import Service, bootstrap
from service.devtools import sample_commands as c
from service.outbox.outcomes import MappingKey
from service.outbox.store import OutboxStore
from service.reconcile import RepairStatus, reconcile
from tests.integration.conftest import service_settings
from tests.support.sandbox_server import SandboxAdmin

TENANT = "CRM-1"
KEY = "feed1:uid1:20260301"
REVIEW = "feed1:uid2:20260302"
OPEN = ("pending", "in_flight", "waiting", "held")


async def settle(store: OutboxStore, expected_done: int, timeout_s: float = 30.0) -> None:
    """Wait until `expected_done` commands are done and nothing is left to run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    counts: dict[str, int] = {}
    while loop.time() < deadline:
        counts = await store.counts()
        if counts.get("done") == expected_done and not any(counts.get(s) for s in OPEN):
            return
        if counts.get("dead"):
            break
        await asyncio.sleep(0.05)
    pytest.fail(f"not settled: {counts}; dead: {await store.rows(status='dead')}")


@asynccontextmanager
async def running(service: Service) -> AsyncIterator[None]:
    task = asyncio.create_task(service.dispatcher.run())
    try:
        yield
    finally:
        await service.dispatcher.stop()
        await task


async def ucaas_id(store: OutboxStore, kind: str, tenant: str, external_id: str) -> str:
    mapping = await store.mapping(MappingKey(kind, tenant, external_id), fresh=True)
    assert mapping is not None, (kind, external_id)
    return mapping.ucaas_id


@pytest.mark.parametrize("repairs_by", ["A", "another dispatcher"])
async def test_a_running_dispatcher_takes_re_created_objects_without_a_restart(
    service: Service, sandbox: SandboxAdmin, database_url: str, repairs_by: str
) -> None:
    ann = c.email_of(TENANT, "E0000")
    setup = [
        *c.onboarding(TENANT, employees=3, seats=10),
        c.schedule(TENANT, KEY, ann, c.meeting_spec("Planning")),
    ]
    assert await service.uow.accept(c.event(), setup)
    other = await bootstrap(service_settings(database_url, sandbox), migrate=False)
    try:
        async with running(service):
            await settle(service.store, len(setup))
        old_customer = await ucaas_id(service.store, "customer", "", TENANT)
        old_user = await ucaas_id(service.store, "user", TENANT, "E0001")

        sandbox.reset()  # the customer, its users and everything else vanish from UCaaS
        report = await reconcile(other, repair=True)
        assert report.queued == 9
        assert {d.status for d in report.drifts} == {RepairStatus.QUEUED}
        repaired = len(setup) + report.queued

        if repairs_by == "A":
            async with running(service):
                await settle(service.store, repaired)
        else:
            await other.dispatcher.run_until_idle()
            assert await other.store.counts() == {"done": repaired}
        new_customer = await ucaas_id(other.store, "customer", "", TENANT)
        new_user = await ucaas_id(other.store, "user", TENANT, "E0001")
        assert (new_customer, new_user) != (old_customer, old_user)

        # A, still holding what it read before, now gets the tenant's ordinary work.
        later = [
            c.update_user(TENANT, "E0001", first_name="Renamed"),
            c.suspend(TENANT, "E0002"),
            c.create_user(TENANT, "E0003"),
            c.assign(TENANT, "E0003"),
            c.schedule(TENANT, REVIEW, ann, c.meeting_spec("Review", days=3)),
        ]
        async with running(service):
            assert await service.uow.accept(c.event(), later)
            await settle(service.store, repaired + len(later))

        after = await reconcile(other)
        assert (after.checked, after.drifts) == (12, [])  # 1 + 1 + 4 users + 4 + 2 meetings
    finally:
        await other.aclose()

    state = sandbox.state()
    [customer] = [x for x in state["customers"] if x["customer_code"] == TENANT]
    assert customer["customer_id"] == new_customer
    users = {u["email"]: u for u in state["users"] if u["user_type"] == "AP"}
    assert sorted(users) == [c.email_of(TENANT, f"E000{n}") for n in range(4)]
    assert {u["customer_id"] for u in users.values()} == {new_customer}
    renamed = users[c.email_of(TENANT, "E0001")]
    assert (renamed["user_id"], renamed["first_name"]) == (new_user, "Renamed")
    assert users[c.email_of(TENANT, "E0002")]["status"] == "S"
    assert users[c.email_of(TENANT, "E0003")]["apps"]["vc"]["access"]
    meetings = {m["room_name"]: m for m in state["meetings"] if m["cancelled_at"] is None}
    assert sorted(meetings) == ["Planning", "Review"]
    assert {m["user_id"] for m in meetings.values()} == {users[ann]["user_id"]}
