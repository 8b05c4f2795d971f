"""Chaos: thousands of mixed HR, CRM and calendar events through the real broker, a
sandbox that fails 10% of calls with 503, drops 2% of connections (before and after it
acts), rate-limits with 429 + Retry-After and jitters; the `ucaas-sync run` process is
SIGKILLed at random points and restarted, and sometimes kills itself right after a
successful UCaaS write, before its commit (UCAAS_SYNC_CRASH_AFTER_CALLS).

At the end UCaaS holds exactly what the events ask for, object by object (service/
expected_state.py folds the events without the translation code; tests/support/oracle.py
compares): no customer, subscription, user, licence or meeting missing or duplicated,
every status right; every event id is in the inbox once, every command done. The seed
and the counts compared are printed; `--chaos-seed` replays a run, `--chaos-scale` makes
it larger. The CI size (scale 1): about 1,500 events and 4 kills, one of them right after
a UCaaS write; scale 5: about 7,500 events and 20 kills.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.scenario import build

pytestmark = pytest.mark.chaos


async def test_killed_and_restarted_at_random_loses_and_duplicates_nothing(
    chaos: Chaos, chaos_seed: int, chaos_scale: float, postgres: str
) -> None:
    began = time.monotonic()
    scenario = build(chaos_seed, 0.6 * chaos_scale)
    run = await chaos(scenario, postgres)
    rng = random.Random(chaos_seed)
    publish_s = 15.0 * chaos_scale
    publishing = asyncio.create_task(run.publish(publish_s))
    kills = max(3, round(4 * chaos_scale))
    for n in range(kills):
        if n % 3 == 2:  # every third: the process dies between a UCaaS write and its commit
            writes = rng.randint(20, 300)
            process = run.start(f"run-{n}", crash_after=writes)
            await run.crash_after_writes(process, writes, limit_s=20.0)
        else:
            process = run.start(f"run-{n}")
            await run.kill_at_random(process, 1.0, 7.0)
    final = run.start("final")
    await asyncio.to_thread(final.wait_started, 60.0)  # SIGTERM is handled from then on
    await publishing
    killed_s = time.monotonic() - began
    await run.settle([final], timeout_s=150.0 * chaos_scale)
    assert final.stop() == 0, final.tail()
    comparison = run.check()
    results = await run.check_results()
    print(
        f"\n{len(scenario.events):,} events ({len(scenario.unique_ids):,} ids), "
        f"{len(scenario.feeds)} feeds, {sum(len(p.versions) for p in scenario.feeds)} versions "
        f"(cancels held, moot: {run.cancels_held_moot}); kills: {run.kills}; published and "
        f"killed in {killed_s:.0f} s, settled after {time.monotonic() - began:.0f} s\n"
        f"compared {comparison.summary()}; {len(run.kills)} kills; results: {results}"
    )
    assert not comparison.problems, comparison.report()
