"""Leases and repair, on SQLite and PostgreSQL: a dead worker's rows come back in doubt, a
lost lease records nothing, a shutdown gives its rows back, and a dead command holds its
entity's later commands until an operator retries or drops it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from connectors.ucaas import UCaaSClient
from service.domain.commands import Command, Kind, Payload
from service.executors import Executors
from service.executors.base import Accounts, Exec, Registry
from service.outbox.claims import Claim
from service.outbox.dispatcher import Dispatcher
from service.outbox.outcomes import Dead, Done, MappingKey, MappingWrite, Outcome, Retry, Wait
from service.outbox.store import OutboxStore
from service.outbox.tables import OutboxRow
from service.outbox.unit_of_work import EventRecord, UnitOfWork
from service.settings import DispatcherSettings

_events = itertools.count(1)


class Step(Payload):
    entity: str
    seq: int


def step(entity: str, seq: int, kind: Kind = Kind.UPDATE_USER) -> Command:
    return Command(kind, entity, Step(entity=entity, seq=seq), tenant="T1")


async def accept(store: OutboxStore, commands: Sequence[Command]) -> list[int]:
    """Accept one event; the new rows' ids, in order."""
    before = {r.id for r in await store.rows(limit=10_000)}
    uow = UnitOfWork(store.engine)
    assert await uow.accept(EventRecord("leases", f"e{next(_events)}", "test"), commands)
    return sorted(r.id for r in await store.rows(limit=10_000) if r.id not in before)  # type: ignore[misc]


async def rows_by_id(store: OutboxStore) -> dict[int, OutboxRow]:
    return {r.id: r for r in await store.rows(limit=10_000)}  # type: ignore[misc]


def ids(claims: Sequence[Claim]) -> list[int]:
    return [c.id for c in claims]


# -- (a) a dead owner's claims come back ------------------------------------------------------
async def test_expired_claims_return_pending_in_doubt_and_another_owner_takes_them(
    store: OutboxStore,
) -> None:
    made = await accept(store, [step("user:T1:A", 0), step("user:T1:B", 0)])
    crashed = await store.claim("crashed", limit=10, lease_s=0.05)
    assert ids(crashed) == made
    assert all(not c.in_doubt and c.attempts == 1 for c in crashed)
    assert await store.claim("other", limit=10, lease_s=30) == []  # leased: not claimable

    await asyncio.sleep(0.15)
    assert await store.reclaim_expired() == 2
    rows = await rows_by_id(store)
    for row_id in made:
        row = rows[row_id]
        assert row.status == "pending"
        assert row.in_doubt is True
        assert row.lease_owner is None
        assert row.lease_expires_at is None
        assert row.attempts == 1  # the lost attempt may have run: it counts

    taken = await store.claim("other", limit=10, lease_s=30)
    assert ids(taken) == made
    assert all(c.owner == "other" and c.in_doubt and c.attempts == 2 for c in taken)
    assert await store.reclaim_expired() == 0  # a live lease is left alone


async def test_unexpired_claims_are_not_reclaimed(store: OutboxStore) -> None:
    made = await accept(store, [step("user:T1:A", 0)])
    await store.claim("alive", limit=10, lease_s=30)
    assert await store.reclaim_expired() == 0
    assert (await rows_by_id(store))[made[0]].status == "in_flight"


async def test_a_live_dispatcher_finishes_a_crashed_owners_rows_looking_first(
    store: OutboxStore, nowhere: UCaaSClient
) -> None:
    """The dispatcher's own reclaim loop brings the rows back; its executor sees they are
    in doubt (look the object up before creating it again)."""
    made = await accept(store, [step("user:T1:A", 0), step("user:T1:A", 1), step("user:T1:B", 0)])
    assert len(await store.claim("crashed", limit=10, lease_s=0.1)) == 2  # A0 and B0
    seen: list[tuple[int, int, bool]] = []

    async def record(ctx: Exec, _: Step) -> Outcome:
        seen.append((ctx.claim.id, ctx.claim.attempts, ctx.lookup_first))
        return Done()

    registry: Registry = {Kind.UPDATE_USER.value: (Step, record)}
    settings = DispatcherSettings(workers=4, poll_s=0.02, lease_s=0.5, shutdown_grace_s=1.0)
    dispatcher = Dispatcher(
        store, Executors(Accounts(nowhere, store), registry), settings, owner="live"
    )
    task = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(500):
            if (await store.counts()).get("done") == 3:
                break
            await asyncio.sleep(0.02)
    finally:
        await dispatcher.stop()
        await task

    assert await store.counts() == {"done": 3}
    a0, a1, b0 = made
    assert sorted(seen) == [(a0, 2, True), (a1, 1, False), (b0, 2, True)]
    assert [s[0] for s in seen].index(a0) < [s[0] for s in seen].index(a1)
    assert {r.lease_owner for r in (await rows_by_id(store)).values()} == {"live"}


