"""Suite-wide options and guards."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when used: the service's modules are a second to import
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
    from tests.support.service_processes import Processes

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


def skip_summary(reports: list[pytest.TestReport | pytest.CollectReport]) -> str:
    """`skipped: 3 (2 no PostgreSQL at ...; 1 slow: run with --run-slow)`, the most
    frequent reason first, or `skipped: 0`."""
    reasons: Counter[str] = Counter()
    for report in reports:
        if not getattr(report, "count_towards_summary", True):  # as pytest's own count
            continue
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
        reasons[" ".join(reason.removeprefix("Skipped: ").split())] += 1
    if not reasons:
        return "skipped: 0"
    groups = sorted(reasons.items(), key=lambda group: (-group[1], group[0]))
    return f"skipped: {reasons.total()} ({'; '.join(f'{n} {why}' for why, n in groups)})"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    # A run that selects nothing must fail loudly, not pass (pytest's own code 5 can be
    # masked by wrappers; make it explicit).
    if session.testscollected == 0 and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
    result = yield
    # The skips, by reason, as the run's very last line (after pytest's "N passed, M
    # skipped" line), where a skip that should have run cannot go unseen. Not in
    # pytest_terminal_summary: pytest prints its own closing line after every one of
    # those; this outermost wrapper of sessionfinish runs after the terminal reporter's.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(skip_summary(reporter.stats.get("skipped", [])))
    return result
