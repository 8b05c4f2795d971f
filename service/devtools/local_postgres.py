"""A fresh PostgreSQL database of one's own, for tests and benchmarks.

The server: `UCAAS_SYNC_TEST_POSTGRES` (a server URL, default the development machines'
127.0.0.1:5432 with trust auth). Each database is new and empty, and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import sqlalchemy as sa

SERVER = os.environ.get(
    "UCAAS_SYNC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@cache
def postgres_problem() -> str | None:
    """None when a PostgreSQL server answers, else why not."""
    try:
        engine = sa.create_engine(SERVER, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any reason at all means: no server, and say why
        return f"no PostgreSQL at {SERVER.split('@')[-1]}: {type(exc).__name__}"
    return None


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new empty database on the server (its URL), dropped afterwards."""
    problem = postgres_problem()
    if problem:
        raise RuntimeError(problem)
    name = f"ucaas_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
