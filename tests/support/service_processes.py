"""The service as an operator runs it: `ucaas-sync dispatch` processes, configured by env.

Helpers for end-to-end tests: build the environment of a dispatcher process, run
`ucaas-sync` commands, keep every process a test started (the processes themselves and
the outbox read while they work: service/devtools/service_processes.py), enqueue commands
through the unit of work, and see what the sandbox holds per tenant.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.app.bootstrap import CRASH_AFTER_CALLS
from service.devtools.sample_commands import event
from service.devtools.service_processes import BIN, DispatchProcess, tails
from service.domain.commands import Command
from service.outbox import db
from service.outbox.unit_of_work import UnitOfWork

TEST_SECRET_KEY = "x2jvY4l0vV6QqC9cI0v0m3l3b0eQn5yq3Yt8bW6pZ0E="  # as tests/integration/conftest.py

# Fast polls and short backoffs: the defaults are tuned for production, not for a test.
FAST = {
    "poll_s": 0.05,
    "backoff_base_s": 0.05,
    "backoff_cap_s": 0.5,
    "wait_cap_s": 0.2,
    "probe_every_s": 0.2,
    "probe_cap_s": 0.5,
    "shutdown_grace_s": 5.0,
}


def dispatch_env(
    database_url: str,
    ucaas_base_url: str,
    *,
    crash_after_calls: int | None = None,
    **dispatch: object,
) -> dict[str, str]:
    """The environment of a dispatcher process: nothing inherited from UCAAS_SYNC_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UCAAS_SYNC_")}
    env.update(
        PYTHONUNBUFFERED="1",
        UCAAS_SYNC_DATABASE_URL=database_url,
        UCAAS_SYNC_SECRET_KEY=TEST_SECRET_KEY,
        UCAAS_SYNC_UCAAS_BASE_URL=ucaas_base_url,
        UCAAS_SYNC_ADMIN_PORT="0",  # `run` serves the admin API: on a free port, as many as run
    )
    for name, value in {**FAST, **dispatch}.items():
        env[f"UCAAS_SYNC_DISPATCH_{name.upper()}"] = str(value)
    if crash_after_calls is not None:
        env[CRASH_AFTER_CALLS] = str(crash_after_calls)
    return env


def ucaas_sync(
    env: dict[str, str], cwd: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`ucaas-sync ARGS` as an operator types it; with `check`, it must exit 0."""
    done = subprocess.run(
        [str(BIN / "ucaas-sync"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def db_upgrade(env: dict[str, str], cwd: Path) -> None:
    """`ucaas-sync db upgrade`, as a deployment runs it before starting dispatchers."""
    done = ucaas_sync(env, cwd, "db", "upgrade")
    assert "database at revision" in done.stdout


@dataclass
class Processes:
    """Every dispatcher a test started, so a failing test still ends them all."""

    folder: Path
    started: list[DispatchProcess] = field(default_factory=list)

    def start(
        self, name: str, env: dict[str, str], args: Sequence[str] = ("dispatch",)
    ) -> DispatchProcess:
        process = DispatchProcess.start(name, env, self.folder, args)
        self.started.append(process)
        return process

    def tails(self) -> str:
        return tails(self.started)

    def close(self) -> None:
        for process in self.started:
            process.kill_quietly()


# -- the outbox, written from the test -----------------------------------------------------
def accept(
    database_url: str,
    batches: Iterable[Sequence[Command]],
    approvals: Mapping[int, str] | None = None,
) -> int:
    """Accept each batch as one event through the unit of work; the number of commands.
    `approvals`: which of each batch's commands (by index) to hold, with the hold reason
    (an `APPROVAL...` one: held for approval, as the deprovisioning guard holds them)."""

    async def run() -> int:
        engine = db.make_engine(database_url)
        try:
            uow = UnitOfWork(engine)
            total = 0
            for batch in batches:
                assert await uow.accept(event(), batch, approvals=approvals)
                total += len(batch)
            return total
        finally:
            await engine.dispose()

    return asyncio.run(run())


# -- the sandbox, seen per tenant -------------------------------------------------------------
@dataclass(frozen=True)
class TenantInSandbox:
    """What the sandbox holds for one tenant (a partner customer with code = CRM id)."""

    customers: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    users: list[dict[str, Any]]  # the tenant's end users (type AP), not its portal admin
    meetings: list[dict[str, Any]]

    @classmethod
    def of(cls, state: dict[str, Any], tenant: str) -> TenantInSandbox:
        customers = [x for x in state["customers"] if x["customer_code"] == tenant]
        ids = {x["customer_id"] for x in customers}
        return cls(
            customers=customers,
            subscriptions=[s for s in state["subscriptions"] if s["customer_id"] in ids],
            users=[u for u in state["users"] if u["customer_id"] in ids and u["user_type"] == "AP"],
            meetings=[m for m in state["meetings"] if m["customer_id"] in ids],
        )

    def licensed(self, app: str = "vc") -> list[dict[str, Any]]:
        return [u for u in self.users if (u["apps"].get(app) or {}).get("access")]
