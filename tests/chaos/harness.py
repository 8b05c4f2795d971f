"""Running a chaos scenario: the broker, the sandbox with its faults on, feed servers,
`ucaas-sync run` processes killed at random, and the final check against the oracle.

The events go out over `publish_s` seconds in their scenario order; each feed's next
version is served only once the service has taken the previous one (its ETag is in the
feeds table), so the oracle knows every version was applied. The end: every event id in
the inbox once, the outbox all done (nothing dead or held), no dead letter, every feed
at its last version; then UCaaS's state is compared with what the events ask for. The
cancels of an emptied feed are held for approval, which the run never gives: they are
the only rows not done (or dropped as moot, when the feed was restored), as many as the
oracle expects held.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import sqlalchemy as sa

from service.app.bootstrap import CRASH_AFTER_CALLS
from service.devtools.local_broker import Topics, read_all, structured
from service.devtools.service_processes import MOVING, DispatchProcess, Outbox
from tests.chaos.scenario import SOURCES, Scenario
from tests.support.feeds import FeedServer
from tests.support.kafka import EventProducer
from tests.support.oracle import Comparison, Oracle, Policy, Rule, compare
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import Processes

# Faults for the whole run: 10% 503, 2% dropped connections (half before the API acts,
# half after: done, answer lost), a rate limit answered with 429 and Retry-After, jitter.
FAULTS = {
    "error_rate": 0.10,
    "error_status": 503,
    "drop_rate": 0.02,
    "drop_phase": "random",
    "rate_limit": 250,
    "retry_after_s": 1,
    "latency_ms": 1,
    "jitter_ms": 15,
}
POLICY = Policy(default=("vc",), rules=(Rule(apps=("vc", "wb"), department="sales"),))


def service_env(
    base: dict[str, str], kafka: str, topics: Topics, policy_file: Path
) -> dict[str, str]:
    env = dict(base)
    env.update(topics.env())
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        UCAAS_SYNC_KAFKA_SESSION_TIMEOUT_MS="6000",  # Tansu's least: a dead member goes soon
        UCAAS_SYNC_INTAKE_GUARD_THRESHOLD="1000000",  # the guard has tests of its own
        UCAAS_SYNC_INTAKE_LICENCE_POLICY=str(policy_file),
        UCAAS_SYNC_CALENDAR_ALLOW_PRIVATE_ADDRESSES="true",  # the feeds are on loopback
        UCAAS_SYNC_CALENDAR_INTERVAL_S="1",
        UCAAS_SYNC_CALENDAR_TIMEOUT_S="5",
        # Shorter intake transactions: SQLite has one writer, and the dispatcher's outcomes
        # wait behind a batch (its leases are 2 s here).
        UCAAS_SYNC_KAFKA_MAX_RECORDS="100",
    )
    return env


@dataclass
class ChaosRun:
    scenario: Scenario
    kafka: str
    topics: Topics
    env: dict[str, str]
    sandbox: SandboxAdmin
    processes: Processes
    outbox: Outbox
    feeds: dict[str, FeedServer]
    rng: random.Random
    kills: list[str] = field(default_factory=list)
    cancels_held_moot: tuple[int, int] = (0, 0)  # found by check()
    published: asyncio.Event = field(default_factory=asyncio.Event)

    # -- the events ----------------------------------------------------------------------------
    async def publish(self, publish_s: float) -> None:
        """Every event at its point of the run, and each feed's versions in turn."""
        topic = {"hr": self.topics.hr, "crm": self.topics.crm, "calendar": self.topics.calendar}
        began = time.monotonic()
        versions = [asyncio.create_task(self._versions(f, publish_s)) for f in self.feeds]
        async with EventProducer(self.kafka) as producer:
            pending: list[asyncio.Future[object]] = []
            for event in self.scenario.events:
                delay = began + event.at * publish_s - time.monotonic()
                if delay > 0:
                    await asyncio.gather(*pending)
                    pending = []
                    await asyncio.sleep(delay)
                value, headers = structured(event.body)
                key = str(event.body["subject"]).encode()
                sent = await producer.producer.send(
                    topic[event.topic], value, key=key, headers=headers
                )
                pending.append(sent)
            await asyncio.gather(*pending)
        self.published.set()
        await asyncio.gather(*versions)

    async def _versions(self, feed_id: str, publish_s: float) -> None:
        plan = next(p for p in self.scenario.feeds if p.feed_id == feed_id)
        server = self.feeds[feed_id]
        began = time.monotonic()
        for version in range(1, len(plan.versions)):
            await self.applied(feed_id, timeout_s=120)
            at = began + publish_s * 0.8 * version / len(plan.versions)
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            server.publish(plan.body(version))

    def feed_etags(self) -> dict[str, str | None]:
        with self.outbox.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT feed_id, etag FROM calendar_feed"))
            return {str(feed_id): etag for feed_id, etag in rows}

    def behind(self) -> list[str]:
        """The feeds whose current version the service has not taken yet."""
        etags = self.feed_etags()
        return [f for f, server in self.feeds.items() if etags.get(f) != server._etag]

    async def applied(self, feed_id: str, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while feed_id in await asyncio.to_thread(self.behind):
            assert time.monotonic() < deadline, f"feed {feed_id} not taken in {timeout_s} s"
            await asyncio.sleep(0.2)

    # -- the processes -------------------------------------------------------------------------
    def start(self, name: str, crash_after: int | None = None) -> DispatchProcess:
        env = dict(self.env)
        if crash_after is not None:
            env[CRASH_AFTER_CALLS] = str(crash_after)
        return self.processes.start(name, env, ("run",))

    async def kill_at_random(self, process: DispatchProcess, low_s: float, high_s: float) -> None:
        """SIGKILL after a random time (from the seeded generator) since it started."""
        await asyncio.to_thread(process.wait_started, 60.0)
        await asyncio.sleep(self.rng.uniform(low_s, high_s))
        assert process.returncode is None, f"{process.name} died by itself\n{process.tail()}"
        process.process.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(process.wait, 10.0) == -signal.SIGKILL
        self.kills.append(f"{process.name}: SIGKILL at random")

    async def crash_after_writes(
        self, process: DispatchProcess, writes: int, limit_s: float
    ) -> None:
        """The process kills itself after `writes` UCaaS writes (between a call and the
        commit of its outcome); SIGKILL from here if it has not within `limit_s`."""
        with suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.process.wait, limit_s)
        if process.returncode is None:
            process.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait, 10.0)
            self.kills.append(f"{process.name}: SIGKILL (no {writes} writes in {limit_s} s)")
            return
        assert process.returncode == -signal.SIGKILL, process.tail()
        self.kills.append(f"{process.name}: killed itself after {writes} UCaaS writes")

    # -- the end -------------------------------------------------------------------------------
    def progress(self) -> tuple[set[tuple[str, str]], dict[str, int]]:
        sources = tuple(SOURCES.values())
        with self.outbox.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sa.column("source"), sa.column("event_id"))
                .select_from(sa.table("inbox"))
                .where(sa.column("source").in_(sources))
            )
            taken = {(str(s), str(i)) for s, i in rows}
        return taken, self.outbox.counts()

    async def settle(self, running: Sequence[DispatchProcess], timeout_s: float) -> None:
        await self.published.wait()
        want = self.scenario.unique_ids
        deadline = time.monotonic() + timeout_s
        taken: set[tuple[str, str]] = set()
        counts: dict[str, int] = {}
        behind: list[str] = []
        while time.monotonic() < deadline:
            taken, counts = await asyncio.to_thread(self.progress)
            behind = await asyncio.to_thread(self.behind)
            relayed = not await asyncio.to_thread(self.unpublished)
            if taken >= want and not behind and relayed and not any(counts.get(s) for s in MOVING):
                return
            for process in running:
                assert process.returncode is None, process.tail()
            await asyncio.sleep(0.25)
        raise AssertionError(
            f"not settled in {timeout_s} s: {len(taken & want)}/{len(want)} events taken, "
            f"outbox {counts}, feeds behind {behind}, results not published: "
            f"{self.unpublished()}, not done: {self.outbox.stuck()}\n" + self.processes.tails()
        )

    def check(self) -> Comparison:
        """The service's own records, then UCaaS against the oracle."""
        taken, counts = self.progress()
        want = self.scenario.unique_ids
        assert taken == want, f"missing {len(want - taken)}, unknown {len(taken - want)}"
        oracle = Oracle(POLICY).fold(e.body for e in self.scenario.events)
        for plan in self.scenario.feeds:
            oracle.calendar(plan.organiser, [plan.meetings(v) for v in range(len(plan.versions))])
        # Done, but the cancels of emptied feeds: held for approval (never given), or
        # dropped as moot once their feed was restored.
        assert set(counts) <= {"done", "held", "dropped"}, f"outbox {counts}: {self.outbox.stuck()}"
        held = self.not_done("held")
        assert all(k == "cancel_meeting" and r.startswith("approval: feed ") for k, r in held)
        assert len(held) == sum(sum(c.values()) for c in oracle.held.values()) > 0, held
        dropped = self.not_done("dropped")
        assert all(k == "cancel_meeting" and r.startswith("moot: ") for k, r in dropped)
        restored = [p for p in self.scenario.feeds if p.versions[-1]]
        assert bool(dropped) == bool(restored), dropped
        self.cancels_held_moot = (len(held), len(dropped))
        with self.outbox.engine.connect() as conn:
            dead_letters = conn.scalar(sa.text("SELECT count(*) FROM dead_letter"))
        assert dead_letters == 0, f"{dead_letters} valid events dead-lettered"
        self.sandbox.faults(reset=True)
        return compare(oracle, self.sandbox.state())

    def unpublished(self) -> int:
        with self.outbox.engine.connect() as conn:
            query = "SELECT count(*) FROM result WHERE published_at IS NULL"
            return int(conn.scalar(sa.text(query)) or 0)

    async def check_results(self) -> str:
        """The results topic against the outbox: per command done one distinct result
        id of its kind's type, per command held (or dropped after a hold) one
        `ucaas.command.held`, and no other; repeats only of an id already seen."""
        records = [orjson.loads(v) for v in await read_all(self.kafka, [self.topics.results])]
        ids: dict[tuple[int, bool], set[str]] = {}
        for event in records:
            key = (int(event["commandid"]), event["type"] == "ucaas.command.held")
            ids.setdefault(key, set()).add(str(event["id"]))
        with self.outbox.engine.connect() as conn:
            status = dict(conn.execute(sa.text("SELECT id, status FROM outbox")).all())
        problems = [f"result for unknown command {c}" for c, _ in ids if c not in status]
        for command, state in status.items():
            done, held = ids.get((command, False), set()), ids.get((command, True), set())
            want = (1, 0) if state == "done" else (0, 1)
            if (len(done), len(held)) != want:
                problems.append(f"command {command} ({state}): {len(done)}+{len(held)} ids")
        assert not problems, f"{len(problems)} problems: {problems[:20]}"
        by_type = Counter(str(e["type"]) for e in records)
        distinct = sum(len(found) for found in ids.values())
        return (
            f"{distinct:,} result ids for {len(status):,} commands, "
            f"{len(records) - distinct} re-sent; {len(by_type)} types"
        )

    def not_done(self, status: str) -> list[tuple[str, str]]:
        """The (kind, hold reason) of the outbox rows in this status."""
        with self.outbox.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT kind, hold_reason FROM outbox WHERE status = :s ORDER BY id"),
                {"s": status},
            )
            return [(str(kind), str(reason)) for kind, reason in rows]

    def close(self) -> None:
        self.processes.close()
        for server in self.feeds.values():
            with suppress(Exception):
                server.close()
        self.outbox.close()
