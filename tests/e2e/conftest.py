"""The UCaaS sandbox as its own process (`ucaas-sandbox`), reset for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.devtools.local_sandbox import LocalSandbox
from tests.support.sandbox_server import SandboxAdmin


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[LocalSandbox]:
    sandbox = LocalSandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_process: LocalSandbox) -> Iterator[SandboxAdmin]:
    admin = SandboxAdmin(sandbox_process.root, sandbox_process.base_url)
    admin.reset()
    yield admin
    admin.http.close()