# -- (b) a lost lease records nothing ---------------------------------------------------------
async def test_finish_after_the_lease_was_lost_changes_nothing(store: OutboxStore) -> None:
    made = await accept(store, [step("user:T1:A", 0), step("user:T1:A", 1)])
    [late] = await store.claim("slow", limit=10, lease_s=0.05)
    await asyncio.sleep(0.15)
    assert await store.reclaim_expired() == 1
    before = await rows_by_id(store)

    # Lost while pending: nobody holds the row.
    key = MappingKey("user", "T1", "A")
    done = Done(mappings=(MappingWrite(key, "u-1"),))
    assert await store.finish(late, done) is False
    assert await store.rows() == list(before.values())
    assert await store.mapping(key) is None

    # Lost to another owner: theirs stays in flight, untouched.
    [current] = await store.claim("fast", limit=10, lease_s=30)
    assert current.id == late.id == made[0]
    taken = await rows_by_id(store)
    assert await store.finish(late, done) is False
    assert await store.finish(late, Dead("400", "bad")) is False
    assert await store.finish(late, Retry("503", "x", 0.0, ambiguous=True)) is False
    assert await rows_by_id(store) == taken
    assert taken[made[0]].status == "in_flight"
    assert taken[made[0]].lease_owner == "fast"
    assert taken[made[1]].status == "pending"  # the dead outcome did not hold it
    assert await store.mapping(key) is None

    # The current owner records normally.
    assert await store.finish(current, done) is True
    assert (await store.mapping(key)) is not None
    assert (await rows_by_id(store))[made[0]].status == "done"


async def test_finish_twice_records_once(store: OutboxStore) -> None:
    await accept(store, [step("user:T1:A", 0)])
    [claim] = await store.claim("w", limit=10, lease_s=30)
    assert await store.finish(claim, Done()) is True
    assert await store.finish(claim, Retry("503", "x", 0.0, ambiguous=True)) is False
    assert await store.counts() == {"done": 1}


# -- (c) graceful shutdown --------------------------------------------------------------------
async def test_shutdown_gives_cut_short_rows_back_uncounted_and_in_doubt(
    store: OutboxStore, nowhere: UCaaSClient
) -> None:
    stuck_a, stuck_b, quick = await accept(
        store,
        [
            step("user:T1:A", 0),
            step("user:T1:B", 0),
            step("user:T1:Q", 0, kind=Kind.SUSPEND_USER),
        ],
    )
    # A failed once already: its one counted attempt must survive the shutdown.
    [first] = await store.claim("earlier", limit=1, lease_s=30)
    assert first.id == stuck_a
    assert await store.finish(first, Retry("503", "x", 0.0, ambiguous=False)) is True

    never = asyncio.Event()
    finish_quick = asyncio.Event()
    started: list[int] = []
    cancelled: list[int] = []

    async def block(ctx: Exec, _: Step) -> Outcome:
        started.append(ctx.claim.id)
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(ctx.claim.id)
            raise
        return Done()  # pragma: no cover

    async def finish_in_grace(ctx: Exec, _: Step) -> Outcome:
        started.append(ctx.claim.id)
        await finish_quick.wait()
        return Done()

    registry: Registry = {
        Kind.UPDATE_USER.value: (Step, block),
        Kind.SUSPEND_USER.value: (Step, finish_in_grace),
    }
    settings = DispatcherSettings(workers=4, poll_s=0.02, lease_s=30, shutdown_grace_s=0.3)
    dispatcher = Dispatcher(
        store, Executors(Accounts(nowhere, store), registry), settings, owner="d"
    )
    task = asyncio.create_task(dispatcher.run())
    for _ in range(200):
        if len(started) == 3:
            break
        await asyncio.sleep(0.01)
    assert sorted(started) == [stuck_a, stuck_b, quick]
    assert (await store.counts()).get("in_flight") == 3

    loop = asyncio.get_running_loop()
    began = loop.time()
    await dispatcher.stop()
    finish_quick.set()  # this one ends within the grace period
    await asyncio.wait_for(task, timeout=5.0)
    took = loop.time() - began

    assert 0.25 <= took < 3.0  # waited out the grace, then cut short
    assert sorted(cancelled) == [stuck_a, stuck_b]
    assert dispatcher.in_flight == 0
    rows = await rows_by_id(store)
    assert "in_flight" not in {r.status for r in rows.values()}
    assert rows[quick].status == "done"
    for row_id, attempts in ((stuck_a, 1), (stuck_b, 0)):
        row = rows[row_id]
        assert row.status == "pending"
        assert row.attempts == attempts  # the cut-short attempt does not count
        assert row.in_doubt is True
        assert row.lease_owner is None
        assert row.lease_expires_at is None
    # Given back, not parked: they are claimable at once.
    assert sorted(ids(await store.claim("next", limit=10, lease_s=30))) == [stuck_a, stuck_b]


