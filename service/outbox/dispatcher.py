"""The dispatcher: claims due commands and runs them, N at a time.

Each claimed command runs in a task of its own: parse the payload with the kind's model,
have the executors (ports.CommandRunner) attempt it against the UCaaS API, turn an error
into retry/wait/park (failures.py), and record the outcome with its mappings and call log
in one transaction. The loop claims as many rows as there are free workers (fewer, or
none, while the outage breaker is open), and sleeps until woken by new commands, a
finished task or the poll interval.

A worker is free once its command's outcome is handed to the recorder, not once it is
committed: the row stays in flight until then (its entity's next command cannot be
claimed before), and the group commit of one batch overlaps the calls of the next. The
commit was half of a command's time (bench/dispatch.py, 50 ms API latency: call 93 ms,
commit wait 74 ms). At most `workers` - 1 outcomes wait for the recorder this way; more
wait in their worker, so a slow database slows the claims down, and a single worker runs
its commands strictly one after another.

Two claims may run at once: a claim is a few round trips to the database (20-30 ms on a
busy machine), and while one was out, the workers it was not claiming for sat idle; one
claim at a time capped a process at about 40 claims a second. Each claim reserves the
slots it claims for, so together they never take more than the free workers.

Shutdown stops claiming, lets running commands finish for `shutdown_grace_s`, then cancels
the rest and gives their rows back, so nothing stays leased.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from pydantic import ValidationError as PayloadError

from connectors.ucaas import CallRecord, RateLimitedError
from service.observability import metrics
from service.observability.log_context import log_context
from service.outbox import failures
from service.outbox.breaker import BreakerState, OutageBreaker
from service.outbox.claims import Claim
from service.outbox.outcomes import Dead, Done, Outcome, Retry, Wait
from service.outbox.ports import CommandQueue, CommandRunner
from service.outbox.recorder import Recorder
from service.outbox.tables import utcnow
from service.settings import DispatcherSettings

log = logging.getLogger("ucaas_sync.dispatcher")

CLAIMS_AT_ONCE = 2  # see the module's docstring

# The UCaaS calls of the command running in this task (the client's call hook fills it).
CURRENT_CALLS: ContextVar[list[CallRecord] | None] = ContextVar("current_calls", default=None)


def record_call(record: CallRecord) -> None:
    metrics.ucaas_call(record.method, record.route, record.status, record.latency_s)
    calls = CURRENT_CALLS.get()
    if calls is not None:
        calls.append(record)


@dataclass
class DispatchStats:
    outcomes: Counter[str] = field(default_factory=Counter)  # done, retry, wait, dead
    by_kind: Counter[str] = field(default_factory=Counter)  # "create_user:done"
    calls: int = 0
    lost_leases: int = 0


class Dispatcher:
    def __init__(
        self,
        store: CommandQueue,
        executors: CommandRunner,
        settings: DispatcherSettings,
        *,
        owner: str | None = None,
        breaker: OutageBreaker | None = None,
    ) -> None:
        self.store = store
        self.executors = executors
        self.settings = settings
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.breaker = breaker or OutageBreaker(
            threshold=settings.outage_failures,
            probe_s=settings.probe_every_s,
            probe_cap_s=settings.probe_cap_s,
        )
        self.stats = DispatchStats()
        self.recorder = Recorder(store)
        self._running: dict[int, tuple[asyncio.Task[None], Claim]] = {}
        self._finishing: set[int] = set()  # outcome known, waiting for the commit
        self._reserved = 0  # slots the claims under way claim for
        self._nothing_due = False  # the last claim found nothing: wait to be woken
        self._wake = asyncio.Event()
        self._stopping = False
        self._probe: int | None = None  # the command sent to probe an outage

    def wake(self) -> None:
        """New commands are in: look now rather than at the next poll."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def busy(self) -> int:
        """Workers taken: the commands running, but for up to `workers` - 1 of those whose
        outcome only waits to be committed, and the slots claims under way claim for."""
        finishing = min(len(self._finishing), self.settings.workers - 1)
        return len(self._running) - finishing + self._reserved

    async def run(self) -> None:
        self._stopping = False
        self.recorder.start()
        reclaimer = asyncio.create_task(self._housekeeping())
        claiming: set[asyncio.Task[int]] = set()
        try:
            while not self._stopping:
                free = self.settings.workers - self.busy
                if free > 0 and len(claiming) < CLAIMS_AT_ONCE and not self._nothing_due:
                    task = asyncio.create_task(self._claim_some())
                    claiming.add(task)
                    task.add_done_callback(self._claimed(claiming))
                    await asyncio.sleep(0)  # it reserves its slots before the next look
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)
                self._nothing_due = False  # woken, or the poll interval passed: look again
        finally:
            await asyncio.gather(*claiming, return_exceptions=True)
            reclaimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reclaimer
            await self._drain()
            await self.recorder.stop()

    def _claimed(self, claiming: set[asyncio.Task[int]]) -> Callable[[asyncio.Task[int]], None]:
        def done(task: asyncio.Task[int]) -> None:
            claiming.discard(task)
            if not task.cancelled() and task.exception() is None and task.result() > 0:
                self._wake.set()  # there may be more
            else:
                self._nothing_due = True  # until new commands, a free worker or the poll

        return done

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run_until_idle(self, idle_s: float = 0.3, timeout_s: float = 60.0) -> None:
        """Run until no command is pending, in flight or due for `idle_s` (tests, one-shot
        drains). Held and dead commands, and those waiting for a later re-check, do not keep
        it running; a waiting command woken by a prerequisite's success does (without it a
        subscription woken by its customer could be left undone)."""
        task = asyncio.create_task(self.run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        quiet_since = loop.time()
        try:
            while loop.time() < deadline:
                await asyncio.sleep(0.05)
                counts = await self.store.counts()
                busy = counts.get("pending") or counts.get("in_flight")
                if self._running or busy or await self.store.due():
                    quiet_since = loop.time()
                elif loop.time() - quiet_since >= idle_s:
                    return
        finally:
            await self.stop()
            await task

    async def _claim_some(self) -> int:
        free = self.settings.workers - self.busy
        slots = self.breaker.slots(free) if free > 0 else 0
        if slots <= 0:
            return 0
        wanted = min(slots, self.settings.batch)
        self._reserved += wanted
        try:
            claims = await self.store.claim(self.owner, wanted, self.settings.lease_s)
        except Exception:
            self.breaker.unused(slots)
            log.exception("claim failed; retrying after the poll interval")
            return 0
        finally:
            self._reserved -= wanted
        # A probe slot that found nothing due must be offered again, not wait forever.
        self.breaker.unused(slots - len(claims))
        if claims and self.breaker.state is BreakerState.HALF_OPEN:
            self._probe = claims[0].id
        for claim in claims:
            task = asyncio.create_task(self._work(claim), name=f"command-{claim.id}")
            self._running[claim.id] = (task, claim)
            task.add_done_callback(self._finished(claim.id))
        return len(claims)

    def _finished(self, command_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(command_id, None)
            self._finishing.discard(command_id)
            self._wake.set()  # a worker is free

        return done

    async def _work(self, claim: Claim) -> None:
        # Every log line of this command, down to the UCaaS client's, names it.
        with log_context(command_id=claim.id, entity=claim.entity, kind=claim.kind):
            await self._execute(claim)

    async def _execute(self, claim: Claim) -> None:
        calls: list[CallRecord] = []
        token = CURRENT_CALLS.set(calls)
        try:
            outcome = await self._attempt(claim)
        finally:
            CURRENT_CALLS.reset(token)
        self.stats.calls += len(calls)
        self.stats.outcomes[_name(outcome)] += 1
        self.stats.by_kind[f"{claim.kind}:{_name(outcome)}"] += 1
        metrics.command_finished(claim.kind, _METRIC_OUTCOMES[type(outcome)])
        self._finishing.add(claim.id)
        self._wake.set()  # its worker is free for another command
        try:
            recorded = await self.recorder.record(claim, outcome, calls)
        except Exception:
            # The lease will expire and the row come back, in doubt: nothing is lost.
            log.exception("could not record the outcome of command %s", claim.id)
            return
        if not recorded:
            self.stats.lost_leases += 1
            log.warning("command %s: lease lost before its outcome was recorded", claim.id)
        elif isinstance(outcome, Dead):
            log.warning(
                "command %s %s parked: %s %s", claim.id, claim.kind, outcome.code, outcome.message
            )

    async def _attempt(self, claim: Claim) -> Outcome:
        model = self.executors.payload_model(claim.kind)
        if model is None:
            self.breaker.unused(1)  # no call: if this was the probe, another one goes
            return Dead("unknown_kind", f"no executor for {claim.kind}")
        try:
            payload = model.model_validate(claim.payload)
        except PayloadError as exc:
            self.breaker.unused(1)
            return Dead("bad_payload", f"{exc.error_count()} invalid field(s) in the payload")
        now = utcnow()
        error: Exception | None = None
        try:
            outcome = await self.executors.execute(claim, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
            if isinstance(exc, RateLimitedError) and exc.retry_after:
                self.breaker.slow_down(exc.retry_after)
        self._tell_breaker(claim, error)
        if error is not None:
            outcome = failures.outcome_of(
                error, claim, self.settings, now=now, outage=self.breaker.paused()
            )
        return failures.bounded(outcome, claim, self.settings, now=now)

    def _tell_breaker(self, claim: Claim, error: Exception | None) -> None:
        """Only evidence about the API moves the breaker: an answer below 500 says it is
        up, a 5xx or no answer says it is down; a command that made no call says nothing.
        While half open, only the probe's own result counts (a late result of a command
        claimed before the outage is no news)."""
        is_probe = claim.id == self._probe
        if self.breaker.state is BreakerState.HALF_OPEN and not is_probe:
            return
        calls = CURRENT_CALLS.get() or []
        if error is not None and failures.is_outage(error):
            self.breaker.failure()
        elif any(c.status is not None and c.status < 500 for c in calls):
            self.breaker.success()
        elif is_probe:
            self.breaker.unused(1)  # the probe made no call: another one goes
        if is_probe:
            self._probe = None

    async def _housekeeping(self) -> None:
        """Extend the leases of running commands (a slow command must not be reclaimed and
        run twice) and take back the expired leases of dead workers."""
        every = max(0.2, min(10.0, self.settings.lease_s / 3))
        while True:
            await asyncio.sleep(every)
            try:
                running = [claim.id for _, claim in list(self._running.values())]
                if running:
                    await self.store.extend(self.owner, running, self.settings.lease_s)
                if await self.store.reclaim_expired():
                    self._wake.set()
            except Exception:
                log.exception("lease housekeeping failed; trying again")

    async def _drain(self) -> None:
        if not self._running:
            return
        tasks = [task for task, _ in self._running.values()]
        _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_s)
        cut_short = [claim for task, claim in list(self._running.values()) if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        released = await self.store.release(cut_short)
        log.info("shutdown: %d finished, %d released", len(tasks) - len(pending), released)


# The metric says `waiting`, as the outbox status of a command told to wait does.
_METRIC_OUTCOMES: dict[type[Outcome], str] = {
    Done: "done",
    Retry: "retry",
    Wait: "waiting",
    Dead: "dead",
}


def _name(outcome: Outcome) -> str:
    return {Done: "done", Retry: "retry", Wait: "wait", Dead: "dead"}[type(outcome)]
