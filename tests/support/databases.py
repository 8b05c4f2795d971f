"""Databases for tests: a SQLite file per test, or a fresh PostgreSQL database per test
(service/devtools/local_postgres.py). Tests that need PostgreSQL skip with the reason when
none answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from service.devtools.local_postgres import fresh_database, postgres_problem


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'ucaas-sync.db'}"


def require_postgres() -> None:
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards (skips without one)."""
    require_postgres()
    with fresh_database() as url:
        yield url


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
