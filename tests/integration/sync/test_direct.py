"""Statements run straight on asyncpg (outbox/direct.py) answer as SQLAlchemy does, inside
SQLAlchemy's transaction; where they cannot, they run through SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.outbox import direct
from service.outbox.mappings import _BY_KEYS
from service.outbox.outcome_writer import _UPSERT
from service.outbox.sql import key_values
from service.outbox.tables import MAPPING

NOW = datetime(2026, 12, 4, 15, 0, 0, 123456, tzinfo=UTC)


def _mapping(external_id: str, state: object) -> dict[str, object]:
    return {
        "kind": "user",
        "tenant": "T1",
        "external_id": external_id,
        "ucaas_id": f"u-{external_id}",
        "natural_key": f"{external_id}@t1.example",
        "state": state,
        "updated_at": NOW,
    }


async def _read(engine: AsyncEngine, *ids: str) -> list[tuple[object, ...]]:
    dialect = engine.dialect.name
    async with engine.connect() as conn:
        found = await direct.rows(
            conn, _BY_KEYS[dialect], key_values(dialect, [("user", "T1", i) for i in ids])
        )
    return sorted(tuple(r) for r in found)


async def test_rows_and_writes_are_what_sqlalchemy_reads_and_writes(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = engine.dialect.name
    sent: list[str] = []
    monkeypatch.setattr(direct, "WATCHERS", [sent.append])
    async with engine.begin() as conn:
        state = {"n": None, "nested": {"ä": [1, 2.5]}}
        await direct.run(conn, _UPSERT[dialect], [_mapping("E1", state), _mapping("E2", {})])
    async with engine.connect() as conn:
        keys = key_values(dialect, [("user", "T1", "E1"), ("user", "T1", "E2")])
        ours = await direct.rows(conn, _BY_KEYS[dialect], keys)
        theirs = (await conn.execute(_BY_KEYS[dialect], keys)).all()
    assert sorted(tuple(r) for r in ours) == sorted(tuple(r) for r in theirs)
    first = next(r for r in ours if r.external_id == "E1")  # read by attribute, as a Row
    assert first.state == state
    assert first.updated_at == NOW and first.updated_at.tzinfo is UTC
    # On asyncpg, both statements went straight to the driver; elsewhere through SQLAlchemy.
    assert len(sent) == (2 if engine.dialect.driver == "asyncpg" else 0)


async def test_a_write_is_part_of_sqlalchemys_transaction(engine: AsyncEngine) -> None:
    dialect = engine.dialect.name

    async def write_then_fail() -> None:
        async with engine.begin() as conn:
            await direct.run(conn, _UPSERT[dialect], [_mapping("gone", {})])
            raise RuntimeError("the batch fails after the write")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await _read(engine, "gone") == []
    # the first statement of a transaction, then one through SQLAlchemy: both commit
    async with engine.begin() as conn:
        await direct.run(conn, _UPSERT[dialect], [_mapping("kept", {})])
        await conn.execute(
            sa.text("UPDATE id_mapping SET ucaas_id = 'u-changed' WHERE external_id = 'kept'")
        )
    assert [r[3] for r in await _read(engine, "kept")] == ["u-changed"]


async def test_a_value_sqlalchemy_computes_is_computed(engine: AsyncEngine) -> None:
    """A column with a Python-side default is filled by SQLAlchemy's execution: such a
    statement runs through it, not straight on the driver."""
    metadata = sa.MetaData()
    table = sa.Table(
        "direct_defaults",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("made", sa.String(20), default=lambda: "by-default"),
    )
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await direct.run(conn, table.insert(), [{"id": 1}, {"id": 2}])
    async with engine.connect() as conn:
        found = await direct.rows(conn, sa.select(table.c.made).order_by(table.c.id))
    assert [r.made for r in found] == ["by-default", "by-default"]


async def test_a_statement_without_rows_to_return_changes_what_it_matches(
    engine: AsyncEngine,
) -> None:
    dialect = engine.dialect.name
    statement = (
        MAPPING.update()
        .where(MAPPING.c.external_id == sa.bindparam("b_id"))
        .values(ucaas_id=sa.bindparam("b_to"))
    )
    async with engine.begin() as conn:
        await direct.run(conn, _UPSERT[dialect], [_mapping("E1", {}), _mapping("E2", {})])
        assert await direct.rows(conn, statement, {"b_id": "E1", "b_to": "u-new"}) == []
        await direct.run(conn, statement, [{"b_id": "nobody", "b_to": "u-none"}])
    found = [
        (external_id, ucaas_id)
        for _, _, external_id, ucaas_id, *_ in await _read(engine, "E1", "E2")
    ]
    assert found == [("E1", "u-new"), ("E2", "u-E2")]


async def test_statements_built_for_each_call_do_not_grow_the_cache_without_end(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct, "LIMIT", 8)
    monkeypatch.setattr(direct, "_COMPILED", {})
    async with engine.connect() as conn:
        for n in range(30):
            found = await direct.rows(conn, sa.select(sa.literal(n).label("n")))
            assert [r.n for r in found] == [n]
    assert len(direct._COMPILED) <= 8
    # on asyncpg they were compiled here; elsewhere SQLAlchemy ran them
    assert bool(direct._COMPILED) == (engine.dialect.driver == "asyncpg")
