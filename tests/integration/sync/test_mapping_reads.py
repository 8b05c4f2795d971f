"""Id mapping reads of one moment in one statement (read_batches.py), on SQLite and
PostgreSQL: each reader gets its own row, a missing key None, a natural key its newest
row, and a `fresh` read what the database holds now."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.outbox import direct
from service.outbox.mappings import MappingReads
from service.outbox.outcomes import MappingKey
from service.outbox.tables import MAPPING

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def row(
    kind: str, tenant: str, external: str, ucaas: str, natural: str | None, age_s: int
) -> dict[str, object]:
    return {
        "kind": kind,
        "tenant": tenant,
        "external_id": external,
        "ucaas_id": ucaas,
        "natural_key": natural,
        "state": {"n": external},
        "updated_at": T0 - timedelta(seconds=age_s),
    }


async def test_reads_of_one_moment_are_one_statement_with_each_its_own_answer(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        row("user", f"T{t}", f"E{e}", f"u-{t}-{e}", f"e{e}@t{t}.example", 0)
        for t in range(3)
        for e in range(20)
    ]
    rows += [
        row("subscription", "T0", "P1", "s-old", "vc", 60),
        row("subscription", "T0", "P2", "s-new", "vc", 0),  # the same natural key, newer
        row("customer", "", "T0", "c-0", "T0", 0),
    ]
    async with engine.begin() as conn:
        await conn.execute(MAPPING.insert(), rows)
    reads = MappingReads(engine, None, cache_limit=1000)
    statements: list[str] = []
    sa.event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    monkeypatch.setattr(direct, "WATCHERS", [statements.append])  # those run on asyncpg

    # Employee ids repeat across tenants: a read must not be answered with another's row.
    keys = [MappingKey("user", f"T{t}", f"E{e}") for e in range(20) for t in (2, 0, 1)]
    keys += [MappingKey("user", "T0", "E-missing"), MappingKey("customer", "", "T0")]
    found = await asyncio.gather(*(reads.mapping(k, fresh=True) for k in keys))
    assert len(statements) == 1
    for key, view in zip(keys[:60], found[:60], strict=True):
        assert view is not None and view.key == key
        assert view.ucaas_id == f"u-{key.tenant[1:]}-{key.external_id[1:]}"
        assert view.state == {"n": key.external_id}
    assert found[60] is None
    assert found[61] is not None and found[61].ucaas_id == "c-0"

    statements.clear()
    naturals = await asyncio.gather(
        reads.mapping_by_natural("subscription", "T0", "vc", fresh=True),
        reads.mapping_by_natural("user", "T1", "e7@t1.example", fresh=True),
        reads.mapping_by_natural("user", "T1", "nobody@t1.example", fresh=True),
    )
    assert len(statements) == 1
    assert [n.ucaas_id if n else None for n in naturals] == ["s-new", "u-1-7", None]

    # a fresh read sees a change made after the copy was kept
    async with engine.begin() as conn:
        await conn.execute(
            MAPPING.update()
            .where(
                MAPPING.c.kind == "user", MAPPING.c.tenant == "T2", MAPPING.c.external_id == "E3"
            )
            .values(ucaas_id="u-replaced")
        )
    key = MappingKey("user", "T2", "E3")
    kept = await reads.mapping(key)
    assert kept is not None and kept.ucaas_id == "u-2-3"  # the copy in memory
    fresh = await reads.mapping(key, fresh=True)
    assert fresh is not None and fresh.ucaas_id == "u-replaced"
    assert (await reads.mapping(key)) == fresh  # the copy brought up to date
