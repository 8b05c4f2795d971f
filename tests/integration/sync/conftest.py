"""Fixtures for tests that start at the outbox: a migrated store, a client nobody calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from connectors.ucaas import UCaaSClient
from service.outbox import db
from service.outbox.store import OutboxStore


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[OutboxStore]:
    await asyncio.to_thread(db.upgrade, database_url)
    engine = db.make_engine(database_url)
    yield OutboxStore(engine)
    await engine.dispose()


@pytest.fixture
async def nowhere() -> AsyncIterator[UCaaSClient]:
    """A client no executor here calls."""
    client = UCaaSClient("http://127.0.0.1:9/ucaas/v1", api_id="unused")
    yield client
    await client.aclose()
