"""Suite-wide options and guards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.service_processes import Processes


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """A Kafka-protocol broker's bootstrap address: KAFKA_BOOTSTRAP_SERVERS (as `make test`
    sets it), else one started for the session (never restarted under live clients)."""
    from service.devtools.local_broker import LocalBroker

    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    broker = LocalBroker.start()
    yield broker.bootstrap
    broker.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """The service processes a test starts; all ended when it ends, passed or failed."""
    started = Processes(tmp_path)
    yield started
    started.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the larger, slow runs")
    # Here, not in tests/chaos/conftest.py: a sub-folder's options exist only when pytest
    # starts from that folder, and `pytest --chaos-scale 5 tests/chaos` must know this one.
    chaos = parser.getgroup("chaos")
    chaos.addoption(
        "--chaos-scale",
        type=float,
        default=1.0,
        help="size of the chaos scenarios (tests/chaos): 1 is the CI size, 5 five times larger",
    )
    chaos.addoption("--chaos-seed", type=int, default=None, help="replay a chaos run's seed")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A run that selects nothing must fail loudly, not pass (pytest's own code 5 can be
    # masked by wrappers; make it explicit).
    if session.testscollected == 0 and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
