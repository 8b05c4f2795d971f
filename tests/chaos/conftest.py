"""Chaos tests: options, and a scenario run wired to the broker, a sandbox process of its
own (faults on) and feed servers.

`--chaos-scale N` (default 1: the size CI runs, about five minutes for the folder) makes
every scenario N times larger; `--chaos-seed S` replays a run (each test prints its seed).
Both options are defined in tests/conftest.py.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from service.devtools.local_broker import Topics
from service.devtools.local_sandbox import LocalSandbox
from service.devtools.service_processes import Outbox
from tests.chaos.harness import FAULTS, ChaosRun, service_env
from tests.chaos.scenario import Scenario, with_feed_urls
from tests.support.databases import fresh_postgres
from tests.support.feeds import FeedServer
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import Processes, db_upgrade, dispatch_env


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Larger scenarios take longer: the suite's 120 s timeout grows with the scale.
    scale = max(1.0, float(config.getoption("--chaos-scale", 1.0)))
    for item in items:
        if item.get_closest_marker("chaos") is not None and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(240 * scale))


@pytest.fixture
def chaos_scale(request: pytest.FixtureRequest) -> float:
    return float(request.config.getoption("--chaos-scale", 1.0))


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest) -> int:
    given = request.config.getoption("--chaos-seed", None)
    seed = int(given) if given is not None else int(time.time() * 1000) % 1_000_000
    print(f"\nchaos seed {seed} (replay: --chaos-seed {seed})")
    return seed


@pytest.fixture
def sandbox() -> Iterator[SandboxAdmin]:
    """A `ucaas-sandbox` process of its own: the faults and the state are this test's."""
    process = LocalSandbox.start()
    admin = SandboxAdmin(process.root, process.base_url)
    yield admin
    admin.http.close()
    process.stop()


@pytest.fixture
def postgres() -> Iterator[str]:
    """A fresh PostgreSQL database (skipped, with the reason, where none answers): the
    deployment that runs several processes, and the one that keeps up under this load
    (SQLite's single writer lets a 2-second lease run out behind an intake batch)."""
    with fresh_postgres() as url:
        yield url


Chaos = Callable[[Scenario, str], Awaitable[ChaosRun]]


@pytest.fixture
async def chaos(
    sandbox: SandboxAdmin, kafka: str, tmp_path: Path, chaos_seed: int
) -> AsyncIterator[Chaos]:
    """Ready a run of `scenario` on `database_url` (migrated here, as a deployment does):
    topics, feed servers at their first version, the policy file, the faults on."""
    runs: list[ChaosRun] = []

    async def ready(scenario: Scenario, database_url: str) -> ChaosRun:
        topics = Topics.fresh("chaos")
        await topics.create(kafka)
        feeds = {plan.feed_id: FeedServer(path=f"/{plan.feed_id}.ics") for plan in scenario.feeds}
        for plan in scenario.feeds:
            feeds[plan.feed_id].publish(plan.body(0))
        with_feed_urls(scenario, {f: server.url for f, server in feeds.items()})
        policy = tmp_path / "policy.toml"
        policy.write_text(scenario.policy_toml)
        base = dispatch_env(database_url, sandbox.base_url, lease_s=2.0)
        env = service_env(base, kafka, topics, policy)
        db_upgrade(env, tmp_path)
        sandbox.faults(**FAULTS)
        run = ChaosRun(
            scenario,
            kafka,
            topics,
            env,
            sandbox,
            Processes(tmp_path),
            Outbox(database_url),
            feeds,
            random.Random(chaos_seed),
        )
        runs.append(run)
        return run

    yield ready
    for run in runs:
        run.close()
