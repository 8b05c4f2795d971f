"""The dispatcher over the in-memory outbox and plain executor functions (no I/O): what an
attempt's result or error makes of the row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.ucaas import ServerError
from service.domain.commands import Payload
from service.outbox.claims import Claim
from service.outbox.dispatcher import Dispatcher
from service.outbox.outcome_writer import Finished
from service.outbox.outcomes import Done, Outcome, WaitForError
from service.settings import DispatcherSettings
from tests.support.memory_outbox import Attempt, FunctionExecutors, MemoryOutbox

SETTINGS = DispatcherSettings(workers=2, poll_s=0.01, backoff_base_s=0.01, backoff_cap_s=0.02)


class Step(Payload):
    n: int


async def drain(outbox: MemoryOutbox, kinds: dict[str, Attempt]) -> Dispatcher:
    executors = FunctionExecutors({kind: (Step, run) for kind, run in kinds.items()})
    dispatcher = Dispatcher(outbox, executors, SETTINGS, owner="t")
    await dispatcher.run_until_idle(idle_s=0.1, timeout_s=10)
    return dispatcher


async def test_a_missing_prerequisite_makes_the_row_wait() -> None:
    outbox = MemoryOutbox()
    row = outbox.add("step", {"n": 1}, entity="user:T1:E1", tenant="T1")

    async def no_customer(claim: Claim, step: Step) -> Outcome:
        raise WaitForError("tenant T1 has no UCaaS customer yet")

    dispatcher = await drain(outbox, {"step": no_customer})

    waiting = outbox.rows[row]
    assert (waiting.status, waiting.note) == ("waiting", "tenant T1 has no UCaaS customer yet")
    assert waiting.attempts == 0  # waiting is not failing
    assert set(dispatcher.stats.outcomes) == {"wait"}  # re-checked, never failed


async def test_a_kind_no_executor_runs_is_dead_without_a_call() -> None:
    outbox = MemoryOutbox()
    row = outbox.add("retired_kind", {"n": 1}, entity="user:T1:E1")
    ran: list[Any] = []

    async def step(claim: Claim, payload: Step) -> Outcome:
        ran.append(payload)
        return Done()

    await drain(outbox, {"step": step})

    assert outbox.status(row) == "dead"
    assert outbox.rows[row].last_error == "unknown_kind: no executor for retired_kind"
    assert ran == []


async def test_after_an_ambiguous_failure_the_next_attempt_is_in_doubt() -> None:
    """A 5xx may have acted: the row is retried, and its next claim tells the executor to
    look the object up before creating it. The entity's next command waits its turn."""
    outbox = MemoryOutbox()
    first = outbox.add("step", {"n": 1}, entity="user:T1:E1")
    second = outbox.add("step", {"n": 2}, entity="user:T1:E1")
    seen: list[tuple[int, int, bool]] = []

    async def flaky(claim: Claim, step: Step) -> Outcome:
        seen.append((step.n, claim.attempts, claim.in_doubt))
        if len(seen) == 1:
            raise ServerError(
                method="POST", route="/users", status=503, code=None, api_message="busy"
            )
        return Done()

    await drain(outbox, {"step": flaky})

    assert outbox.statuses() == {first: "done", second: "done"}
    assert seen == [(1, 1, False), (1, 2, True), (2, 1, False)]


class SlowCommits(MemoryOutbox):
    """An outbox whose commits wait until the test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.commit = asyncio.Event()

    async def finish_many(self, items: Sequence[Finished]) -> list[bool]:
        await self.commit.wait()
        return await super().finish_many(items)


async def test_a_worker_takes_the_next_command_while_the_last_outcome_waits_for_its_commit() -> (
    None
):
    """Commits overlap calls, within bounds: `workers` commands call the API at once, and at
    most `workers` - 1 more have an outcome waiting for the commit; an entity's next
    command waits for the commit of the one before."""
    outbox = SlowCommits()
    rows = [outbox.add("step", {"n": n}, entity=f"user:T1:E{n}") for n in range(6)]
    behind = outbox.add("step", {"n": 99}, entity="user:T1:E0")  # after rows[0]
    calls: list[int] = []

    async def step(claim: Claim, payload: Step) -> Outcome:
        calls.append(payload.n)
        return Done()

    executors = FunctionExecutors({"step": (Step, step)})
    dispatcher = Dispatcher(outbox, executors, SETTINGS, owner="t")  # 2 workers
    task = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(calls) >= 3:
                break
        await asyncio.sleep(0.1)
        # 2 outcomes waiting free 1 worker, which ran 1 more; then no fourth call
        # before a commit
        assert sorted(calls) == [0, 1, 2]
        assert dispatcher.in_flight == 3
        assert {outbox.status(r) for r in rows[:3]} == {"in_flight"}
        outbox.commit.set()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if outbox.status(behind) == "done":
                break
    finally:
        outbox.commit.set()
        await dispatcher.stop()
        await task
    assert outbox.statuses() == dict.fromkeys([*rows, behind], "done")
    assert calls.index(99) > calls.index(0)


async def test_one_worker_runs_its_commands_strictly_one_after_another() -> None:
    outbox = SlowCommits()
    rows = [outbox.add("step", {"n": n}, entity=f"user:T1:E{n}") for n in range(3)]
    calls: list[int] = []

    async def step(claim: Claim, payload: Step) -> Outcome:
        calls.append(payload.n)
        return Done()

    settings = DispatcherSettings(workers=1, poll_s=0.01)
    dispatcher = Dispatcher(outbox, FunctionExecutors({"step": (Step, step)}), settings, owner="t")
    task = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.sleep(0.2)
        assert calls == [0]  # its outcome waits for the commit: nothing else runs
        outbox.commit.set()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(calls) == 3:
                break
    finally:
        outbox.commit.set()
        await dispatcher.stop()
        await task
    assert calls == [0, 1, 2]
    assert set(outbox.statuses().values()) == {"done"} and len(rows) == 3


class SlowClaims(MemoryOutbox):
    """Claims that take a while, counting how many are out at once and what they ask."""

    def __init__(self) -> None:
        super().__init__()
        self.out = 0
        self.most_out = 0
        self.asked: list[int] = []

    async def claim(self, owner: str, limit: int, lease_s: float) -> list[Claim]:
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        self.asked.append(limit)
        try:
            await asyncio.sleep(0.05)
            return await super().claim(owner, limit, lease_s)
        finally:
            self.out -= 1


async def test_a_second_claim_runs_while_one_is_out_and_they_never_take_more_than_the_workers() -> (
    None
):
    outbox = SlowClaims()
    rows = [outbox.add("step", {"n": n}, entity=f"user:T1:E{n}") for n in range(40)]
    running = 0
    most_running = 0

    async def step(claim: Claim, payload: Step) -> Outcome:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(0.03)
        running -= 1
        return Done()

    settings = DispatcherSettings(workers=4, batch=2, poll_s=0.01)
    executors = FunctionExecutors({"step": (Step, step)})
    dispatcher = Dispatcher(outbox, executors, settings, owner="t")
    await dispatcher.run_until_idle(idle_s=0.2, timeout_s=20)
    assert set(outbox.statuses().values()) == {"done"} and len(rows) == 40
    assert outbox.most_out == 2  # two claims out at once, never three
    assert most_running <= 4  # the workers, whatever the claims under way
    assert max(outbox.asked) <= 2  # the batch
