"""The suite's closing line says how many tests were skipped and why, and a run that
selects no test fails (tests/conftest.py), checked on tiny generated suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import skip_summary

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

# The generated suite's conftest takes the hook from ours (by import, so the rest of our
# conftest, fixtures and options, stays out of it).
CONFTEST = "from tests.conftest import pytest_sessionfinish  # noqa: F401\n"

SUITE = """
import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

def test_runs():
    pass

@pytest.mark.skip(reason="no PostgreSQL at localhost:5432")
def test_on_postgres():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_on_postgres_too(n):
    pytest.skip("no PostgreSQL at localhost:5432")

@pytest.mark.skipif(True, reason="slow: run with --run-slow")
def test_slow():
    pass

@pytest.mark.xfail(reason="an expected failure is not a skip")
def test_xfail():
    assert False
"""


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated suite runs in a subprocess (its own plugins and output) from a
    temporary folder, where `tests` must be importable."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the suite needs none: faster


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_the_last_line_counts_the_skips_by_reason(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    assert result.outlines[-1] == (
        "skipped: 4 (3 no PostgreSQL at localhost:5432; 1 slow: run with --run-slow)"
    )
    assert "1 passed, 4 skipped, 1 xfailed" in result.outlines[-2]  # pytest's, just before


def test_no_skip_is_said_too(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-k", "runs")
    assert result.ret == pytest.ExitCode.OK
    assert result.outlines[-1] == "skipped: 0"


def test_a_run_that_selects_no_test_fails(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-k", "no_such_test")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert result.outlines[-1] == "skipped: 0"


def test_a_module_skipped_whole_counts_once_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_gone="import pytest\npytest.skip('no browser', allow_module_level=True)\n",
        test_here="def test_here():\n    pass\n",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.outlines[-1] == "skipped: 1 (1 no browser)"


def test_a_reason_on_several_lines_is_kept_on_one() -> None:
    skipped = pytest.TestReport(
        "t.py::test", ("t.py", 1, "test"), {}, "skipped", ("t.py", 1, "Skipped: a\n  b"), "call"
    )
    assert skip_summary([skipped]) == "skipped: 1 (1 a b)"
    assert skip_summary([]) == "skipped: 0"
