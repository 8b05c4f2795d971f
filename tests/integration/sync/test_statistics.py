"""The planner's statistics kept fresh while the tables grow (outbox/statistics.py), on a
real PostgreSQL: a table that outgrew its last analysis is analysed, once per doubling,
and a key lookup planned before the growth is planned on the primary key after it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.outbox import db, statistics
from service.outbox.tables import MAPPING
from service.settings import async_driver_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_database: str) -> str:
    """PostgreSQL only: the sync tests' `engine` on it."""
    return postgres_database


async def _grow(engine: AsyncEngine, rows: int, start: int = 0) -> None:
    now = datetime.now(UTC)
    values = [
        {
            "kind": "user",
            "tenant": f"T{n % 20}",
            "external_id": f"E{n}",
            "ucaas_id": f"u{n}",
            "natural_key": f"e{n}@example.com",
            "state": {"n": n},
            "updated_at": now,
        }
        for n in range(start, start + rows)
    ]
    async with engine.begin() as conn:
        await conn.execute(MAPPING.insert(), values)


async def _reltuples(engine: AsyncEngine, table: str) -> float:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
        )
    return float(found)


async def _stats_seen(engine: AsyncEngine) -> None:
    """The server's cumulative statistics are flushed by each backend now and then: a
    new connection's snapshot reads them as of now."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))


async def test_a_table_that_outgrew_its_analysis_is_analysed_once(engine: AsyncEngine) -> None:
    tables = await statistics.analysable(engine)
    assert {"id_mapping", "outbox", "inbox", "entity_state", "result"} <= set(tables)
    await _grow(engine, 3000)
    await _stats_seen(engine)
    assert "id_mapping" in await statistics.analyse_stale(engine, tables)
    assert await _reltuples(engine, "id_mapping") == 3000
    # grown by less than it held: left as it is; by more: analysed again
    await _grow(engine, 1000, start=3000)
    await _stats_seen(engine)
    assert "id_mapping" not in await statistics.analyse_stale(engine, tables)
    await _grow(engine, 4000, start=4000)
    await _stats_seen(engine)
    assert "id_mapping" in await statistics.analyse_stale(engine, tables)
    assert await _reltuples(engine, "id_mapping") == 8000


async def test_a_lookup_planned_on_an_empty_table_uses_the_key_once_it_grew(
    engine: AsyncEngine,
) -> None:
    lookup = sa.text(
        "EXPLAIN SELECT ucaas_id FROM id_mapping"
        " WHERE kind = 'user' AND tenant = 'T3' AND external_id = 'E3'"
    )
    async with engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE id_mapping"))  # analysed while empty
    await _grow(engine, 20000)
    keeper = asyncio.create_task(statistics.keep_fresh(engine, every_s=0.05))
    try:
        for _ in range(100):
            await _stats_seen(engine)
            await asyncio.sleep(0.05)
            if await _reltuples(engine, "id_mapping") == 20000:
                break
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    async with engine.connect() as conn:
        plan = "\n".join(str(line) for (line,) in await conn.execute(lookup))
    assert await _reltuples(engine, "id_mapping") == 20000
    assert "id_mapping_pkey" in plan, plan


async def test_a_user_who_owns_no_table_leaves_it_to_autovacuum(
    engine: AsyncEngine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    role = f"reader_{uuid.uuid4().hex[:8]}"
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        await conn.commit()
    url = sa.make_url(async_driver_url(database_url)).set(username=role)
    reader = db.make_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        assert await statistics.analysable(reader) == []
        # the keeper says so once and ends, rather than analysing in vain every time
        await asyncio.wait_for(statistics.keep_fresh(reader, every_s=0.01), timeout=10)
        assert "left to autovacuum" in caplog.text
    finally:
        await reader.dispose()
        async with engine.connect() as conn:
            await conn.execute(sa.text(f"DROP ROLE {role}"))
            await conn.commit()
