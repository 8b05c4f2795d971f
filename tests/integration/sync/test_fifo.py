"""Per-entity FIFO under concurrent workers, on SQLite and PostgreSQL.

The real outbox and dispatcher run a recording registry instead of the UCaaS executors:
each command sleeps a random few milliseconds, some ask to be retried once (so an earlier
command comes back while later ones wait), and every successful run is written down. For
random interleavings of 5-20 entities accepted over several events, each entity's commands
must have run exactly once each, one at a time, in the order they were accepted, while
different entities ran side by side.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

from connectors.ucaas import UCaaSClient
from service.domain.commands import Command, Kind, Payload
from service.executors import Executors
from service.executors.base import Accounts, Exec, Registry
from service.outbox.dispatcher import Dispatcher
from service.outbox.outcomes import Done, Outcome, Retry
from service.outbox.store import OutboxStore
from service.outbox.unit_of_work import EventRecord, UnitOfWork
from service.settings import DispatcherSettings

# Two command kinds share the recording executor, so a claim batch mixes kinds.
KINDS = (Kind.UPDATE_USER, Kind.SUSPEND_USER)


class Step(Payload):
    entity: str
    seq: int


@dataclass
class Recorder:
    """What the executors saw: successful runs in order, and who was in flight when."""

    rng: random.Random
    retry_once: set[tuple[str, int]]
    executed: list[tuple[str, int]] = field(default_factory=list)
    attempts: Counter[tuple[str, int]] = field(default_factory=Counter)
    active: Counter[str] = field(default_factory=Counter)
    same_entity_overlaps: list[tuple[str, int]] = field(default_factory=list)
    most_entities_in_flight: int = 0

    async def run(self, ctx: Exec, step: Step) -> Outcome:
        key = (step.entity, step.seq)
        assert ctx.claim.entity == step.entity
        self.attempts[key] += 1
        if self.active[step.entity]:
            self.same_entity_overlaps.append(key)
        self.active[step.entity] += 1
        self.most_entities_in_flight = max(
            self.most_entities_in_flight, sum(1 for n in self.active.values() if n)
        )
        try:
            await asyncio.sleep(self.rng.uniform(0.0, 0.02))
            if key in self.retry_once and self.attempts[key] == 1:
                delay = self.rng.choice((0.0, 0.0, 0.01, 0.03))
                return Retry("test", "once more", delay, ambiguous=False)
            self.executed.append(key)
            return Done()
        finally:
            self.active[step.entity] -= 1

    def registry(self) -> Registry:
        return {kind.value: (Step, self.run) for kind in KINDS}


@dataclass(frozen=True)
class Scenario:
    events: list[list[Command]]
    order: dict[str, list[int]]  # each entity's seqs in accepted order
    retry_once: set[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(len(e) for e in self.events)


def scenario(rng: random.Random) -> Scenario:
    """5-20 entities with 1-8 commands each, interleaved at random, cut into 2-6 events."""
    entities = [f"user:T{rng.randint(1, 3)}:E{n:02d}" for n in range(rng.randint(5, 20))]
    pending = {e: rng.randint(1, 8) for e in entities}
    seqs: dict[str, int] = defaultdict(int)
    stream: list[Command] = []
    while pending:
        entity = rng.choice(sorted(pending))
        seq = seqs[entity]
        seqs[entity] += 1
        pending[entity] -= 1
        if not pending[entity]:
            del pending[entity]
        tenant = entity.split(":")[1]
        stream.append(Command(rng.choice(KINDS), entity, Step(entity=entity, seq=seq), tenant))
    cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randint(1, 5))))
    events = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    order = {e: list(range(n)) for e, n in seqs.items()}
    keys = [(c.entity, c.payload.seq) for c in stream]  # type: ignore[attr-defined]
    retry_once = set(rng.sample(keys, len(keys) // 4))
    return Scenario(events, order, retry_once)


SETTINGS = DispatcherSettings(
    workers=8, batch=8, poll_s=0.02, lease_s=30.0, backoff_base_s=0.01, shutdown_grace_s=2.0
)


async def run_scenario(
    store: OutboxStore, nowhere: UCaaSClient, seed: int, dispatchers: int
) -> tuple[Scenario, Recorder]:
    rng = random.Random(seed)
    plan = scenario(rng)
    recorder = Recorder(random.Random(seed + 1), plan.retry_once)
    executors = Executors(Accounts(nowhere, store), recorder.registry())
    settings = SETTINGS.model_copy(update={"workers": SETTINGS.workers // dispatchers})
    fleet = [Dispatcher(store, executors, settings, owner=f"d{n}") for n in range(dispatchers)]

    def wake_all() -> None:
        for d in fleet:
            d.wake()

    uow = UnitOfWork(store.engine, on_commit=wake_all)
    # The first event is waiting when the dispatchers start; the others arrive while
    # they work, so later commands land behind earlier ones that are in flight.
    assert await uow.accept(EventRecord("fifo", f"{seed}-0", "test"), plan.events[0])
    tasks = [asyncio.create_task(d.run()) for d in fleet]
    try:
        for n, commands in enumerate(plan.events[1:], start=1):
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            assert await uow.accept(EventRecord("fifo", f"{seed}-{n}", "test"), commands)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while (await store.counts()).get("done", 0) < plan.total:
            assert loop.time() < deadline, await store.counts()
            await asyncio.sleep(0.02)
    finally:
        for d in fleet:
            await d.stop()
        await asyncio.gather(*tasks)
    return plan, recorder


@pytest.mark.parametrize("dispatchers", [1, 2], ids=["one-dispatcher", "two-dispatchers"])
@pytest.mark.parametrize("seed", [11, 23, 37])
async def test_each_entity_runs_in_accepted_order_once(
    store: OutboxStore, nowhere: UCaaSClient, seed: int, dispatchers: int
) -> None:
    plan, seen = await run_scenario(store, nowhere, seed, dispatchers)

    assert await store.counts() == {"done": plan.total}
    # Exactly once: no successful run twice, none missing.
    assert len(seen.executed) == len(set(seen.executed)) == plan.total
    # In order, per entity.
    ran: dict[str, list[int]] = defaultdict(list)
    for entity, seq in seen.executed:
        ran[entity].append(seq)
    assert ran == plan.order
    # One at a time per entity; and a retried command held its followers back.
    assert seen.same_entity_overlaps == []
    # Every attempt was claimed once: one run each, two for those retried once.
    expected = {k: 2 if k in plan.retry_once else 1 for e in plan.order for k in _keys(e, plan)}
    assert dict(seen.attempts) == expected
    rows = await store.rows(limit=1000)
    assert {(r.entity, r.payload["seq"]): r.attempts for r in rows} == expected
    # ...and different entities did run at the same time.
    assert seen.most_entities_in_flight >= 2


def _keys(entity: str, plan: Scenario) -> list[tuple[str, int]]:
    return [(entity, seq) for seq in plan.order[entity]]
