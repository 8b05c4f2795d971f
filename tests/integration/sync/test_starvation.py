"""Re-checked waiting commands cannot starve a due command queued behind them.

Found by the chaos suite: employees that arrive before their company wait for its
customer, and are re-checked every `wait_cap_s`. Claims took due rows in id order, so
once there were more waiting rows ahead than the dispatcher re-checks in one wait period,
every claim was filled with re-checks and the `create_customer` they wait for (queued
after them) never ran. Claims now take the row that has been due longest first; FIFO
per entity holds as before. And the mapping copies a store keeps are bounded (a large
initial load makes a user per employee).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from service.app.bootstrap import bootstrap
from service.devtools import sample_commands as c
from service.domain.commands import customer_entity
from service.outbox import db
from service.outbox.outcomes import MappingKey
from service.outbox.store import OutboxStore
from service.outbox.tables import MAPPING, OUTBOX, utcnow
from tests.integration.conftest import service_settings
from tests.support.sandbox_server import SandboxAdmin

TENANT = "STARVE"
# Far more waiting rows than 8 workers re-check in one 25-50 ms wait period, on any
# machine: before the fix the customer never ran.
EMPLOYEES = 300


async def test_waiting_rows_ahead_cannot_starve_the_customer_they_wait_for(
    database_url: str, sandbox: SandboxAdmin
) -> None:
    settings = service_settings(
        database_url, sandbox, workers=8, wait_cap_s=0.05, backoff_base_s=0.02
    )
    service = await bootstrap(settings, migrate=True)
    run = asyncio.create_task(service.dispatcher.run())
    try:
        users = [c.create_user(TENANT, f"E{n:04d}") for n in range(EMPLOYEES)]
        assert await service.uow.accept(c.event(), users)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        # Some users are already being re-checked (before the fix the rest never left
        # pending either: the re-checks ahead of them took every claim).
        while service.dispatcher.stats.outcomes["wait"] < 2 * EMPLOYEES // 3:
            assert loop.time() < deadline, await service.store.counts()
            await asyncio.sleep(0.02)
        rechecks = service.dispatcher.stats.outcomes["wait"]

        assert await service.uow.accept(c.event(), [c.create_customer(TENANT)])
        service.dispatcher.wake()
        deadline = loop.time() + 15
        while True:
            [customer] = await service.store.rows(entity=customer_entity(TENANT))
            if customer.status == "done":
                break
            # The users were being re-checked all along: the starvation's condition held.
            assert loop.time() < deadline, (
                f"create_customer still {customer.status} after "
                f"{service.dispatcher.stats.outcomes['wait'] - rechecks} re-checks of waiting users"
            )
            await asyncio.sleep(0.05)

        # Woken by the customer, the users all land, once each.
        deadline = loop.time() + 60
        while (await service.store.counts()).get("done", 0) < EMPLOYEES + 1:
            assert loop.time() < deadline, await service.store.counts()
            await asyncio.sleep(0.05)
        emails = [u["email"] for u in sandbox.state()["users"] if TENANT.lower() in u["email"]]
        assert sorted(emails) == sorted(c.email_of(TENANT, f"E{n:04d}") for n in range(EMPLOYEES))
    finally:
        await service.dispatcher.stop()
        await run
        await service.aclose()


async def test_claims_take_the_row_due_longest_first_and_keep_fifo(store: OutboxStore) -> None:
    """Order is by due time, not id; an entity's later row still waits for its head, even
    when the later one has been due longer (the head is dated in the future)."""
    now = utcnow()
    later, head, follower, early = (
        now - timedelta(seconds=1),
        now + timedelta(hours=1),
        now - timedelta(seconds=9),
        now - timedelta(seconds=5),
    )
    ids = await _insert(
        store,
        [("user:T:A", later), ("user:T:B", head), ("user:T:B", follower), ("user:T:C", early)],
    )
    claimed = await store.claim("w", limit=1, lease_s=30)
    assert [x.id for x in claimed] == [ids[3]]  # C: due 5 s ago, A only 1 s ago
    claimed = await store.claim("w", limit=10, lease_s=30)
    assert [x.id for x in claimed] == [ids[0]]  # B's follower waits behind B's dated head


async def test_kept_mapping_copies_are_bounded(database_url: str) -> None:
    await asyncio.to_thread(db.upgrade, database_url)
    engine = db.make_engine(database_url)
    store = OutboxStore(engine, cache_limit=3)
    try:
        keys = [MappingKey("user", "T", f"E{n}") for n in range(5)]
        async with engine.begin() as conn:
            await conn.execute(
                MAPPING.insert(),
                [
                    {
                        "kind": k.kind,
                        "tenant": k.tenant,
                        "external_id": k.external_id,
                        "ucaas_id": f"u{n}",
                        "natural_key": None,
                        "state": {},
                        "updated_at": utcnow(),
                    }
                    for n, k in enumerate(keys)
                ],
            )
        for key in keys:
            assert await store.mapping(key) is not None
        async with engine.begin() as conn:
            await conn.execute(MAPPING.delete())
        # The last three are copies kept in memory; the first two were let go, so they are
        # read again from the database, where they are gone now.
        assert [await store.mapping(k) is not None for k in keys] == [
            False,
            False,
            True,
            True,
            True,
        ]
    finally:
        await engine.dispose()


async def _insert(store: OutboxStore, rows: list[tuple[str, datetime]]) -> list[int]:
    now = utcnow()
    async with store.engine.begin() as conn:
        found = await conn.execute(
            OUTBOX.insert().returning(OUTBOX.c.id, sort_by_parameter_order=True),
            [
                {
                    "entity": entity,
                    "kind": "update_user",
                    "tenant": "T",
                    "payload": {},
                    "status": "pending",
                    "attempts": 0,
                    "in_doubt": False,
                    "next_attempt_at": due,
                    "created_at": now,
                    "updated_at": now,
                }
                for entity, due in rows
            ],
        )
        return [row.id for row in found]
