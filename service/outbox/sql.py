"""SQL helpers every outbox module shares, written once: the dialect's INSERT ... ON
CONFLICT, `IN` as PostgreSQL prefers it, chunks for long `IN` lists, and statements built
once per dialect and run with values (the name of their bound parameters)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

# Keeps IN lists well under every driver's limit on bound parameters.
CHUNK = 500
DIALECTS = ("sqlite", "postgresql")


def per_dialect(build: Callable[[str], T]) -> dict[str, T]:
    """What `build` makes for each database the service runs on, by dialect name: the
    statements of the hot path are built once, at import, not for each batch."""
    return {dialect: build(dialect) for dialect in DIALECTS}


def chunks(values: Iterable[T]) -> Iterator[list[T]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def insert_for(dialect: str) -> Any:
    """The INSERT with ON CONFLICT of the database in use (PostgreSQL or SQLite)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def upsert(dialect: str, table: sa.Table, values: dict[str, Any], keys: Sequence[str]) -> Any:
    statement = insert_for(dialect)(table).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=changes)


def upsert_many(dialect: str, table: sa.Table, keys: Sequence[str]) -> Any:
    """Insert rows (given at execution), or replace every other column on a key clash."""
    statement = insert_for(dialect)(table)
    changes = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=changes)


def among(dialect: str, column: Any, values: Sequence[Any], item: Any) -> Any:
    """`column IN (values)`; on PostgreSQL `= ANY(array)`: one statement text whatever
    the count, where IN lists of each length are one more statement for asyncpg to
    prepare (its statement cache thrashed with group commits of 1..256 outcomes)."""
    if dialect == "postgresql":
        return column == sa.any_(sa.literal(list(values), postgresql.ARRAY(item)))
    return column.in_(values)


def among_bound(dialect: str, column: Any, name: str, item: Any) -> Any:
    """`among` for a statement built once: the values are given at execution as `b_<name>`
    (a list). Building the statement for each batch cost more CPU than running it."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(f"b_{name}", type_=postgresql.ARRAY(item)))
    return column.in_(sa.bindparam(f"b_{name}", expanding=True))


def with_keys(dialect: str, query: Any, columns: Sequence[Any]) -> Any:
    """`query` kept to the rows whose `columns` equal one of the tuples given at execution
    (`key_values`): on SQLite a tuple IN list; on PostgreSQL a join with unnest() of one
    array per column, one statement text whatever the count (an IN list of each length is
    one more statement for asyncpg to prepare, and cost 40 ms a batch in the intake)."""
    if dialect != "postgresql":
        return query.where(sa.tuple_(*columns).in_(sa.bindparam("b_keys", expanding=True)))
    names = [f"k{n}" for n in range(len(columns))]
    wanted = (
        sa.func.unnest(
            *(
                sa.bindparam(f"b_{name}", type_=postgresql.ARRAY(column.type))
                for name, column in zip(names, columns, strict=True)
            )
        )
        .table_valued(*names)
        .render_derived(name="wanted")
    )
    on = [column == wanted.c[name] for name, column in zip(names, columns, strict=True)]
    return query.join(wanted, sa.and_(*on))


def key_values(dialect: str, keys: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """The parameters of a `with_keys` statement for these key tuples (at least one)."""
    if dialect != "postgresql":
        return {"b_keys": list(keys)}
    return {f"b_k{n}": list(column) for n, column in enumerate(zip(*keys, strict=True))}


def bound(name: str) -> Any:
    """The parameter `b_<name>` of a statement built once (values given at execution; the
    prefix keeps them apart from column names, which an UPDATE's own parameters take)."""
    return sa.bindparam(f"b_{name}")