async def test_release_only_gives_back_rows_still_held(store: OutboxStore) -> None:
    await accept(store, [step("user:T1:A", 0), step("user:T1:B", 0)])
    a, b = await store.claim("w", limit=10, lease_s=30)
    assert await store.finish(a, Done()) is True
    assert await store.release([a, b]) == 1
    rows = await rows_by_id(store)
    assert rows[a.id].status == "done"
    assert rows[a.id].attempts == 1
    assert rows[b.id].status == "pending"
    assert rows[b.id].attempts == 0


# -- (d) a dead command holds its entity ------------------------------------------------------
async def park(store: OutboxStore, expected_id: int, owner: str = "w") -> None:
    claims = {c.id: c for c in await store.claim(owner, limit=50, lease_s=30)}
    assert expected_id in claims
    assert await store.finish(claims[expected_id], Dead("400", "invalid e-mail")) is True
    for other in claims.values():
        if other.id != expected_id:
            await store.release([other])


async def test_a_dead_command_holds_its_entitys_later_commands(store: OutboxStore) -> None:
    e1, e2, e3, other = await accept(
        store,
        [step("user:T1:E", 0), step("user:T1:E", 1), step("user:T1:E", 2), step("user:T1:F", 0)],
    )
    await park(store, e1)
    rows = await rows_by_id(store)
    assert rows[e1].status == "dead"
    assert rows[e1].last_error_code == "400"
    for follower in (e2, e3):
        assert rows[follower].status == "held"
        assert rows[follower].hold_reason == f"blocked by #{e1}"
    assert rows[other].status == "pending"  # other entities carry on
    assert ids(await store.claim("w", limit=50, lease_s=30)) == [other]

    # A command accepted later for the same entity is held behind the dead one too.
    [e4] = await accept(store, [step("user:T1:E", 3)])
    row = (await rows_by_id(store))[e4]
    assert row.status == "held"
    assert row.hold_reason == f"blocked by #{e1}"
    # ...but not one for another entity.
    [g1] = await accept(store, [step("user:T1:G", 0)])
    assert (await rows_by_id(store))[g1].status == "pending"


async def test_retrying_the_dead_command_queues_its_followers_behind_it_in_order(
    store: OutboxStore,
) -> None:
    e1, e2, e3 = await accept(
        store, [step("user:T1:E", 0), step("user:T1:E", 1), step("user:T1:E", 2)]
    )
    await park(store, e1)
    assert await store.retry(e2) is False  # only a dead command can be retried
    assert await store.retry(e1) is True

    rows = await rows_by_id(store)
    assert rows[e1].status == "pending"
    assert rows[e1].attempts == 0  # a fresh budget
    # No longer blocked: queued behind e1 (held, so claims do not step over them).
    assert [(rows[e].status, rows[e].hold_reason) for e in (e2, e3)] == [
        ("held", f"queued behind #{e1}")
    ] * 2
    [again] = await store.claim("w", limit=50, lease_s=30)
    assert again.id == e1
    assert await store.claim("w", limit=50, lease_s=30) == []

    # Dying again holds them again.
    assert await store.finish(again, Dead("400", "still invalid")) is True
    rows = await rows_by_id(store)
    assert [(rows[e].status, rows[e].hold_reason) for e in (e2, e3)] == [
        ("held", f"blocked by #{e1}")
    ] * 2
    assert await store.retry(e1) is True
    [again] = await store.claim("w", limit=50, lease_s=30)
    assert await store.finish(again, Done()) is True
    for expected in (e2, e3):
        [next_claim] = await store.claim("w", limit=50, lease_s=30)
        assert next_claim.id == expected
        assert await store.finish(next_claim, Done()) is True
    assert await store.counts() == {"done": 3}


