"""`ucaas-sync demo` end to end: sandbox started, scenario run, summary printed, clean exit."""

from __future__ import annotations

import subprocess

from tests.support.processes import BIN


def test_demo_runs_the_scenario_and_ends_cleanly() -> None:
    done = subprocess.run(
        [str(BIN / "ucaas-sync"), "demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": str(BIN)},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "customer Acme Robotics (CRM-1001)" in out
    assert "wait Denis Roy: code 1262" in out  # no seat left: waits, does not fail
    assert "Denis Roy's waiting licence goes through now" in out
    assert "code 1103, adopted=True" in out  # a repeated create is adopted, not duplicated
    assert "made: 2 customers, 6 users, 5 licences held, 1 meeting" in out
    # the summary is read back from the sandbox, not from the scenario's own counters
    assert "│ Acme Robotics    │ 4 (3)          │ 3        │ 1        │" in out
    assert "sandbox-admin" in out  # where to look next
    assert "Traceback" not in done.stderr
