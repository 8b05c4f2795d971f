"""Chaos: two `ucaas-sync run` processes in one consumer group on one PostgreSQL
database, the sandbox's faults on, one of them SIGKILLed mid-run: the survivor takes
over its partitions (after the group's session timeout) and its leased commands (after
their lease), and UCaaS ends up holding exactly what the events ask for (the same
oracle as test_kill_restart).
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.scenario import build

pytestmark = pytest.mark.chaos


async def test_one_of_two_processes_killed_mid_run_loses_and_duplicates_nothing(
    chaos: Chaos, chaos_seed: int, chaos_scale: float, postgres: str
) -> None:
    began = time.monotonic()
    scenario = build(chaos_seed, 0.6 * chaos_scale)
    run = await chaos(scenario, postgres)
    first, second = run.start("first"), run.start("second")
    for process in (first, second):
        await asyncio.to_thread(process.wait_started, 60.0)
    publish_s = 12.0 * chaos_scale
    publishing = asyncio.create_task(run.publish(publish_s))
    wanted = len(scenario.unique_ids)
    victim, survivor = (first, second) if run.rng.random() < 0.5 else (second, first)
    share = run.rng.uniform(0.3, 0.6)  # killed once this share of the events is taken
    while len((await asyncio.to_thread(run.progress))[0]) < share * wanted:
        assert victim.returncode is None and survivor.returncode is None, run.processes.tails()
        await asyncio.sleep(0.1)
    assert victim.stop(signal.SIGKILL) == -signal.SIGKILL
    run.kills.append(f"{victim.name}: SIGKILL with {share:.0%} of the events taken")
    await publishing
    await run.settle([survivor], timeout_s=150.0 * chaos_scale)
    assert survivor.stop() == 0, survivor.tail()
    comparison = run.check()
    results = await run.check_results()
    print(
        f"\n{len(scenario.events):,} events ({wanted:,} ids); {run.kills}; "
        f"settled after {time.monotonic() - began:.0f} s\n"
        f"compared {comparison.summary()}; {len(run.kills)} kill; results: {results}"
    )
    assert not comparison.problems, comparison.report()
