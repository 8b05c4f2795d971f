"""Fair between tenants: another tenant's single hire while one tenant's burst drains.

Tenant A's burst (default 10,000 commands: 5,000 employees, each a create_user then an
assign_licence) is accepted into the outbox and drained by the real dispatcher (64
workers) against the UCaaS sandbox (its own process, over HTTP). While it drains, tenant
B's hires (one create_user each) are accepted one at a time, every `--every-s` seconds,
as long as more than a fifth of the burst is left. Figures: B's hire accept -> done
latency p50/p99/max (the row's created_at -> done_at), and the burst's commands/s and
time. Before fair claims a hire queued behind the rest of the burst (claims took the row
due longest first).

With `--a-calls-per-s R`, tenant A is rate limited to R UCaaS calls/s (the
dispatch.tenant_limits setting): the burst's commands/s then shows the limit.

    .venv/bin/python bench/fairness.py [--database sqlite|postgres|both] [--burst 10000]
                                       [--hires 20] [--every-s 0.5] [--a-calls-per-s R]

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
import time
from typing import Any

import sqlalchemy as sa

from bench.support import SandboxControl, database, percentile, setup_done
from service.app import gc_thresholds
from service.app.bootstrap import bootstrap
from service.devtools import sample_commands as c
from service.devtools.local_postgres import postgres_problem
from service.devtools.local_sandbox import LocalSandbox
from service.outbox.tables import OUTBOX
from service.outbox.unit_of_work import EventRecord
from service.outbox.vault import new_key
from service.settings import DispatcherSettings, Settings

_events = itertools.count()


def event() -> EventRecord:
    return EventRecord("bench", f"fair-{next(_events)}", "bench")


def settings_for(url: str, sandbox: LocalSandbox, args: argparse.Namespace) -> Settings:
    # the setting exists since issue 17: given only when asked, so the bench runs before too
    limits = {"tenant_limits": {"A": args.a_calls_per_s}} if args.a_calls_per_s else {}
    return Settings(
        database_url=url,
        secret_key=new_key(),
        ucaas_base_url=sandbox.base_url,
        ucaas_max_connections=args.workers,
        dispatch=DispatcherSettings(
            workers=args.workers, batch=args.workers, poll_s=0.01, **limits
        ),
    )


async def one_run(sandbox: LocalSandbox, url: str, args: argparse.Namespace) -> dict[str, Any]:
    SandboxControl(sandbox).reset()
    service = await bootstrap(settings_for(url, sandbox, args), migrate=True)
    try:
        setup = [
            c.create_customer("A"),
            c.create_subscription("A", seats=args.burst),
            c.create_customer("B"),
            c.create_subscription("B", seats=args.hires + 1),
        ]
        await service.uow.accept(event(), setup)
        await setup_done(service, len(setup))
        burst = []
        for n in range(args.burst // 2):
            burst += [c.create_user("A", f"E{n:06d}"), c.assign("A", f"E{n:06d}")]
        for start in range(0, len(burst), 500):  # accepted as events of 250 employees
            await service.uow.accept(event(), burst[start : start + 500])
        started = time.perf_counter()
        run = asyncio.create_task(service.dispatcher.run())
        hires = 0
        try:
            while hires < args.hires:
                await asyncio.sleep(args.every_s)
                if await _left(service.engine, "A") < len(burst) // 5:
                    break  # no longer mid-burst: a hire now would say nothing
                await service.uow.accept(event(), [c.create_user("B", f"H{hires:04d}")])
                hires += 1
            await _drained(service.engine)
            elapsed = time.perf_counter() - started
        finally:
            await service.dispatcher.stop()
            await run
        async with service.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(OUTBOX.c.created_at, OUTBOX.c.done_at).where(
                        OUTBOX.c.tenant == "B", OUTBOX.c.kind == "create_user"
                    )
                )
            ).all()
            a_done = await conn.execute(
                sa.select(sa.func.min(OUTBOX.c.done_at), sa.func.max(OUTBOX.c.done_at)).where(
                    OUTBOX.c.tenant == "A", OUTBOX.c.kind != "create_customer"
                )
            )
            first, last = a_done.one()
    finally:
        await service.aclose()
    latencies = [(done - created).total_seconds() * 1000 for created, done in rows if done]
    drain_s = (last - first).total_seconds() if first and last else elapsed
    return {
        "burst_commands": len(burst),
        "hires_accepted_mid_burst": hires,
        "hires_done": len(latencies),
        "hire_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
        "hire_ms_p99": round(percentile(latencies, 99), 1) if latencies else None,
        "hire_ms_max": round(max(latencies), 1) if latencies else None,
        "burst_seconds": round(elapsed, 2),
        "burst_commands_per_s": round(len(burst) / elapsed, 1),
        "burst_a_done_per_s": round(len(burst) / max(drain_s, 1e-9), 1),
    }


async def _drained(engine: Any) -> None:
    """Until every command is done, polled (nothing signals it)."""
    while True:
        if await _left(engine, None) == 0:
            return
        await asyncio.sleep(0.05)


async def _left(engine: Any, tenant: str | None) -> int:
    """Commands of `tenant` (every tenant: None) not done yet."""
    query = sa.select(sa.func.count()).where(OUTBOX.c.status.not_in(("done", "dropped", "dead")))
    if tenant is not None:
        query = query.where(OUTBOX.c.tenant == tenant)
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    kinds = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    if "postgres" in kinds and postgres_problem():
        kinds = tuple(k for k in kinds if k != "postgres")
    figures: dict[str, Any] = {
        "bench": "fairness",
        "burst": args.burst,
        "workers": args.workers,
        "every_s": args.every_s,
        "a_calls_per_s": args.a_calls_per_s,
        "load_average_at_start": os.getloadavg()[0],
    }
    sandbox = LocalSandbox.start()
    try:
        for kind in kinds:
            with database(kind) as url:
                figures[kind] = await one_run(sandbox, url, args)
            print(json.dumps({kind: figures[kind]}), file=sys.stderr, flush=True)
    finally:
        sandbox.stop()
    figures["load_average_at_end"] = os.getloadavg()[0]
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--burst", type=int, default=10_000, help="tenant A's commands")
    parser.add_argument("--hires", type=int, default=20, help="tenant B's hires at most")
    parser.add_argument("--every-s", type=float, default=0.5, help="between B's hires")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--a-calls-per-s", type=float, default=0.0, help="A's rate limit")
    gc_thresholds.tune()  # the dispatcher runs here as in `ucaas-sync run` (gc_thresholds.py)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
