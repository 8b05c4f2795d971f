"""The dispatcher against the sandbox: every command kind lands, once, in order."""

from __future__ import annotations

from typing import Any

from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from tests.support.sandbox_server import SandboxAdmin


def by_email(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["email"]: u for u in state["users"]}


async def test_every_kind_lands_once(service: Service, sandbox: SandboxAdmin) -> None:
    tenant = "CRM-1"
    ann = c.email_of(tenant, "E0000")
    spec = c.meeting_spec("Planning")
    batch = [
        *c.onboarding(tenant, employees=3),
        c.update_user(tenant, "E0001", designation="Lead"),
        c.suspend(tenant, "E0002"),
        c.revoke(tenant, "E0002"),
        c.schedule(tenant, "feed1:uid1:1", ann, spec),
        c.update_meeting(tenant, "feed1:uid1:1", ann, spec.model_copy(update={"duration": 60})),
        c.schedule(tenant, "feed1:uid2:1", ann),
        c.cancel(tenant, "feed1:uid2:1", ann),
    ]
    assert await service.uow.accept(c.event(), batch)
    await service.dispatcher.run_until_idle()

    counts = await service.store.counts()
    assert counts == {"done": len(batch)}, await service.store.rows(status="dead")
    state = sandbox.state()
    customers = [x for x in state["customers"] if x["customer_type"] == "P"]
    assert [x["customer_code"] for x in customers] == [tenant]
    assert len(state["subscriptions"]) == 1
    assert state["subscriptions"][0]["seats_used"] == 2  # three assigned, one revoked
    users = by_email(state)
    assert users[c.email_of(tenant, "E0001")]["designation"] == "Lead"
    assert users[c.email_of(tenant, "E0002")]["status"] == "S"
    assert users[c.email_of(tenant, "E0002")]["apps"]["vc"]["access"] is False
    meetings = [m for m in state["meetings"] if m["cancelled_at"] is None]
    assert [(m["room_name"], m["duration"]) for m in meetings] == [("Planning", 60)]
    assert sum(1 for m in state["meetings"] if m["cancelled_at"]) == 1


async def test_duplicate_event_is_acknowledged_and_does_nothing(service: Service) -> None:
    event = c.event()
    assert await service.uow.accept(event, [c.create_customer("CRM-2")])
    assert not await service.uow.accept(event, [c.create_customer("CRM-2")])
    assert await service.store.counts() == {"pending": 1}
