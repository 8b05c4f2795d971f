"""The outage breaker: open after failures in a row, probe one call at a time, back off."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.ucaas import CallRecord, ServerError, TransportError
from service.domain.commands import Payload
from service.outbox.breaker import BreakerState, OutageBreaker
from service.outbox.claims import Claim
from service.outbox.dispatcher import Dispatcher, record_call
from service.outbox.outcomes import Done, Outcome
from service.settings import DispatcherSettings
from tests.support.memory_outbox import FunctionExecutors, MemoryOutbox


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, **kwargs: float) -> OutageBreaker:
    options: dict[str, float] = {"threshold": 3, "probe_s": 2.0, "probe_cap_s": 10.0}
    options.update(kwargs)
    return OutageBreaker(
        threshold=int(options["threshold"]),
        probe_s=options["probe_s"],
        probe_cap_s=options["probe_cap_s"],
        clock=clock,
    )


def state(b: OutageBreaker) -> BreakerState:
    """The state, read through a call so a type checker does not narrow it."""
    return b.state


def open_it(b: OutageBreaker) -> None:
    for _ in range(b.threshold):
        b.failure()
    assert state(b) is BreakerState.OPEN


def test_closed_gives_every_slot_asked_for(clock: Clock) -> None:
    b = breaker(clock)
    assert b.slots(8) == 8
    assert b.slots(1) == 1
    assert b.slots(0) == 0
    assert not b.paused()


def test_opens_at_the_threshold_not_before(clock: Clock) -> None:
    b = breaker(clock)
    b.failure()
    b.failure()
    assert state(b) is BreakerState.CLOSED
    assert b.slots(4) == 4
    b.failure()
    assert state(b) is BreakerState.OPEN
    assert b.paused()
    assert b.opened == 1
    assert b.slots(4) == 0


def test_failures_must_be_in_a_row(clock: Clock) -> None:
    b = breaker(clock)
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert state(b) is BreakerState.CLOSED
    assert b.slots(5) == 5


def test_no_slots_while_open_until_the_probe_time(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    for _ in range(3):
        clock.advance(0.6)
        assert b.slots(8) == 0
    clock.advance(0.2)  # 2.0 s after opening
    assert b.slots(8) == 1
    assert state(b) is BreakerState.HALF_OPEN
    assert b.paused()


def test_only_one_probe_at_a_time(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    clock.advance(2.0)
    assert b.slots(8) == 1
    clock.advance(100.0)
    assert b.slots(8) == 0  # the probe has not answered yet
    assert b.slots(1) == 0


def test_a_successful_probe_closes(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    clock.advance(2.0)
    assert b.slots(8) == 1
    b.success()
    assert state(b) is BreakerState.CLOSED
    assert not b.paused()
    assert b.failures == 0
    assert b.slots(8) == 8
    # A fresh outage needs the full threshold again, and is counted once more.
    b.failure()
    b.failure()
    assert state(b) is BreakerState.CLOSED
    b.failure()
    assert state(b) is BreakerState.OPEN
    assert b.opened == 2


def test_a_failed_probe_reopens_with_the_wait_doubled_up_to_the_cap(clock: Clock) -> None:
    b = breaker(clock, probe_s=2.0, probe_cap_s=10.0)
    open_it(b)
    waits = []
    for _ in range(5):
        # Find when the next probe is let through, in exact binary steps of 1/4 s.
        waited = 0.0
        while b.slots(8) == 0:
            clock.advance(0.25)
            waited += 0.25
            assert waited < 60, "no probe was ever let through"
        waits.append(waited)
        b.failure()
        assert state(b) is BreakerState.OPEN
        assert b.slots(8) == 0
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert b.opened == 1  # one outage, probed five times


def test_after_a_failed_probe_a_success_resets_the_wait(clock: Clock) -> None:
    b = breaker(clock, probe_s=2.0, probe_cap_s=10.0)
    open_it(b)
    clock.advance(2.0)
    assert b.slots(1) == 1
    b.failure()  # wait now 4 s
    clock.advance(4.0)
    assert b.slots(1) == 1
    b.success()
    open_it(b)
    clock.advance(1.9)
    assert b.slots(1) == 0
    clock.advance(0.1)
    assert b.slots(1) == 1  # back to probe_s, not 8 s


def test_stragglers_failing_while_open_do_not_push_the_probe_back(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    clock.advance(1.0)
    b.failure()  # a command claimed before the outage was detected
    b.failure()
    assert b.opened == 1
    clock.advance(1.0)
    assert b.slots(8) == 1


def test_a_straggler_success_while_open_closes(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    b.success()  # the API answered after all
    assert state(b) is BreakerState.CLOSED
    assert b.slots(3) == 3


def test_slow_down_blocks_every_claim_until_retry_after(clock: Clock) -> None:
    b = breaker(clock)
    b.slow_down(5.0)
    assert state(b) is BreakerState.CLOSED  # a 429 is not an outage
    assert not b.paused()
    assert b.slots(8) == 0
    clock.advance(4.9)
    assert b.slots(8) == 0
    clock.advance(0.1)
    assert b.slots(8) == 8


def test_slow_down_keeps_the_latest_deadline(clock: Clock) -> None:
    b = breaker(clock)
    b.slow_down(5.0)
    clock.advance(1.0)
    b.slow_down(1.0)  # a shorter request does not shorten the pause
    clock.advance(3.5)
    assert b.slots(2) == 0
    clock.advance(0.5)
    assert b.slots(2) == 2


def test_slow_down_also_delays_the_probe(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    b.slow_down(5.0)
    clock.advance(2.0)
    assert b.slots(8) == 0  # probe time, but the API asked for calm
    clock.advance(3.0)
    assert b.slots(8) == 1


def test_asking_for_no_slot_does_not_use_up_the_probe(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    clock.advance(2.0)
    assert b.slots(0) == 0
    assert b.slots(4) == 1


def test_an_unused_probe_slot_is_offered_again(clock: Clock) -> None:
    b = breaker(clock)
    open_it(b)
    clock.advance(2.0)
    assert b.slots(8) == 1
    b.unused(1)  # nothing was due: no call was made
    assert state(b) is BreakerState.HALF_OPEN
    assert b.slots(8) == 1
    assert b.slots(8) == 0


def test_unused_slots_change_nothing_outside_a_probe(clock: Clock) -> None:
    b = breaker(clock)
    assert b.slots(8) == 8
    b.unused(5)
    assert state(b) is BreakerState.CLOSED
    open_it(b)
    b.unused(3)
    assert b.slots(8) == 0  # still waiting for the probe time
    clock.advance(2.0)
    assert b.slots(8) == 1
    b.unused(0)
    assert b.slots(8) == 0  # the probe is still out


# -- the dispatcher and its breaker, over an in-memory outbox (no I/O) ---------------------
class Step(Payload):
    n: int


def add(outbox: MemoryOutbox, n: int, payload: dict[str, Any] | None = None) -> None:
    row = outbox.add("step", {"n": n} if payload is None else payload, entity=f"e{n}")
    assert row == n


def api_answered(status: int = 200) -> None:
    """What the UCaaS client's call hook reports when an executor's call is answered: the
    breaker counts an answer, not a returned Done, as evidence that the API is up."""
    record_call(CallRecord("GET", "/x", "/x", status, None, 0.001, None, datetime.now(UTC)))


async def dispatch(
    outbox: MemoryOutbox,
    run: Callable[[Claim, Step], Awaitable[Outcome]],
    until: Callable[[], bool],
) -> Dispatcher:
    settings = DispatcherSettings(
        workers=4,
        poll_s=0.01,
        outage_failures=1,
        probe_every_s=0.05,
        probe_cap_s=0.2,
        backoff_base_s=0.01,
        shutdown_grace_s=0.5,
    )
    executors = FunctionExecutors({"step": (Step, run)})
    dispatcher = Dispatcher(outbox, executors, settings, owner="t")
    task = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(300):
            if until():
                break
            await asyncio.sleep(0.01)
    finally:
        await dispatcher.stop()
        await task
    return dispatcher


async def test_a_probe_that_finds_nothing_due_is_tried_again() -> None:
    """The first failure opens the breaker; the row backs off (Retry-After 0.3 s) past the
    first probe time, so the first probe claims nothing. Dispatch must not stall on it."""
    outbox = MemoryOutbox()
    add(outbox, 1)
    calls = 0

    async def down_once(claim: Claim, step: Step) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ServerError(
                method="GET", route="/x", status=503, code=None, api_message="down", retry_after=0.3
            )
        api_answered()
        return Done()

    dispatcher = await dispatch(outbox, down_once, lambda: outbox.statuses() == {1: "done"})
    assert outbox.statuses() == {1: "done"}
    assert calls == 2
    assert dispatcher.breaker.opened == 1
    assert dispatcher.breaker.state is BreakerState.CLOSED


async def test_a_failed_probe_claim_is_tried_again() -> None:
    outbox = MemoryOutbox()
    add(outbox, 1)
    calls: list[int] = []

    async def down_first(claim: Claim, step: Step) -> Outcome:
        calls.append(step.n)
        if len(calls) == 1:
            add(outbox, 2)
            outbox.broken_claims = 3  # the database hiccups during the outage too
            raise TransportError("GET", "/x", "connect refused", ambiguous=False)
        api_answered()
        return Done()

    await dispatch(
        outbox,
        down_first,
        lambda: set(outbox.statuses().values()) == {"done"},
    )
    assert outbox.statuses() == {1: "done", 2: "done"}


async def test_a_probe_that_makes_no_call_is_followed_by_another() -> None:
    """The probe claims a command with a bad payload (the failed one is not due yet):
    parked without a call, it says nothing about the API; the next due command must
    still be let through as a probe."""
    outbox = MemoryOutbox()
    add(outbox, 1)
    calls: list[int] = []

    async def down_first(claim: Claim, step: Step) -> Outcome:
        calls.append(step.n)
        if len(calls) == 1:
            # While the breaker is open, a bad command and a good one become due.
            add(outbox, 2, payload={"n": "not a number"})
            add(outbox, 3)
            raise ServerError(
                method="GET", route="/x", status=500, code=None, api_message="x", retry_after=0.3
            )
        api_answered()
        return Done()

    await dispatch(
        outbox,
        down_first,
        lambda: outbox.statuses() == {1: "done", 2: "dead", 3: "done"},
    )
    assert outbox.statuses() == {1: "done", 2: "dead", 3: "done"}
