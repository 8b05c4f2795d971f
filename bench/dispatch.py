"""Commands through the dispatcher against the sandbox, and the cost of a claim.

1. Throughput: employees of several tenants, each a create_user then an assign_licence
   (two commands, one entity), accepted into the outbox and dispatched against the UCaaS
   sandbox (its own process), at 0 ms and at 50 ms injected API latency. Customers and
   subscriptions are made first and not timed. Figures: commands/s, UCaaS calls per
   command, the dispatcher's CPU per command, and the sandbox's own capacity for the same
   calls measured in the same run
   (the same POST /users + PATCH licence pairs from a concurrent load with no outbox).
2. Claim cost on PostgreSQL: the median time of one claim (64 rows) with 10,000 and with
   1,000,000 pending rows, and with 1,000,000 of which 10,000 or 100,000 are due behind a
   waiting command of their entity (each claim steps over them), or 100,000 held queued
   behind it (as the dispatcher leaves them after the head's first wait).

    .venv/bin/python bench/dispatch.py [--employees 2000] [--workers 64]
                                       [--database sqlite|postgres]

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
import statistics
import time
from typing import Any

import httpx
import sqlalchemy as sa

from bench.support import SandboxControl, database, setup_done
from connectors.ucaas.transport import AiohttpTransport
from service.app import gc_thresholds
from service.app.bootstrap import bootstrap
from service.devtools import sample_commands as c
from service.devtools.local_postgres import fresh_database, postgres_problem
from service.devtools.local_sandbox import DEFAULT_ADMIN, LocalSandbox
from service.outbox import db
from service.outbox.store import OutboxStore
from service.outbox.tables import OUTBOX
from service.outbox.unit_of_work import EventRecord
from service.outbox.vault import new_key
from service.settings import DispatcherSettings, Settings

TENANTS = 4
_events = itertools.count()


def event() -> EventRecord:
    return EventRecord("bench", f"b-{next(_events)}", "bench")


async def dispatch_run(
    sandbox: LocalSandbox, database_url: str, employees: int, workers: int, latency_ms: float
) -> dict[str, Any]:
    control = SandboxControl(sandbox)
    control.reset()
    settings = Settings(
        database_url=database_url,
        secret_key=new_key(),
        ucaas_base_url=sandbox.base_url,
        ucaas_max_connections=workers,
        dispatch=DispatcherSettings(workers=workers, batch=workers, poll_s=0.01),
    )
    service = await bootstrap(settings, migrate=True)
    try:
        tenants = [f"T{n}" for n in range(TENANTS)]
        setup = [
            cmd
            for t in tenants
            for cmd in (c.create_customer(t), c.create_subscription(t, seats=employees))
        ]
        await service.uow.accept(event(), setup)
        await setup_done(service, len(setup))
        control.latency(latency_ms)
        calls_before = control.calls_total()
        batch = []
        for n in range(employees):
            tenant = tenants[n % TENANTS]
            batch += [c.create_user(tenant, f"E{n:06d}"), c.assign(tenant, f"E{n:06d}")]
        for start in range(0, len(batch), 500):  # accepted as events of 250 employees
            await service.uow.accept(event(), batch[start : start + 500])
        started, cpu_started = time.perf_counter(), time.process_time()
        await service.dispatcher.run_until_idle(idle_s=0.05, timeout_s=1800)
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        counts = await service.store.counts()
        calls = control.calls_total()
        async with service.engine.connect() as conn:
            # why a command is not done at the end, when one is not: the figure says it
            why = (OUTBOX.c.status, OUTBOX.c.hold_reason, OUTBOX.c.last_error)
            not_done = (
                await conn.execute(
                    sa.select(*why, sa.func.count()).where(OUTBOX.c.status != "done").group_by(*why)
                )
            ).all()
    finally:
        await service.aclose()
    done = counts.get("done", 0) - len(setup)
    return {
        "commands": len(batch),
        "done": done,
        "seconds": round(elapsed, 2),
        "commands_per_s": round(done / elapsed, 1),
        "calls_per_command": round((calls - calls_before) / max(done, 1), 3),
        # the dispatcher's process (and the idle check's count every 50 ms): what a
        # command costs the service in CPU, whatever else the machine runs
        "cpu_ms_per_command": round(cpu_s * 1000 / max(done, 1), 3),
        "not_done": [
            {"status": status, "reason": (reason or error or "")[:160], "count": n}
            for status, reason, error, n in not_done
        ],
    }


async def sandbox_capacity(
    sandbox: LocalSandbox, employees: int, workers: int, latency_ms: float
) -> float:
    """The same calls (add a user, assign its licence) with no outbox: calls per second."""
    control = SandboxControl(sandbox)
    control.reset()
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(
        base_url=sandbox.base_url,
        headers={"X-Api-Id": "sandbox-app"},
        transport=AiohttpTransport(limits),
        timeout=30,
    ) as http:
        created = await http.post(
            "/customers",
            auth=DEFAULT_ADMIN,
            json={
                "customer_name": "Cap",
                "customer_legal_name": "Cap Ltd",
                "customer_code": "CAP",
                "contact_name": "Cap",
                "contact_email": "cap@cap.example",
                "office_address": {"address_1": "1 St", "city": "Oslo", "country": "NO"},
            },
        )
        customer = created.json()
        today = time.strftime("%Y-%m-%d", time.gmtime())
        sub = await http.post(
            "/subscriptions",
            auth=DEFAULT_ADMIN,
            json={
                "customer_id": customer["customer"]["customer_id"],
                "plan_id": "vc-basic",
                "room_type": "standard",
                "subscription": {"no_of_license": employees, "subsxn_date": today},
            },
        )
        sub_id = sub.json()["subscription"]["subscription_id"]
        portal = customer["portal_access"]
        login = await http.post(
            "/login", json={"email": portal["username"], "password": portal["password"]}
        )
        auth = {"Authorization": f"Token {login.json()['token']}"}
        control.latency(latency_ms)
        queue = iter(range(employees))
        calls = 0

        async def worker() -> None:
            nonlocal calls
            for n in queue:
                body = {"user_type": "AP", "first_name": "Cap", "email": f"cap{n}@cap.example"}
                user = (await http.post("/users", json=body, headers=auth)).json()["user"]
                await http.patch(
                    f"/users/{user['user_id']}",
                    json={"app": "vc", "subscription_id": sub_id},
                    headers={**auth, "X-License": "assign"},
                )
                calls += 2

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return calls / (time.perf_counter() - started)


async def claim_cost(
    pending: int, samples: int = 15, behind_waiting: int = 0, follower: str = "pending"
) -> float:
    """Median ms of one claim of 64 rows with `pending` rows on PostgreSQL, of which
    `behind_waiting` are behind a command of their entity that waits (each such entity: a
    waiting head re-checked in an hour and one follower, due (`pending`, as between its
    acceptance and the head's next outcome) or `held` queued behind it, as after)."""
    with fresh_database() as url:
        await asyncio.to_thread(db.upgrade, url)
        engine = db.make_engine(url)
        async with engine.begin() as conn:
            # Most entities have one command, every tenth a second one behind it.
            await conn.execute(
                sa.text(
                    "INSERT INTO outbox (entity, kind, tenant, payload, status, attempts, in_doubt,"
                    " next_attempt_at, created_at, updated_at)"
                    " SELECT 'user:T:' || (g - (g % 10 = 1)::int), 'create_user', 'T', '{}',"
                    " 'pending', 0, false, now(), now(), now() FROM generate_series(1, :n) g"
                ),
                {"n": pending - 2 * behind_waiting},
            )
            for status, kind, due_in_s in (
                ("waiting", "create_user", 3600),
                (follower, "assign_licence", -86400),
            ):
                await conn.execute(
                    sa.text(
                        "INSERT INTO outbox (entity, kind, tenant, payload, status, attempts,"
                        " in_doubt, next_attempt_at, created_at, updated_at)"
                        " SELECT 'user:W:' || g, :kind, 'W', '{}', :status, 0, false,"
                        " now() + :due * interval '1 second', now() - interval '1 day', now()"
                        " FROM generate_series(1, :n) g"
                    ),
                    {"n": behind_waiting, "kind": kind, "status": status, "due": due_in_s},
                )
            await conn.execute(sa.text("ANALYZE outbox"))
        store = OutboxStore(engine)
        timings = []
        for _ in range(samples):
            started = time.perf_counter()
            claimed = await store.claim("bench", 64, 60)
            timings.append((time.perf_counter() - started) * 1000)
            assert len(claimed) == 64
            assert not any(c.entity.startswith("user:W:") for c in claimed)
        async with engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(OUTBOX))
        await engine.dispose()
        assert total == pending
    return round(statistics.median(timings), 2)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "bench": "dispatch",
        "employees": args.employees,
        "workers": args.workers,
    }
    use_pg = args.database == "postgres"
    if use_pg and postgres_problem():
        raise SystemExit(postgres_problem())
    sandbox = LocalSandbox.start()
    try:
        for latency in (0, 50):
            with database(args.database) as url:
                run = await dispatch_run(sandbox, url, args.employees, args.workers, latency)
            capacity = await sandbox_capacity(sandbox, args.employees, args.workers, latency)
            calls_per_s = run["commands_per_s"] * run["calls_per_command"]
            figures[f"latency_{latency}ms"] = {
                **run,
                "sandbox_capacity_calls_per_s": round(capacity, 1),
                "dispatcher_calls_per_s": round(calls_per_s, 1),
                "share_of_sandbox_capacity": round(calls_per_s / capacity, 2),
            }
    finally:
        sandbox.stop()
    figures["database"] = args.database
    if postgres_problem() is None and not args.skip_claims:
        figures["claim_ms_10k_pending"] = await claim_cost(10_000)
        figures["claim_ms_1m_pending"] = await claim_cost(1_000_000)
        for behind in (10_000, 100_000):
            figures[f"claim_ms_1m_pending_{behind // 1000}k_behind_waiting"] = await claim_cost(
                1_000_000, behind_waiting=behind
            )
        figures["claim_ms_1m_pending_100k_held_behind_waiting"] = await claim_cost(
            1_000_000, behind_waiting=100_000, follower="held"
        )
    else:
        figures["claim_cost"] = postgres_problem() or "skipped"
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--skip-claims", action="store_true")
    gc_thresholds.tune()  # the dispatcher runs here as in `ucaas-sync run` (gc_thresholds.py)
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result))
