"""Fair claims (issue 17): one tenant's burst does not starve another tenant's commands,
FIFO per entity still holds, a tenant's rate limit bounds its calls per second, and two
dispatchers on PostgreSQL never take one row."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from connectors.ucaas import CallRecord
from service.outbox import db, fairness
from service.outbox.claims import PLANNED, Claim, planned_engine
from service.outbox.outcomes import Done
from service.outbox.store import OutboxStore
from service.outbox.tables import OUTBOX, utcnow
from service.outbox.tenant_rates import TenantRates
from service.settings import DispatcherSettings


async def _insert(store: OutboxStore, rows: list[tuple[str, str | None]], due_s: float) -> None:
    """Pending commands (entity, tenant), due `due_s` seconds ago (negative: ahead)."""
    now = utcnow()
    async with store.engine.begin() as conn:
        await conn.execute(
            OUTBOX.insert(),
            [
                {
                    "entity": entity,
                    "kind": "update_user",
                    "tenant": tenant,
                    "payload": {},
                    "status": "pending",
                    "attempts": 0,
                    "in_doubt": False,
                    "next_attempt_at": now - timedelta(seconds=due_s),
                    "created_at": now,
                    "updated_at": now,
                }
                for entity, tenant in rows
            ],
        )


def _burst(tenant: str, n: int) -> list[tuple[str, str | None]]:
    return [(f"user:{tenant}:{k}", tenant) for k in range(n)]


def _call() -> CallRecord:
    return CallRecord("POST", "/users", "/users", 201, None, 0.001, None, utcnow())


async def test_a_burst_does_not_starve_another_tenants_single_command(
    store: OutboxStore,
) -> None:
    # A's burst has been due for a minute; B's hire is new. Due-order would put it last.
    await _insert(store, _burst("A", 2000), due_s=60)
    await _insert(store, [("user:B:hire", "B")], due_s=0)
    claimed = await store.claim("w", limit=16, lease_s=30)
    assert len(claimed) == 16
    assert "user:B:hire" in [c.entity for c in claimed]
    # A, which has more, takes what B could not use
    assert Counter(c.tenant for c in claimed) == {"A": 15, "B": 1}


@pytest.mark.parametrize("kept", [256, 2], ids=["tenants-kept", "more-tenants-than-kept"])
async def test_the_claim_is_shared_evenly_and_every_tenant_gets_its_turn(
    store: OutboxStore, kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past `kept` tenants, each claim looks up its turn after the cursor instead.
    monkeypatch.setattr(fairness, "_KNOWN", kept)
    await _insert(store, [*_burst("A", 50), *_burst("B", 50), *_burst("C", 50)], due_s=10)
    # rows without a tenant share as one more tenant
    await _insert(store, [(f"meeting:{k}", None) for k in range(50)], due_s=10)
    shares = Counter(c.tenant for c in await store.claim("w", limit=10, lease_s=30))
    assert sorted(shares.values()) == [2, 2, 3, 3]
    # More tenants than slots: each claim goes on after the last tenant the one before
    # reached, so after a round of claims every tenant has had rows.
    seen: set[str | None] = set()
    for _ in range(2):
        seen |= {c.tenant for c in await store.claim("w", limit=2, lease_s=30)}
    assert seen == {"A", "B", "C", None}


async def test_fifo_per_entity_holds_across_tenants(store: OutboxStore) -> None:
    # Each entity has three commands in order; A has far more entities than B.
    rows = [
        (f"user:{t}:{k}", t) for _ in range(3) for t, n in (("A", 30), ("B", 3)) for k in range(n)
    ]
    await _insert(store, rows, due_s=5)
    order: dict[str, list[int]] = {}
    while True:
        claimed = await store.claim("w", limit=8, lease_s=30)
        if not claimed:
            break
        entities = [c.entity for c in claimed]
        assert len(entities) == len(set(entities)), "two commands of one entity at once"
        for c in claimed:
            order.setdefault(c.entity, []).append(c.id)
        for c in claimed:
            assert await store.finish(c, Done())
    assert len(order) == 33
    assert all(len(ids) == 3 and ids == sorted(ids) for ids in order.values())


async def test_a_rate_limit_bounds_a_tenants_calls_per_second(database_url: str) -> None:
    rate = 20.0
    await asyncio.to_thread(db.upgrade, database_url)
    engine = db.make_engine(database_url)
    rates = TenantRates(DispatcherSettings(tenant_limits={"A": rate}))
    store = OutboxStore(engine, rates=rates)
    try:
        await _insert(store, [*_burst("A", 300), *_burst("B", 30)], due_s=10)
        taken: Counter[str | None] = Counter()
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            claimed = await store.claim("w", limit=16, lease_s=30)
            taken.update(c.tenant for c in claimed)
            # each made one call: the claim's charge stands
            await store.finish_many([(c, Done(), [_call()]) for c in claimed])
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        # At most a full bucket (one second's worth) and what refills while it runs; at
        # least that first bucket. Without the limit A would have had all 300.
        assert rate <= taken["A"] <= rate + rate * elapsed + 1, (taken, elapsed)
        assert taken["B"] == 30  # B has no limit and is not held up by A's
    finally:
        await engine.dispose()


async def test_calls_beyond_one_per_command_are_charged(database_url: str) -> None:
    await asyncio.to_thread(db.upgrade, database_url)
    engine = db.make_engine(database_url)
    # A slow refill (one call per 100 s): the bucket of 1 is all A has in this test.
    rates = TenantRates(DispatcherSettings(tenant_calls_per_s=0.01))
    store = OutboxStore(engine, rates=rates)
    try:
        await _insert(store, _burst("A", 5), due_s=10)
        [first] = await store.claim("w", limit=4, lease_s=30)
        assert await store.claim("w", limit=4, lease_s=30) == []  # the bucket is spent
        # The command made no call after all (its token comes back)...
        await store.finish_many([(first, Done(), [])])
        [second] = await store.claim("w", limit=4, lease_s=30)
        # ...this one made three: two more than charged, so A is in debt.
        await store.finish_many([(second, Done(), [_call(), _call(), _call()])])
        assert rates.budget("A") == 0
    finally:
        await engine.dispose()


async def test_tenants_out_of_budget_do_not_take_the_others_turn(database_url: str) -> None:
    await asyncio.to_thread(db.upgrade, database_url)
    engine = db.make_engine(database_url)
    # every tenant may make one call per 100 s, but Z, which has no limit
    rates = TenantRates(DispatcherSettings(tenant_calls_per_s=0.01, tenant_limits={"Z": 0}))
    store = OutboxStore(engine, rates=rates)
    try:
        limited = [f"T{n:02d}" for n in range(20)]
        await _insert(store, [r for t in limited for r in _burst(t, 3)], due_s=10)
        first: Counter[str | None] = Counter()
        while claimed := await store.claim("w", limit=2, lease_s=30):
            first.update(c.tenant for c in claimed)
        assert first == dict.fromkeys(limited, 1)  # one each, then every bucket is spent
        await _insert(store, _burst("Z", 20), due_s=0)
        # Wherever the turn stands, the spent tenants are stepped over: Z's commands are
        # claimed, not an empty claim per two spent tenants (the dispatcher would then
        # sleep a poll interval each time).
        for _ in range(3):
            assert [c.tenant for c in await store.claim("w", limit=2, lease_s=30)] == ["Z", "Z"]
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("planned", [True, False], ids=["claims-connections", "transaction"])
async def test_two_dispatchers_on_postgresql_never_take_one_row(
    postgres_database: str, planned: bool
) -> None:
    # As bootstrap wires them (claims on connections of their own, in autocommit) and as a
    # store given one engine (each claim a transaction that sets the plan first).
    await asyncio.to_thread(db.upgrade, postgres_database)
    engines = [db.make_engine(postgres_database) for _ in range(2)]
    if planned:
        engines += [planned_engine(postgres_database, pool_size=2) for _ in range(2)]
    stores = [
        OutboxStore(e, claims_engine=engines[n + 2] if planned else None)
        for n, e in enumerate(engines[:2])
    ]
    try:
        rows = [r for t in "ABCDEFGH" for r in _burst(t, 150)]
        await _insert(stores[0], rows, due_s=10)
        taken: list[list[Claim]] = [[], []]

        async def claimer(n: int) -> None:
            # several claims of one store at once too: each on its own connection
            while claimed := await stores[n].claim(f"owner-{n}", limit=8, lease_s=30):
                taken[n].extend(claimed)

        await asyncio.gather(*(claimer(n) for n in (0, 1, 0, 1)))
        ids = [c.id for claims in taken for c in claims]
        assert len(ids) == len(set(ids)) == len(rows)
        assert taken[0] and taken[1]  # both took part
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_the_claims_plan_holds_on_their_own_connections_only(
    postgres_database: str, driver: str
) -> None:
    await asyncio.to_thread(db.upgrade, postgres_database)
    url = sa.make_url(postgres_database).set(drivername=f"postgresql+{driver}")
    url_text = url.render_as_string(hide_password=False)
    engine = db.make_engine(url_text, pool_size=2)
    claims_engine = planned_engine(url_text, pool_size=2)
    store = OutboxStore(engine, claims_engine=claims_engine)
    try:
        await _insert(store, _burst("A", 3), due_s=10)
        assert len(await store.claim("w", limit=5, lease_s=30)) == 3
        async with claims_engine.connect() as conn:
            shown = {name: await conn.scalar(sa.text(f"SHOW {name}")) for name in PLANNED}
        assert shown == PLANNED
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SHOW enable_seqscan")) == "on"
            # the claim left no transaction open on the claims' connections
            idle_in_transaction = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%'"
                )
            )
        assert idle_in_transaction == 0
    finally:
        await engine.dispose()
        await claims_engine.dispose()