async def test_dropping_the_dead_command_lets_its_followers_run(store: OutboxStore) -> None:
    e1, e2, e3 = await accept(
        store, [step("user:T1:E", 0), step("user:T1:E", 1), step("user:T1:E", 2)]
    )
    await park(store, e1)
    assert await store.drop(e1) is True
    rows = await rows_by_id(store)
    assert rows[e1].status == "dropped"
    assert rows[e1].done_at is not None
    assert [rows[e2].status, rows[e3].status] == ["pending", "pending"]

    [claim] = await store.claim("w", limit=50, lease_s=30)
    assert claim.id == e2  # the dropped command no longer blocks
    assert await store.drop(e1) is False  # already dropped
    assert await store.finish(claim, Done()) is True
    assert await store.drop(e2) is False  # done is final

    # A new command behind a dropped one is not held.
    [e4] = await accept(store, [step("user:T1:E", 3)])
    assert (await rows_by_id(store))[e4].status == "pending"


async def test_dropping_a_held_follower_keeps_the_rest_held(store: OutboxStore) -> None:
    e1, e2, e3 = await accept(
        store, [step("user:T1:E", 0), step("user:T1:E", 1), step("user:T1:E", 2)]
    )
    await park(store, e1)
    assert await store.drop(e2) is True
    rows = await rows_by_id(store)
    assert rows[e2].status == "dropped"
    assert rows[e3].status == "held"
    assert rows[e3].hold_reason == f"blocked by #{e1}"
    assert await store.retry(e1) is True
    assert ids(await store.claim("w", limit=50, lease_s=30)) == [e1]


async def test_a_slow_command_keeps_its_lease_and_runs_once(
    store: OutboxStore, nowhere: UCaaSClient
) -> None:
    """A command that outlives `lease_s` is renewed by its dispatcher, not reclaimed by
    another and run a second time."""
    [slow] = await accept(store, [step("user:T1:S", 0)])
    runs: list[int] = []

    async def takes_long(ctx: Exec, _: Step) -> Outcome:
        runs.append(ctx.claim.id)
        await asyncio.sleep(1.5)  # three lease lengths
        return Done()

    registry: Registry = {Kind.UPDATE_USER.value: (Step, takes_long)}
    settings = DispatcherSettings(workers=2, poll_s=0.02, lease_s=0.5)
    first = Dispatcher(store, Executors(Accounts(nowhere, store), registry), settings, owner="one")
    rival = Dispatcher(store, Executors(Accounts(nowhere, store), registry), settings, owner="two")
    tasks = [asyncio.create_task(d.run()) for d in (first, rival)]
    try:
        for _ in range(300):
            if (await rows_by_id(store))[slow].status == "done":
                break
            await asyncio.sleep(0.02)
    finally:
        for d in (first, rival):
            await d.stop()
        await asyncio.gather(*tasks)
    row = (await rows_by_id(store))[slow]
    assert row.status == "done"
    assert runs == [slow]  # once: the rival never got it
    assert row.attempts == 1
    assert row.in_doubt is False


async def test_a_wait_starts_the_failure_count_again(store: OutboxStore) -> None:
    """A command that waits for a prerequisite and calls the API at each re-check (an
    organiser looked up by e-mail) meets the odd 5xx on the way; spread over the wait,
    those must not add up to `max_attempts` (found by tests/chaos: at 10% 503, meetings
    whose organiser was not created yet were parked after ~100 re-checks)."""
    [made] = await accept(store, [step("user:T1:W", 0)])
    for _ in range(3):  # three counted failures, then the API answers "not yet"
        [claim] = await store.claim("me", limit=1, lease_s=30)
        assert await store.finish(claim, Retry("503", "flaky", 0.0, ambiguous=True))
    assert (await rows_by_id(store))[made].attempts == 3
    [claim] = await store.claim("me", limit=1, lease_s=30)
    assert await store.finish(claim, Wait("organiser not created yet", 0.0))
    row = (await rows_by_id(store))[made]
    assert (row.status, row.attempts) == ("waiting", 0)
    assert row.in_doubt  # what the failed attempts may have done is still to be looked up
