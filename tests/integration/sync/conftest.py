"""Fixtures for tests that start at the outbox: a migrated store or engine, a client nobody
calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.ucaas import UCaaSClient
from service.outbox import db
from service.outbox.claims import planned_engine
from service.outbox.store import OutboxStore
from service.settings import async_driver_url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[OutboxStore]:
    """As bootstrap wires it: on PostgreSQL, claims on connections of their own."""
    await asyncio.to_thread(db.upgrade, database_url)
    # the driver the service runs on (asyncpg): the statements run as in production
    url = async_driver_url(database_url)
    engine = db.make_engine(url)
    planned = None if engine.dialect.name == "sqlite" else planned_engine(url, pool_size=2)
    yield OutboxStore(engine, claims_engine=planned)
    await engine.dispose()
    if planned is not None:
        await planned.dispose()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The migrated database, for tests of the intake (a small pool: no dispatcher)."""
    await asyncio.to_thread(db.upgrade, database_url)
    engine = db.make_engine(async_driver_url(database_url), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def nowhere() -> AsyncIterator[UCaaSClient]:
    """A client no executor here calls."""
    client = UCaaSClient("http://127.0.0.1:9/ucaas/v1", api_id="unused")
    yield client
    await client.aclose()
