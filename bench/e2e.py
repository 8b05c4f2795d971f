"""End to end: mixed HR and CRM events published to Kafka, consumed, dispatched and
confirmed in the UCaaS sandbox, at 0 ms and at 50 ms injected API latency.

The service runs as an operator runs it: `ucaas-sync run --no-poller` (consumers and
dispatcher, the admin API on a free port) in a process of its own, configured by the
environment only, on a fresh database (PostgreSQL when one answers, as in production;
`--database sqlite` for SQLite) and fresh topics, so nothing is replayed. The broker is
`KAFKA_BOOTSTRAP_SERVERS` if set, else the local one; the sandbox is its own process.
This process only publishes, polls two counts and reads the database afterwards: a
service in this process would share its event loop and GIL with the publisher, which
no deployment does.

Per latency:
1. Onboarding: each tenant's company and subscription are published and confirmed first
   (untimed; it also makes sure the consumer group has its partitions).
2. Burst: N mixed events (bench/e2e_mix.py) published at once. Events/s = N / (first
   publish -> last UCaaS call completed). An event is confirmed when every command it made
   is done in the outbox and each one's UCaaS calls have completed (call log: start +
   latency); its end-to-end latency is that moment minus its publish time. Under a burst
   this is mostly time queued behind the backlog: reported, but as `burst_e2e_*`.
3. Paced: more events of the same mix at half the burst's rate for a few seconds: the
   end-to-end latency below saturation (`e2e_p50_ms`, `e2e_p99_ms`).
4. The sandbox's own capacity for the same calls: the burst's commands as direct calls
   from a concurrent load with as many callers as the dispatcher has workers, no Kafka,
   no outbox (bench/e2e_direct.py), on a reset sandbox with the same latency.
5. A naive baseline on the same topics, sandbox and latency: one consumer, one record at
   a time, its calls in turn, a commit after each (bench/e2e_direct.py); on a prefix of
   the events (`baseline_events`, bounded in number and time), and the speed-up over it.

Where the time goes: the CPU each process used during the burst, in cores (service,
sandbox, broker, PostgreSQL, this process, and `other`: everything else on the machine,
which slows every figure; `load_average_at_start` says how busy it was), publish ->
outbox latencies beside the end-to-end ones, and what the broker alone adds
(`broker_floor_*`: publish -> a plain aiokafka consumer with the client's defaults; the
local Tansu broker answers an empty fetch only after fetch_max_wait_ms, 500 ms).

    .venv/bin/python bench/e2e.py [--events 20000] [--latency-ms 0,50] [--quick]
                                  [--database auto|sqlite|postgres] [--workers 64]

Prints progress, then one JSON line of figures last.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the project's root on sys.path, for `service` and `bench`.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench import e2e_direct, e2e_mix
from bench.support import (
    CpuMeter,
    Profiler,
    SandboxControl,
    database,
    database_kind,
    percentile,
)
from connectors.events.kafka_security import KafkaConnection
from service.devtools.demo.scenario import Event
from service.devtools.local_broker import LocalBroker, Topics, create_topics, structured
from service.devtools.local_sandbox import LocalSandbox
from service.devtools.service_processes import MOVING, DispatchProcess, Outbox
from service.outbox import db
from service.outbox.tables import CALLS, INBOX, OUTBOX
from service.outbox.vault import new_key
from service.settings import Settings

# the variables of the TLS and SASL settings (and their _FILE forms)
KAFKA_SECURITY_VARIABLES = (
    "UCAAS_SYNC_KAFKA_SECURITY_",
    "UCAAS_SYNC_KAFKA_SSL_",
    "UCAAS_SYNC_KAFKA_SASL_",
)


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Run:
    """One latency's service: its topics, database and processes."""

    bootstrap: KafkaConnection
    topics: Topics
    database_url: str
    outbox: Outbox
    processes: list[DispatchProcess]
    producer: AIOKafkaProducer
    published: dict[str, float]  # event id -> when it was handed to the producer (epoch s)

    async def publish(self, events: Sequence[Event], rate: float | None = None) -> float:
        """Send `events` (at `rate` a second, or as fast as possible); the seconds taken."""
        started = time.perf_counter()
        pending = []
        for n, event in enumerate(events):
            if rate:
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            value, headers = structured(event.body)
            topic = self.topics.hr if event.stream == "hr" else self.topics.crm
            self.published[event.body["id"]] = time.time()
            pending.append(
                await self.producer.send(
                    topic, value, key=str(event.body["subject"]).encode(), headers=headers
                )
            )
        await asyncio.gather(*pending)
        return time.perf_counter() - started

    async def settled(self, taken: int, label: str, timeout_s: float = 1800) -> dict[str, int]:
        """Until `taken` events are in the inbox and no command is still moving."""
        began = last = time.monotonic()
        while True:
            inbox, counts = await asyncio.to_thread(self._progress)
            if inbox >= taken and not any(counts.get(s) for s in MOVING):
                return counts
            for process in self.processes:
                if process.returncode is not None:
                    raise RuntimeError(f"the service stopped\n{process.tail()}")
            if time.monotonic() - began > timeout_s:
                raise RuntimeError(f"{label}: not settled in {timeout_s} s: {inbox}, {counts}")
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                say(
                    f"  {label}: {time.monotonic() - began:5.0f} s, {inbox}/{taken} events "
                    f"taken, commands {dict(sorted(counts.items()))}"
                )
            await asyncio.sleep(0.25)

    def _progress(self) -> tuple[int, dict[str, int]]:
        with self.outbox.engine.connect() as conn:
            inbox = int(conn.scalar(sa.select(sa.func.count()).select_from(INBOX)) or 0)
        return inbox, self.outbox.counts()

    def confirmed(self, ids: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
        """Event id -> when it was confirmed (epoch s): its last UCaaS call's end, or when
        it was taken if it made no call; and event id -> when it was taken (committed to
        the inbox and outbox)."""
        wanted = set(ids)
        done: dict[str, float] = {}
        taken: dict[str, float] = {}
        with self.outbox.engine.connect() as conn:
            calls = conn.execute(
                sa.select(OUTBOX.c.event_id, CALLS.c.at, CALLS.c.latency_ms).select_from(
                    OUTBOX.join(CALLS, CALLS.c.command_id == OUTBOX.c.id)
                )
            )
            for event_id, at, latency_ms in calls:
                if event_id in wanted:
                    end = at.timestamp() + latency_ms / 1000
                    done[event_id] = max(done.get(event_id, 0.0), end)
            inbox = conn.execute(sa.select(INBOX.c.event_id, INBOX.c.received_at))
            for event_id, received_at in inbox:
                if event_id in wanted:
                    taken[event_id] = received_at.timestamp()
                    done.setdefault(event_id, taken[event_id])
        return done, taken

    def commands_of(self, ids: Sequence[str]) -> int:
        wanted = set(ids)
        with self.outbox.engine.connect() as conn:
            rows = conn.execute(sa.select(OUTBOX.c.event_id))
            return sum(1 for (event_id,) in rows if event_id in wanted)


def service_env(
    args: argparse.Namespace, url: str, sandbox: LocalSandbox, run: Run
) -> dict[str, str]:
    """What an operator sets; the rest are the service's defaults."""
    env = {
        k: v
        for k, v in os.environ.items()
        # an external broker's TLS and SASL settings are the operator's too
        if not k.startswith("UCAAS_SYNC_") or k.startswith(KAFKA_SECURITY_VARIABLES)
    }
    env.update(run.topics.env())
    env.update(
        PYTHONUNBUFFERED="1",
        KAFKA_BOOTSTRAP_SERVERS=run.bootstrap.bootstrap,
        UCAAS_SYNC_DATABASE_URL=url,
        UCAAS_SYNC_SECRET_KEY=new_key(),
        UCAAS_SYNC_UCAAS_BASE_URL=sandbox.base_url,
        UCAAS_SYNC_ADMIN_PORT="0",
        UCAAS_SYNC_KAFKA_SESSION_TIMEOUT_MS="6000",
        UCAAS_SYNC_DISPATCH_WORKERS=str(args.workers),
        UCAAS_SYNC_DISPATCH_BATCH=str(args.workers),
        # A bulk of leavers is what the deprovisioning guard holds for a person: not here.
        UCAAS_SYNC_INTAKE_GUARD_THRESHOLD=str(10**9),
    )
    return env


@dataclass(frozen=True)
class Latencies:
    e2e_ms: list[float]  # publish -> confirmed
    intake_ms: list[float]  # publish -> taken into the outbox
    last: float  # the last confirmation (epoch s)


def latencies(run: Run, ids: Sequence[str]) -> Latencies:
    done, taken = run.confirmed(ids)
    missing = [i for i in ids if i not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} events not confirmed, e.g. {missing[:3]}")
    return Latencies(
        [(done[i] - run.published[i]) * 1000 for i in ids],
        [(taken[i] - run.published[i]) * 1000 for i in ids],
        max(done[i] for i in ids),
    )


def p50_p99(prefix: str, values: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": round(percentile(values, 50), 1),
        f"{prefix}_p99_ms": round(percentile(values, 99), 1),
    }


async def service_figures(
    args: argparse.Namespace,
    control: SandboxControl,
    broker: LocalBroker,
    mix: e2e_mix.Mix,
    pool: Sequence[Event],
    url: str,
    folder: Path,
) -> tuple[dict[str, Any], Topics]:
    topics = Topics.fresh("bench-e2e")
    await topics.create(broker.connection)
    if not url.startswith("sqlite"):
        await asyncio.to_thread(db.upgrade, url)
    producer = AIOKafkaProducer(
        **broker.connection.client_kwargs(), enable_idempotence=False, acks=1, linger_ms=5
    )
    await producer.start()
    run = Run(broker.connection, topics, url, Outbox(url), [], producer, {})
    env = service_env(args, url, control.sandbox, run)
    try:
        for n in range(args.processes):
            process = DispatchProcess.start(f"e2e-{n}", env, folder, ("run", "--no-poller"))
            run.processes.append(process)
            process.wait_started()
        await run.publish(mix.onboarding)
        await run.settled(len(mix.onboarding), "onboarding", timeout_s=120)
        say(f"  onboarding: {len(mix.onboarding)} events confirmed; the burst starts")

        meter = CpuMeter(
            {
                "service": [p.pid for p in run.processes],
                "sandbox": [control.sandbox.process.pid],
                "broker": [broker.process.pid] if broker.process else [],
                "postgres": "postgres",
                "bench": [os.getpid()],
            }
        )
        calls_before = control.calls_total()
        profiler = None
        if args.py_spy:  # one profile per latency: FILE.0ms, FILE.50ms
            profiler = Profiler.start(Path(f"{args.py_spy}.{folder.name}"), run.processes[0].pid)
        meter.start()
        began = time.perf_counter()
        publish_s = await run.publish(mix.events)
        taken = len(mix.onboarding) + len(mix.events)
        counts = await run.settled(taken, "burst")
        wall_s = time.perf_counter() - began
        cores = meter.stop(wall_s)
        if profiler is not None:
            profiler.stop()
        calls = control.calls_total() - calls_before
        ids = [e.body["id"] for e in mix.events]
        burst = latencies(run, ids)
        first = min(run.published[i] for i in ids)
        seconds = burst.last - first
        with run.outbox.engine.connect() as conn:
            last_taken = conn.scalar(sa.select(sa.func.max(INBOX.c.received_at)))
        figures: dict[str, Any] = {
            "events": len(ids),
            "seconds": round(seconds, 2),
            "events_per_s": round(len(ids) / seconds, 1),
            "publish_s": round(publish_s, 2),
            "intake_events_per_s": round(len(ids) / (last_taken.timestamp() - first), 1),
            "commands_per_event": round(run.commands_of(ids) / len(ids), 3),
            "calls_per_event": round(calls / len(ids), 3),
            "service_calls_per_s": round(calls / seconds, 1),
            **p50_p99("burst_e2e", burst.e2e_ms),
            **p50_p99("burst_intake", burst.intake_ms),
            "outbox": counts,
            "cpu_cores": cores,
            # what an operator budgets: CPU of the service process(es), all events counted
            "service_cpu_ms_per_event": round(cores["service"] * wall_s * 1000 / len(ids), 3),
        }
        say(
            f"  burst: {len(ids)} events in {seconds:.1f} s = {figures['events_per_s']} events/s"
            f" ({figures['calls_per_event']} calls each); CPU cores {cores}; the service"
            f" {figures['service_cpu_ms_per_event']} ms of CPU per event"
        )

        rate = figures["events_per_s"] * args.paced_fraction
        paced = list(pool[: max(1, min(len(pool), int(rate * args.paced_s)))])
        if paced:
            await run.publish(paced, rate)
            await run.settled(taken + len(paced), "paced")
            steady = latencies(run, [e.body["id"] for e in paced])
            figures.update(
                paced_rate_per_s=round(rate, 1),
                paced_events=len(paced),
                **p50_p99("e2e", steady.e2e_ms),
                **p50_p99("intake", steady.intake_ms),
            )
            say(
                f"  paced: {len(paced)} events at {rate:.0f}/s: end to end p50 "
                f"{figures['e2e_p50_ms']} ms, p99 {figures['e2e_p99_ms']} ms (publish to "
                f"outbox p50 {figures['intake_p50_ms']} ms, p99 {figures['intake_p99_ms']} ms)"
            )
    finally:
        for process in run.processes:
            if process.returncode is None:
                process.stop(signal.SIGTERM, timeout_s=60)
        await producer.stop()
        run.outbox.close()
    return figures, topics


async def broker_floor(
    bootstrap: KafkaConnection, records: int = 40, rate: float = 20.0
) -> dict[str, Any]:
    """Publish -> received by a plain aiokafka consumer with the client's defaults (as the
    service's consumer has them), at a slow pace: what the broker alone adds to intake."""
    topic = Topics.fresh("bench-floor").hr
    await create_topics(bootstrap, [topic], partitions=3)
    producer = AIOKafkaProducer(**bootstrap.client_kwargs(), enable_idempotence=False, acks=1)
    consumer = AIOKafkaConsumer(**bootstrap.client_kwargs())
    await producer.start()
    await consumer.start()
    seen: list[float] = []

    async def receive() -> None:
        while len(seen) < records:
            record = await consumer.getone()
            seen.append((time.time() - float(record.value or b"0")) * 1000)

    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        await consumer.seek_to_end()
        receiving = asyncio.create_task(receive())
        await asyncio.sleep(0.5)  # the first fetch is out
        for n in range(records):
            await producer.send(topic, str(time.time()).encode(), key=str(n).encode())
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(receiving, 30)
    finally:
        await consumer.stop()
        await producer.stop()
    return p50_p99("broker_floor", seen)


async def one_latency(
    args: argparse.Namespace,
    control: SandboxControl,
    broker: LocalBroker,
    mix: e2e_mix.Mix,
    pool: Sequence[Event],
    groups: list[list[Any]],
    latency_ms: float,
) -> dict[str, Any]:
    say(f"-- {latency_ms:g} ms API latency")
    control.reset(latency_ms)
    with database(args.database) as url, tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.log_dir or scratch) / f"{latency_ms:g}ms"
        folder.mkdir(parents=True, exist_ok=True)
        figures, topics = await service_figures(args, control, broker, mix, pool, url, folder)

    control.reset(latency_ms)
    meter = CpuMeter({"sandbox": [control.sandbox.process.pid], "load": [os.getpid()]})
    meter.start()
    began = time.perf_counter()
    cap = await e2e_direct.capacity(
        control.sandbox.base_url, groups, workers=args.workers, budget_s=args.capacity_budget_s
    )
    figures.update(cap)
    # the sandbox near 1.0 core: its own limit; else the machine (`other`) or the load was
    figures["capacity_cpu_cores"] = meter.stop(time.perf_counter() - began)
    share = figures["service_calls_per_s"] / cap["sandbox_capacity_calls_per_s"]
    figures["share_of_sandbox_capacity"] = round(share, 2)
    say(
        f"  sandbox capacity for the same calls: {cap['sandbox_capacity_calls_per_s']} calls/s"
        f" (the service used {share:.0%} of it)"
    )

    control.reset(latency_ms)
    base = await e2e_direct.naive_consumer(
        broker.connection,
        control.sandbox.base_url,
        [topics.crm, topics.hr],
        f"{topics.group}-naive",
        untimed={e.body["id"] for e in mix.onboarding},
        limit=min(args.baseline_events, len(mix.events)),
        budget_s=args.baseline_budget_s,
    )
    figures.update(base)
    figures["speedup_over_baseline"] = round(
        figures["events_per_s"] / base["baseline_events_per_s"], 1
    )
    say(
        f"  naive baseline: {base['baseline_events']} events at "
        f"{base['baseline_events_per_s']} events/s; speed-up {figures['speedup_over_baseline']}x"
    )
    return figures


