"""A large backlog on PostgreSQL: does anything grow with it?

For each size (default 10,000 and 1,000,000 pending commands): a fresh database whose
tenants' customers and subscriptions exist in the UCaaS sandbox, an outbox filled in one
INSERT ... SELECT generate_series with employees of those tenants (a create_user then an
assign_licence each, FIFO on one entity), then one real `ucaas-sync dispatch` process
drains it until the first `--drain` (10,000) commands are done and is stopped.

Figures per size: time to the first done and to `--drain` done, commands/s in between,
the dispatcher's peak RSS (the kernel's ru_maxrss for that child, from wait4) and its RSS
when the first command was done, CPU cores used by the dispatcher, PostgreSQL and the
sandbox. Before and after the drain (while 64 rows are still pending), the latency of the
dispatcher's claim of 64 rows, p50/p99 over `--claims` claims each rolled back; after it,
that of the other queries a dispatcher runs (lease extension and reclaim, waking a
tenant's waiting commands) and of the status counts (`ucaas-sync status`, metrics).

    .venv/bin/python bench/backlog.py [--sizes 10000,1000000] [--drain 10000]
                                      [--workers 64] [--latency-ms 0]

Prints one JSON line of figures last.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the project's root on sys.path, for `service` and `bench`.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.support import CpuMeter, SandboxControl, percentile, setup_done
from service.app.bootstrap import bootstrap
from service.devtools import sample_commands as c
from service.devtools.local_postgres import fresh_database, postgres_problem
from service.devtools.local_sandbox import LocalSandbox
from service.outbox import db
from service.outbox.store import OutboxStore
from service.outbox.tables import utcnow
from service.outbox.unit_of_work import EventRecord
from service.outbox.vault import new_key
from service.settings import DispatcherSettings, Settings

BIN = Path(sys.executable).parent
TENANTS = 8
_events = itertools.count()

# Employees of tenants T0..T7, two commands each, in id order: create_user, assign_licence.
# The payloads are those translation writes (service/devtools/sample_commands.py builds
# the same).
FILL = sa.text(
    """
    INSERT INTO outbox (entity, kind, tenant, payload, status, attempts, in_doubt,
                        next_attempt_at, created_at, updated_at)
    SELECT 'user:' || t || ':' || e, k.kind, t,
           CASE k.kind
             WHEN 'create_user' THEN json_build_object(
               'tenant', t, 'employee_id', e,
               'profile', json_build_object(
                 'email', lower(e) || '@' || lower(t) || '.example', 'first_name', 'Emp',
                 'middle_name', NULL, 'last_name', e, 'department', NULL, 'designation', NULL))
             ELSE json_build_object('tenant', t, 'employee_id', e, 'app', 'vc')
           END,
           'pending', 0, false, :now, :now, :now
    FROM generate_series(0, :employees - 1) AS g,
         LATERAL (SELECT 'T' || (g % :tenants) AS t, 'E' || lpad(g::text, 7, '0') AS e) AS who,
         (VALUES (0, 'create_user'), (1, 'assign_licence')) AS k(step, kind)
    ORDER BY g, k.step
    """
)
DONE = sa.text("SELECT count(*) FROM outbox WHERE status = 'done' AND kind <> :setup_kind")


def event() -> EventRecord:
    return EventRecord("bench", f"backlog-{next(_events)}", "bench")


def settings_for(url: str, sandbox: LocalSandbox, key: str, workers: int) -> Settings:
    return Settings(
        database_url=url,
        secret_key=key,
        ucaas_base_url=sandbox.base_url,
        ucaas_max_connections=workers,
        dispatch=DispatcherSettings(workers=workers, batch=workers, poll_s=0.01),
    )


async def prepare(url: str, sandbox: LocalSandbox, key: str, size: int) -> float:
    """Customers and subscriptions made through the service, then `size` pending commands
    written in one statement: seconds the fill took."""
    service = await bootstrap(settings_for(url, sandbox, key, 16), migrate=True)
    try:
        seats = size // 2 // TENANTS + 1
        setup = [
            cmd
            for n in range(TENANTS)
            for cmd in (c.create_customer(f"T{n}"), c.create_subscription(f"T{n}", seats=seats))
        ]
        await service.uow.accept(event(), setup)
        await setup_done(service, len(setup))
        started = time.perf_counter()
        naive_now = utcnow().replace(tzinfo=None)  # stored as naive UTC (tables.UtcDateTime)
        async with service.engine.begin() as conn:
            await conn.execute(FILL, {"employees": size // 2, "tenants": TENANTS, "now": naive_now})
        async with service.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE outbox"))
        return time.perf_counter() - started
    finally:
        await service.aclose()


def dispatcher_env(url: str, sandbox: LocalSandbox, key: str, workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UCAAS_SYNC_")}
    env.update(
        UCAAS_SYNC_DATABASE_URL=url,
        UCAAS_SYNC_SECRET_KEY=key,
        UCAAS_SYNC_UCAAS_BASE_URL=sandbox.base_url,
        UCAAS_SYNC_UCAAS_MAX_CONNECTIONS=str(workers),
        UCAAS_SYNC_DISPATCH_WORKERS=str(workers),
        UCAAS_SYNC_DISPATCH_BATCH=str(workers),
        UCAAS_SYNC_LOG_LEVEL="WARNING",
    )
    return env


def start_dispatcher(env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """`ucaas-sync dispatch`, reaped by `os.wait4` (not asyncio) for its own ru_maxrss."""
    with logs.open("wb") as out:
        return subprocess.Popen(
            [str(BIN / "ucaas-sync"), "dispatch"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def drain(
    url: str, sandbox: LocalSandbox, key: str, workers: int, target: int, logs: Path
) -> dict[str, Any]:
    """One `ucaas-sync dispatch` process until `target` commands are done."""
    engine = db.make_engine(url, pool_size=1)
    meter = CpuMeter({"dispatcher": [], "postgres": "postgres", "sandbox": [sandbox.process.pid]})
    started = time.perf_counter()
    process = start_dispatcher(dispatcher_env(url, sandbox, key, workers), logs)
    meter.groups["dispatcher"] = [process.pid]
    meter.start()
    first = done = 0
    first_s = rss_first = 0.0
    try:
        async with engine.connect() as conn:
            while done < target:
                await asyncio.sleep(0.1)
                if process.poll() is not None:
                    raise SystemExit(f"the dispatcher stopped: see {logs}")
                done = int(await conn.scalar(DONE, {"setup_kind": "create_customer"}) or 0)
                done -= TENANTS  # the subscriptions made in `prepare`
                if done > 0 and not first:
                    first, first_s, rss_first = (
                        done,
                        time.perf_counter() - started,
                        rss_kb(process.pid),
                    )
                    meter.start()
        elapsed = time.perf_counter() - started
        cores = meter.stop(elapsed - first_s)
    finally:
        process.send_signal(signal.SIGTERM)
        _, _, usage = await asyncio.to_thread(os.wait4, process.pid, 0)
        await engine.dispose()
    return {
        "done": done,
        "start_to_first_done_s": round(first_s, 2),
        "start_to_target_done_s": round(elapsed, 2),
        "commands_per_s": round((done - first) / (elapsed - first_s), 1),
        "rss_at_first_done_mb": round(rss_first / 1024, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cores": cores,
    }


async def timed(samples: int, work: Callable[[], Awaitable[Any]]) -> list[float]:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        await work()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(timings, 50), 2),
        "p99_ms": round(percentile(timings, 99), 2),
    }


async def claims(url: str, samples: int) -> dict[str, Any] | None:
    """The dispatcher's claim of 64 rows, each rolled back (the backlog stays as it is):
    p50/p99 over `samples`; None when fewer than 64 rows are pending."""
    engine = db.make_engine(url, pool_size=1)
    store = OutboxStore(engine)
    try:
        if (await store.counts()).get("pending", 0) < 64:
            return None
        async with engine.connect() as conn:

            async def claim() -> None:
                now = utcnow()
                values = {
                    "b_now": now,
                    "b_owner": "bench",
                    "b_expires": now + timedelta(seconds=60),
                }
                # the claim's statements (fair share among the tenants), as the store runs them
                found = await store.claims.fair.claim(conn, values, 64)
                await conn.rollback()
                assert len(found) == 64, len(found)

            return summary(await timed(samples, claim))
    finally:
        await engine.dispose()


async def housekeeping(url: str) -> dict[str, Any]:
    """What else one dispatcher's loop asks of the database, with the backlog there."""
    engine = db.make_engine(url, pool_size=2)
    store = OutboxStore(engine)
    try:
        ids = list(range(1, 65))
        extend_ms = await timed(20, lambda: store.extend("bench", ids, 60))
        reclaim_ms = await timed(20, store.reclaim_expired)
        counts_ms = await timed(5, store.counts)

        async def wake() -> None:
            async with engine.begin() as conn:
                await store.outcomes.wake_waiting(conn, {"T0"}, utcnow())

        wake_ms = await timed(20, wake)
    finally:
        await engine.dispose()
    return {
        "extend_leases": summary(extend_ms),
        "reclaim_expired": summary(reclaim_ms),
        "wake_waiting_of_a_tenant": summary(wake_ms),
        "status_counts": summary(counts_ms),
    }


