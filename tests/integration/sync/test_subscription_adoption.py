"""Two purchases of one plan stay two subscriptions when both creates are in doubt (found
by the chaos suite: after lost answers both purchases adopted the same subscription).

Each create reaches the sandbox but its answer is lost (`drop_after`), so every retry
looks the customer's subscriptions up and adopts one. One company's purchases are one
FIFO entity, so those adoptions run one after the other, also across dispatchers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from service.app.bootstrap import Service, bootstrap
from service.devtools import sample_commands as c
from service.domain.commands import subscription_entity
from service.outbox.tables import MAPPING, OUTBOX
from service.views import Operations
from tests.integration.conftest import service_settings
from tests.support.sandbox_server import SandboxAdmin

TENANT = "CRM-TWO"
PURCHASES = ("p1", "p2", "p3")


@pytest.fixture
async def second(database_url: str, sandbox: SandboxAdmin) -> AsyncIterator[Service]:
    """Another dispatcher on the same database (as a second `ucaas-sync run` would be)."""
    svc = await bootstrap(service_settings(database_url, sandbox), migrate=False)
    yield svc
    await svc.aclose()


async def drain(*services: Service) -> None:
    await asyncio.gather(*(s.dispatcher.run_until_idle(idle_s=0.5) for s in services))


@pytest.mark.parametrize("dispatchers", [1, 2])
async def test_purchases_in_doubt_each_keep_their_own_subscription(
    service: Service, second: Service, sandbox: SandboxAdmin, dispatchers: int
) -> None:
    running = (service, second)[:dispatchers]
    await service.uow.accept(c.event(), [c.create_customer(TENANT)])
    await service.dispatcher.run_until_idle()
    sandbox.faults(drop_rate=1.0, drop_phase="after", only=["POST /subscriptions"])
    # one event each, as the CRM sends them; the same plan, so the lookup cannot tell them
    # apart by plan
    for purchase in PURCHASES:
        await service.uow.accept(c.event(), [c.create_subscription(TENANT, purchase=purchase)])
    await drain(*running)

    async with service.engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(OUTBOX).where(OUTBOX.c.kind == "create_subscription"))
        ).all()
        mapped = dict(
            (
                await conn.execute(
                    sa.select(MAPPING.c.external_id, MAPPING.c.ucaas_id).where(
                        MAPPING.c.kind == "subscription"
                    )
                )
            ).all()
        )
    assert {(r.status, r.in_doubt) for r in rows} == {("done", True)}, rows
    made = {s["subscription_id"] for s in sandbox.state()["subscriptions"]}
    assert len(made) == len(PURCHASES)  # no purchase created a second one
    assert sorted(mapped) == sorted(f"{TENANT}-{p}" for p in PURCHASES)
    assert set(mapped.values()) == made  # each purchase its own subscription
    assert sandbox.calls()["calls"]["POST /subscriptions"] == len(PURCHASES)


async def test_a_purchase_before_its_company_waits_without_blocking_it(
    service: Service, sandbox: SandboxAdmin
) -> None:
    tenant = "CRM-EARLY"
    await service.uow.accept(c.event(), [c.create_subscription(tenant)])
    await service.uow.accept(c.event(), [c.create_customer(tenant)])
    await service.dispatcher.run_until_idle(idle_s=0.5)
    assert await service.store.counts() == {"done": 2}
    [subscription] = sandbox.state()["subscriptions"]
    assert subscription["plan_id"] == "vc-basic"


async def test_the_history_of_a_companys_purchases(service: Service, sandbox: SandboxAdmin) -> None:
    await service.uow.accept(
        c.event(),
        [
            c.create_customer(TENANT),
            *(c.create_subscription(TENANT, purchase=p) for p in PURCHASES[:2]),
        ],
    )
    await service.uow.accept(c.event(), [c.create_subscription("CRM-OTHER")])
    await service.dispatcher.run_until_idle(idle_s=0.5)
    story = await Operations(service.engine, service.store, service.settings).history(
        subscription_entity(TENANT)
    )
    assert [cmd.kind for cmd in story.commands] == ["create_subscription"] * 2
    assert sorted(m.external_id for m in story.mappings) == [f"{TENANT}-p1", f"{TENANT}-p2"]
    assert len(story.events) == 1
