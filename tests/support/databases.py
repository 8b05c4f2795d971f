"""Databases for tests: a SQLite file per test, or a fresh PostgreSQL database per test.

PostgreSQL: `UCAAS_SYNC_TEST_POSTGRES` (a server URL, default the development machines'
127.0.0.1:5432 with trust auth). Tests that need it skip with the reason when none answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

SERVER = os.environ.get(
    "UCAAS_SYNC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'ucaas-sync.db'}"


@cache
def postgres_problem() -> str | None:
    """None when a PostgreSQL server answers, else why not."""
    try:
        engine = sa.create_engine(SERVER, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any reason at all means: skip, and say why
        return f"no PostgreSQL at {SERVER.split('@')[-1]}: {type(exc).__name__}"
    return None


def require_postgres() -> None:
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards."""
    require_postgres()
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


@contextmanager
def migrated_database(kind: str, folder: Path) -> Iterator[str]:
    """A database of `kind` ("sqlite": a file in `folder`, "postgres": a fresh one) at the
    latest migration, as a deployment has it after `ucaas-sync db upgrade`."""
    from service.outbox import db

    if kind == "sqlite":
        url = sqlite_url(folder)
        db.upgrade(url)
        yield url
        return
    with fresh_postgres() as url:
        db.upgrade(url)
        yield url
