"""The CRM lifecycle end to end through the intake, the outbox and the dispatcher, against
the sandbox over HTTP: a purchase resized, cancelled, reactivated and expired; a company
closed and reopened; a cancel that comes before its subscription exists; a company state
stored by an older version."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from connectors.events.cloudevents import Envelope
from connectors.ucaas import UCaaSClient
from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from service.outbox.tables import MAPPING, STATES, utcnow
from tests.support.kafka import envelope as parsed
from tests.support.sandbox_server import SandboxAdmin

TENANT = "CRM-LIFE"
_ids = itertools.count(1)
COMPANY: dict[str, Any] = {
    "name": "Lifecycle Ltd",
    "legal_name": "Lifecycle Ltd",
    "contact": {"name": "Pat Contact", "email": "billing@life.example"},
    "office_address": {"line1": "1 Main St", "city": "Lyon", "country": "FR"},
}


def event(type_: str, data: dict[str, Any], subject: str = TENANT) -> Envelope:
    return parsed(type_, subject, data, event_id=f"life-{next(_ids)}", source="/tests/crm")


def purchase(kind: str = "purchased", seats: int = 5, **more: Any) -> Envelope:
    data = {
        "purchase_id": "P-1",
        "plan": "vc-basic",
        "app": "vc",
        "seats": seats,
        "start": datetime.now(UTC).date().isoformat(),
        **more,
    }
    return event(f"crm.subscription.{kind}", data)


async def take(service: Service, *envelopes: Envelope) -> None:
    """Accept the events, then run every command they queued."""
    taken = await service.intake.take(list(envelopes))
    assert all(t.outcome == "accepted" for t in taken), taken
    await service.dispatcher.run_until_idle(idle_s=0.3)


async def subscription_id(service: Service) -> str:
    async with service.engine.connect() as conn:
        found = await conn.scalar(
            sa.select(MAPPING.c.ucaas_id).where(
                MAPPING.c.kind == "subscription", MAPPING.c.external_id == "P-1"
            )
        )
    assert isinstance(found, str)
    return found


async def in_ucaas(api: UCaaSClient, sid: str) -> tuple[str | None, int | None]:
    """(status, seats) of the subscription, read back through the API."""
    sub = await api.subscriptions.get(sid)
    assert sub.subscription is not None and sub.user_license is not None
    return sub.subscription.status, sub.user_license.qty


async def test_a_purchase_resized_cancelled_reactivated_and_expired(
    service: Service, api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    await take(service, event("crm.company.created", COMPANY), purchase(seats=5))
    sid = await subscription_id(service)
    assert await in_ucaas(api, sid) == ("A", 5)

    await take(service, purchase("updated", seats=8))
    assert await in_ucaas(api, sid) == ("A", 8)

    await take(service, purchase("cancelled", seats=8))
    assert await in_ucaas(api, sid) == ("S", 8)

    # a repeated `purchased` does not bring a cancelled purchase back; a stated status does
    before = sandbox.calls()["calls"].get("PATCH /subscriptions/{subscription_id}", 0)
    await take(service, purchase(seats=8))
    assert sandbox.calls()["calls"].get("PATCH /subscriptions/{subscription_id}", 0) == before
    await take(service, purchase("updated", seats=6, status="active"))
    assert await in_ucaas(api, sid) == ("A", 6)

    await take(service, purchase("updated", seats=6, status="expired"))
    assert await in_ucaas(api, sid) == ("X", 6)

    assert await service.store.counts() == {"done": 7}
    # reconcile's view: what was pushed is what UCaaS has
    async with service.engine.connect() as conn:
        state = await conn.scalar(sa.select(MAPPING.c.state).where(MAPPING.c.ucaas_id == sid))
    assert state is not None
    assert (state["status"], state["seats"]) == ("X", 6)
    [one] = sandbox.state()["subscriptions"]  # never a second subscription
    assert one["subscription_id"] == sid


async def test_a_cancel_before_the_subscription_exists_suspends_it_once_made(
    service: Service, api: UCaaSClient
) -> None:
    # The purchase comes before its company: create_subscription waits for the customer,
    # and the cancel queues behind it on the company's purchases entity.
    await take(service, purchase(seats=3), purchase("cancelled", seats=3))
    create, cancel = await service.store.rows()
    assert (create.kind, create.status) == ("create_subscription", "waiting")
    assert (cancel.kind, cancel.status) == ("set_subscription_status", "held")
    assert cancel.hold_reason == f"queued behind #{create.id}"
    await take(service, event("crm.company.created", COMPANY))
    assert await service.store.counts() == {"done": 3}
    assert await in_ucaas(api, await subscription_id(service)) == ("S", 3)


async def test_a_purchase_cancelled_before_it_was_ever_active_makes_nothing(
    service: Service, sandbox: SandboxAdmin
) -> None:
    await take(service, event("crm.company.created", COMPANY), purchase("cancelled"))
    await take(service, purchase())  # late, without a status
    assert sandbox.state()["subscriptions"] == []
    await take(service, purchase("updated", seats=2, status="active"))
    [made] = sandbox.state()["subscriptions"]
    assert (made["qty"], made["status"]) == (2, "A")


async def test_a_closed_company_reopened_is_active_again(
    service: Service, api: UCaaSClient
) -> None:
    await take(service, event("crm.company.created", COMPANY))
    await take(service, event("crm.company.closed", {}))
    customer = await api.customers.find_by_code(TENANT)
    assert customer is not None and customer.status == "C"
    # an old `created` replayed leaves it closed
    await take(service, event("crm.company.created", COMPANY))
    found = await api.customers.find_by_code(TENANT)
    assert found is not None and found.status == "C"

    await take(service, event("crm.company.reopened", {}))
    found = await api.customers.find_by_code(TENANT)
    assert found is not None and found.status == "A"
    assert [r.kind for r in await service.store.rows()] == [
        "create_customer",
        "close_customer",
        "reopen_customer",
    ]
    # the tenant's own login (captured at creation) is accepted again (a closed customer's
    # answers 4014): a user of it is provisioned with its licence
    await service.uow.accept(
        c.event(),
        [
            c.create_subscription(TENANT, seats=2),
            c.create_user(TENANT, "E1"),
            c.assign(TENANT, "E1"),
        ],
    )
    await service.dispatcher.run_until_idle(idle_s=0.3)
    assert await service.store.counts() == {"done": 6}


async def test_fewer_seats_than_licences_waits_until_one_is_revoked(
    service: Service, api: UCaaSClient
) -> None:
    await take(service, event("crm.company.created", COMPANY), purchase(seats=3))
    await service.uow.accept(
        c.event(),
        [
            *(c.create_user(TENANT, e) for e in ("E1", "E2")),
            *(c.assign(TENANT, e) for e in ("E1", "E2")),
        ],
    )
    await service.dispatcher.run_until_idle(idle_s=0.3)
    sid = await subscription_id(service)

    await take(service, purchase("updated", seats=1))
    [waiting] = await service.store.rows(status="waiting")
    assert waiting.kind == "set_subscription_seats"
    assert waiting.hold_reason is not None and waiting.hold_reason.startswith("1257: ")
    assert await in_ucaas(api, sid) == ("A", 3)

    # a leaver's revoke frees a seat and wakes the tenant's waiting commands
    await service.uow.accept(c.event(), [c.revoke(TENANT, "E2")])
    await service.dispatcher.run_until_idle(idle_s=0.5)
    assert await service.store.rows(status="waiting") == []
    assert await in_ucaas(api, sid) == ("A", 1)


async def test_a_company_state_stored_by_an_older_version_still_loads(
    service: Service, api: UCaaSClient
) -> None:
    await take(service, event("crm.company.created", COMPANY), purchase(seats=4))
    # as an older version stored it: the purchases a list of ids
    old = {"created": True, "status": "open", "profile": {}, "purchases": ["P-1"]}
    async with service.engine.begin() as conn:
        await conn.execute(
            STATES.update()
            .where(STATES.c.entity == f"customer:{TENANT}")
            .values(state=old, updated_at=utcnow())
        )
    await take(service, purchase("cancelled", seats=4))
    assert await in_ucaas(api, await subscription_id(service)) == ("S", 4)
    async with service.engine.connect() as conn:
        state = await conn.scalar(
            sa.select(STATES.c.state).where(STATES.c.entity == f"customer:{TENANT}")
        )
    assert state is not None
    assert state["purchases"] == {
        "P-1": {"status": "cancelled", "seats": 4, "plan": None, "subscribed": True}
    }