async def one_size(sandbox: LocalSandbox, size: int, args: argparse.Namespace) -> dict[str, Any]:
    control = SandboxControl(sandbox)
    control.reset(args.latency_ms)
    key = new_key()
    with fresh_database() as url, tempfile.TemporaryDirectory() as folder:
        fill_s = await prepare(url, sandbox, key, size)
        before = await claims(url, args.claims)
        run = await drain(url, sandbox, key, args.workers, args.drain, Path(folder) / "d.log")
        calls = control.calls_total()
        after = await claims(url, args.claims)
        chores = await housekeeping(url)
    return {
        "pending": size,
        "fill_s": round(fill_s, 1),
        "claim_64_before_drain": before,
        **run,
        "ucaas_calls": calls,
        "claim_64_after_drain": after,
        **chores,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "bench": "backlog",
        "database": "postgres",
        "drain": args.drain,
        "workers": args.workers,
        "latency_ms": args.latency_ms,
        "load_average_at_start": os.getloadavg()[0],
    }
    sandbox = LocalSandbox.start()
    try:
        for size in args.sizes:
            result = await one_size(sandbox, size, args)
            print(json.dumps(result), file=sys.stderr, flush=True)
            figures[f"pending_{size}"] = result
    finally:
        sandbox.stop()
    figures["load_average_at_end"] = os.getloadavg()[0]
    return figures


def sizes(text: str) -> list[int]:
    found = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    if not found or min(found) <= 0:
        raise argparse.ArgumentTypeError("positive sizes, comma-separated")
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=[10_000, 1_000_000])
    parser.add_argument("--drain", type=int, default=10_000, help="commands done to time")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--claims", type=int, default=200, help="claims timed, rolled back")
    arguments = parser.parse_args()
    if arguments.drain > min(arguments.sizes):
        parser.error("--drain must not exceed the smallest size")
    if postgres_problem():  # `make bench` goes on to the next script
        print(json.dumps({"bench": "backlog", "skipped": postgres_problem()}))
    else:
        print(json.dumps(asyncio.run(main(arguments))))
