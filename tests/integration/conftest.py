"""Integration fixtures: the UCaaS sandbox over real HTTP on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.ucaas import Credentials, UCaaSClient
from sandbox.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, DEFAULT_API_ID
from service.app.bootstrap import Service, bootstrap
from service.settings import DispatcherSettings, Settings
from tests.support.databases import fresh_postgres, sqlite_url
from tests.support.sandbox_server import SandboxAdmin, SandboxServer

TEST_SECRET_KEY = "x2jvY4l0vV6QqC9cI0v0m3l3b0eQn5yq3Yt8bW6pZ0E="


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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The service's database: SQLite, and PostgreSQL where a server answers."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def sqlite_database(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


def service_settings(database_url: str, sandbox: SandboxAdmin, **dispatch: Any) -> Settings:
    """Settings for a test: fast polls and short backoffs, against the test sandbox."""
    fast = {
        "workers": 8,
        "poll_s": 0.02,
        "lease_s": 30.0,
        "backoff_base_s": 0.02,
        "backoff_cap_s": 0.2,
        "wait_cap_s": 0.2,
        "probe_every_s": 0.2,
        "probe_cap_s": 0.5,
        "shutdown_grace_s": 5.0,
    }
    fast.update(dispatch)
    return Settings(
        database_url=database_url,
        secret_key=SecretStr(TEST_SECRET_KEY),
        ucaas_base_url=sandbox.base_url,
        dispatch=DispatcherSettings(**fast),
    )


@pytest.fixture
async def service(database_url: str, sandbox: SandboxAdmin) -> AsyncIterator[Service]:
    """The wired service (outbox, dispatcher, client) on a fresh database."""
    svc = await bootstrap(service_settings(database_url, sandbox), migrate=True)
    yield svc
    await svc.aclose()
