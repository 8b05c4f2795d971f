"""Engines and migrations.

The service talks to the database through an async engine (aiosqlite or asyncpg); Alembic
migrations run on a short-lived sync engine (pysqlite or psycopg) for the same URL. An
embedded SQLite database is upgraded automatically on start; PostgreSQL is upgraded with
`ucaas-sync db upgrade`. A URL's libpq TLS parameters (`sslmode=verify-full&sslrootcert=`)
mean the same to both PostgreSQL drivers (tls.py), and a connection that fails on TLS is
one line (DatabaseTlsError), not a driver's traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.outbox.tls import (
    ALIASES,
    LIBPQ_TLS,
    DatabaseTlsError,
    asyncpg_ssl,
    tls_failure,
    tls_params,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def sync_url(url: str) -> str:
    """The same database for a sync driver (Alembic): aiosqlite -> pysqlite."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    elif parsed.drivername == "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "postgresql":
        # `?ssl=require` (asyncpg's spelling) is libpq's sslmode
        for alias, name in ALIASES.items():
            if alias in parsed.query and name not in parsed.query:
                parsed = parsed.update_query_dict({name: parsed.query[alias]})
            parsed = parsed.difference_update_query([alias])
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets readers (status, admin API) run beside the dispatcher's writes; the busy
    # timeout makes a writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# The JSON columns (payloads, states, result events) in and out with orjson: the standard
# library's json was 3% of the service's CPU at full load (bench/e2e.py --py-spy).
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def make_engine(
    url: str, *, pool_size: int = 20, server_settings: Mapping[str, str] | None = None
) -> AsyncEngine:
    """`pool_size` should cover the dispatcher's workers: every command holds a connection
    for a moment, and a pool that overflows opens and closes connections all the time.
    `server_settings`: PostgreSQL settings every connection of this engine starts with
    (the claims' own connections, claims.PLANNED); ignored on SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **JSON_CODEC)
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.drivername == "postgresql+asyncpg":
        # asyncpg takes the name operators see in pg_stat_activity as a server setting,
        # not as a URL parameter (libpq's spelling is accepted here too).
        name = parsed.query.get("application_name", "ucaas-sync")
        parsed = parsed.difference_update_query(["application_name"])
        connect_args["server_settings"] = {"application_name": str(name), **(server_settings or {})}
        tls = tls_params(parsed.query)
        parsed = parsed.difference_update_query([*LIBPQ_TLS, *ALIASES])
        if tls is not None:
            connect_args["ssl"] = asyncpg_ssl(tls)
    elif server_settings:  # psycopg (libpq): settings sent at startup are its `options`
        given = str(parsed.query.get("options", ""))
        parsed = parsed.difference_update_query(["options"])
        sets = " ".join(f"-c {name}={value}" for name, value in server_settings.items())
        connect_args["options"] = f"{given} {sets}".strip()
    # No pre-ping: it costs a round trip per checkout on the hot path; connections are
    # recycled instead, and a dropped one fails one statement that the caller retries.
    return create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=4,
        pool_recycle=1800,
        connect_args=connect_args,
        **JSON_CODEC,
    )


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates %: a password may hold one.
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def _where(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def _tls_refused(url: str, exc: BaseException) -> DatabaseTlsError | None:
    reason = tls_failure(exc)
    if reason is None:
        return None
    return DatabaseTlsError(f"database {_where(url)}: TLS: {reason}")


def upgrade(url: str, revision: str = "head") -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(sync_url(url))
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.begin() as connection:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    except sa.exc.OperationalError as exc:
        refused = _tls_refused(url, exc)
        if refused is None:
            raise
        raise refused from None
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


async def check_connection(engine: AsyncEngine) -> None:
    """Connect once, at start: a certificate that does not verify stops the command with
    one line (DatabaseTlsError) instead of failing every later statement. Any other
    failure is raised as it is."""
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (sa.exc.DBAPIError, OSError) as exc:  # asyncpg raises ssl errors unwrapped
        refused = _tls_refused(engine.url.render_as_string(hide_password=True), exc)
        if refused is None:
            raise
        raise refused from None
