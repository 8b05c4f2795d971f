"""Integration fixtures: the UCaaS sandbox over real HTTP on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from connectors.ucaas import Credentials, UCaaSClient
from sandbox.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, DEFAULT_API_ID
from tests.support.sandbox_server import SandboxAdmin, SandboxServer


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxAdmin:
    """The sandbox, reset to a fresh state (tenant + admin only, no faults)."""
    admin = SandboxAdmin(sandbox_server.root, sandbox_server.base_url, http=sandbox_server.http)
    admin.reset()
    return admin


@pytest.fixture
async def api(sandbox: SandboxAdmin) -> AsyncIterator[UCaaSClient]:
    """The client, logged in as the tenant admin with a token."""
    async with UCaaSClient(
        sandbox.base_url,
        api_id=DEFAULT_API_ID,
        credentials=Credentials.of(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD),
    ) as client:
        yield client
