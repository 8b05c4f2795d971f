"""The hot path's statements run straight on asyncpg, on PostgreSQL.

SQLAlchemy Core builds every statement of the outbox, once (sql.per_dialect). Running one
through SQLAlchemy costs as much CPU again as asyncpg's own work: an execution context,
parameters processed by name, the greenlet bridge, a Row per row. Measured on this
machine, a one-row read of id mappings took 194 µs of CPU through SQLAlchemy and 98 µs on
asyncpg with the same SQL; 28 call-log rows with their commit 587 µs and 382 µs. The
dispatcher runs about one such statement per event (bench/e2e.py).

`rows` and `run` compile a statement once per set of parameter names (the SQL text, the
parameters in their places, the bind and result processors of their types) and then hand
asyncpg the text and a tuple per parameter set, in the transaction SQLAlchemy holds on that
connection (started first, as SQLAlchemy would start it). On any other driver, and for a
statement whose values SQLAlchemy computes at execution (Python-side column defaults),
they run the statement through SQLAlchemy: same answers, one code path for the callers.

What is given up: asyncpg's errors come as they are, not wrapped in SQLAlchemy's
DBAPIError, so callers that classify database errors (the intake) do not use this; a
connection that dropped is found out by the pool one statement later; and SQLAlchemy's
events (before_cursor_execute) do not see these statements: WATCHERS does.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    text: str
    binds: tuple[tuple[str, Any, Processor], ...]  # name, preset value, processor
    results: tuple[Processor, ...]
    row: Any  # the row type: a named tuple of the result columns, or None
    direct: bool  # False: SQLAlchemy computes values at execution; run through it


# Called with the SQL of each statement sent here (tests count statements as SQLAlchemy's
# before_cursor_execute event lets them count the others).
WATCHERS: list[Callable[[str], None]] = []

# Compiled forms by statement; statements of the hot path are built once (sql.per_dialect),
# so this stays small. One built for each call is compiled each time, and must not grow
# it without end: past LIMIT entries it starts again.
_COMPILED: dict[tuple[int, tuple[str, ...], bool], tuple[Any, _Compiled]] = {}
LIMIT = 512
_MISSING = object()


def _compile(conn: AsyncConnection, statement: Any, keys: tuple[str, ...], many: bool) -> _Compiled:
    cache_key = (id(statement), keys, many)
    found = _COMPILED.get(cache_key)
    if found is not None and found[0] is statement:
        return found[1]
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=many)
    direct = not (
        getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None)
    )
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        preset = _MISSING if name in keys or bind.callable is not None else bind.value
        direct &= not bind.expanding and (name in keys or bind.callable is None)
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((name, preset, processor))
    columns = list(getattr(compiled, "_result_columns", None) or ())
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    row = namedtuple("Row", [c.keyname for c in columns], rename=True) if columns else None
    made = _Compiled(compiled.string, tuple(binds), results, row, direct)
    if len(_COMPILED) >= LIMIT:
        _COMPILED.clear()
    # the statement is kept with its entry: an id is never reused while it is alive
    _COMPILED[cache_key] = (statement, made)
    return made


def _arguments(c: _Compiled, values: Mapping[str, Any]) -> tuple[Any, ...]:
    out = []
    for name, preset, processor in c.binds:
        value = values[name] if preset is _MISSING else preset
        out.append(processor(value) if processor is not None and value is not None else value)
    return tuple(out)


async def _driver(conn: AsyncConnection) -> Any:
    """asyncpg's connection under `conn`, inside the transaction SQLAlchemy holds on it
    (begun now if SQLAlchemy has not sent its BEGIN yet; nothing in autocommit)."""
    sync = conn.sync_connection
    fairy = getattr(sync, "_dbapi_connection", None)  # checked out already: no greenlet
    if fairy is None or not fairy.is_valid:
        fairy = await conn.get_raw_connection()
    adapter: Any = fairy.dbapi_connection
    # What SQLAlchemy's cursor does before each statement (private: version-bound, and
    # tests/integration/sync/test_direct.py fails if it stops holding).
    if adapter._transaction is None:
        await adapter._start_transaction()
    return fairy.driver_connection


def _sent(text: str) -> None:
    for watcher in WATCHERS:
        watcher(text)


def _usable(conn: AsyncConnection) -> bool:
    return conn.dialect.driver == "asyncpg"


async def rows(
    conn: AsyncConnection, statement: Any, values: Mapping[str, Any] | None = None
) -> list[Any]:
    """The rows `statement` returns, as named tuples (or SQLAlchemy Rows: both read by
    attribute and unpack in column order)."""
    values = values or {}
    if _usable(conn):
        c = _compile(conn, statement, tuple(sorted(values)), many=False)
        if c.direct:
            _sent(c.text)
            records = await (await _driver(conn)).fetch(c.text, *_arguments(c, values))
            if c.row is None:  # a text() statement: its columns as the server names them
                return _by_name(records)
            if not any(c.results):
                return [c.row._make(r) for r in records]
            return [c.row._make(map(_processed, c.results, r)) for r in records]
    result = await conn.execute(statement, dict(values))
    return list(result.all()) if result.returns_rows else []


def _processed(processor: Processor, value: Any) -> Any:
    return value if processor is None or value is None else processor(value)


def _by_name(records: Sequence[Any]) -> list[Any]:
    if not records:
        return []
    row = namedtuple("Row", list(records[0].keys()), rename=True)  # type: ignore[misc]
    return [row._make(r) for r in records]


async def run(conn: AsyncConnection, statement: Any, values: Sequence[Mapping[str, Any]]) -> None:
    """`statement` once per parameter set (an executemany), nothing returned."""
    if not values:
        return
    if _usable(conn):
        c = _compile(conn, statement, tuple(sorted(values[0])), many=True)
        if c.direct:
            _sent(c.text)
            driver = await _driver(conn)
            await driver.executemany(c.text, [_arguments(c, v) for v in values])
            return
    await conn.execute(statement, [dict(v) for v in values])