async def main(args: argparse.Namespace) -> dict[str, Any]:
    args.database = database_kind(args.database)
    pool_size = max(200, args.events // 4)
    full = e2e_mix.build(args.events + pool_size, args.tenants)
    mix = e2e_mix.Mix(full.tenants, full.onboarding, full.events[: args.events])
    pool = full.events[args.events :]
    groups = e2e_direct.plan(orjson.dumps(e.body) for e in (*mix.onboarding, *mix.events))
    result: dict[str, Any] = {
        "bench": "e2e",
        "events": args.events,
        "tenants": args.tenants,
        "onboarding_events": len(mix.onboarding),
        "mix": dict(Counter(e.type for e in mix.events).most_common()),
        "database": args.database,
        "service": f"{args.processes} x `ucaas-sync run --no-poller` process",
        "workers": args.workers,
        "cpus": os.cpu_count(),
        # others' work on the machine slows every figure: the load when the run began
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    say(f"{args.events} events, {args.tenants} tenants, {args.database}: {result['mix']}")
    broker = LocalBroker.start(kafka=Settings().kafka)
    sandbox = LocalSandbox.start()
    result["broker"] = broker.kind
    try:
        result.update(await broker_floor(broker.connection))
        say(
            f"broker alone, publish to a plain consumer: p50 {result['broker_floor_p50_ms']} ms,"
            f" p99 {result['broker_floor_p99_ms']} ms"
        )
        control = SandboxControl(sandbox)
        for latency in args.latency_ms:
            figures = await one_latency(args, control, broker, mix, pool, groups, latency)
            result[f"latency_{latency:g}ms"] = figures
    finally:
        sandbox.stop()
        broker.stop()
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="default 20000 (--quick 2000)")
    parser.add_argument("--latency-ms", default="0,50", help="comma-separated, e.g. 0,50")
    parser.add_argument("--quick", action="store_true", help="a small run, for trying")
    parser.add_argument("--database", choices=("auto", "sqlite", "postgres"), default="auto")
    parser.add_argument("--workers", type=int, default=64, help="dispatcher workers")
    parser.add_argument("--processes", type=int, default=1, help="service processes")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--paced-s", type=float, default=None, help="default 10 (--quick 4)")
    parser.add_argument("--paced-fraction", type=float, default=0.5)
    parser.add_argument("--capacity-budget-s", type=float, default=None)
    parser.add_argument("--baseline-events", type=int, default=None)
    parser.add_argument("--baseline-budget-s", type=float, default=None)
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="profile the (first) service process during the burst with py-spy (pip install "
        "py-spy) into FILE, collapsed stacks ('--format raw'), one file per latency",
    )
    parser.add_argument("--log-dir", help="keep the service's logs here (default: dropped)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "events": 2000 if quick else 20_000,
        "paced_s": 4.0 if quick else 10.0,
        "capacity_budget_s": 5.0 if quick else 20.0,
        "baseline_events": 300 if quick else 2000,
        "baseline_budget_s": 8.0 if quick else 40.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.latency_ms = [float(x) for x in str(args.latency_ms).split(",") if x.strip()]
    return args


if __name__ == "__main__":
    figures = asyncio.run(main(parse_args()))
    print(json.dumps(figures))
