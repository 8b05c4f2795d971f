"""`bench/e2e.py` in a small size: it runs the service, the capacity load and the naive
baseline (at 50 ms only: 0 ms runs the same code, and CI time is dear), every event is
confirmed, and the last line is one JSON object with every figure the README quotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 200
PER_LATENCY = {
    "events",
    "seconds",
    "events_per_s",
    "calls_per_event",
    "commands_per_event",
    "service_calls_per_s",
    "burst_e2e_p50_ms",
    "burst_e2e_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "sandbox_capacity_calls_per_s",
    "share_of_sandbox_capacity",
    "baseline_events",
    "baseline_events_per_s",
    "speedup_over_baseline",
    "outbox",
    "cpu_cores",
}


@pytest.mark.timeout(240)
def test_the_end_to_end_bench_prints_its_figures_as_one_json_line_last(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UCAAS_SYNC_")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "e2e.py"),
            "--quick",
            "--latency-ms",
            "50",
            "--events",
            str(EVENTS),
            "--database",
            "sqlite",  # no PostgreSQL needed; the bench's default picks it when it answers
            "--paced-s",
            "2",
            "--capacity-budget-s",
            "3",
            "--baseline-events",
            "60",
            "--baseline-budget-s",
            "5",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    print("\n".join(lines[:-1]))

    assert figures["bench"] == "e2e"
    assert (figures["events"], figures["database"]) == (EVENTS, "sqlite")
    assert sum(figures["mix"].values()) == EVENTS
    assert {"hr.user.joined", "hr.user.updated", "hr.user.left"} <= set(figures["mix"])
    assert set(figures) >= {"broker_floor_p50_ms", "load_average_at_start", "latency_50ms"}
    for latency in ("latency_50ms",):
        run = figures[latency]
        assert set(run) >= PER_LATENCY, PER_LATENCY - set(run)
        assert run["events"] == EVENTS
        # every command the events made is done: nothing dead, held or left behind
        assert set(run["outbox"]) == {"done"}, run["outbox"]
        assert run["calls_per_event"] >= 1
        assert run["events_per_s"] > 0
        assert 0 < run["burst_e2e_p50_ms"] <= run["burst_e2e_p99_ms"]
        assert 0 < run["e2e_p50_ms"] <= run["e2e_p99_ms"]
        assert run["sandbox_capacity_calls_per_s"] > 0
        assert run["capacity_failures"] == 0
        assert 0 < run["baseline_events"] <= 60
        assert run["baseline_failures"] == 0
        assert run["cpu_cores"]["service"] > 0
    # the injected latency shows: a call takes at least 50 ms end to end
    assert figures["latency_50ms"]["e2e_p50_ms"] >= 50
