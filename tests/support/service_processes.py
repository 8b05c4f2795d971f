"""The service as an operator runs it: `ucaas-sync dispatch` processes, configured by env.

Helpers for end-to-end tests: build the environment of a dispatcher process, start and
stop it (logs go to a file, so a chatty process never blocks on a full pipe), enqueue
commands through the unit of work, and read the outbox with a plain sync engine while
the processes work on it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from service.app.bootstrap import CRASH_AFTER_CALLS
from service.domain.commands import Command
from service.outbox import db
from service.outbox.unit_of_work import UnitOfWork
from tests.support.commands import event

BIN = Path(sys.executable).parent
TEST_SECRET_KEY = "x2jvY4l0vV6QqC9cI0v0m3l3b0eQn5yq3Yt8bW6pZ0E="  # as tests/integration/conftest.py
# Statuses a command leaves by itself; `held` and `dead` wait for a person.
MOVING = ("pending", "in_flight", "waiting")

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
class DispatchProcess:
    """One `ucaas-sync dispatch` child process."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls, name: str, env: dict[str, str], folder: Path, args: Sequence[str] = ("dispatch",)
    ) -> DispatchProcess:
        """`ucaas-sync ARGS` (default: `dispatch`), logging to a file in `folder`."""
        # The working directory is the test's own: no stray .env or .ucaas-sync/ is read.
        log = folder / f"{args[0]}-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / "ucaas-sync"), *args],
                env=env,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(name, process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (pid {self.pid}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def wait_started(self, timeout_s: float = 30.0) -> None:
        """Until the process says it runs (its signal handlers are in place from then on)."""
        deadline = time.monotonic() + timeout_s
        while "ucaas-sync started" not in self.log.read_text(errors="replace"):
            if self.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start\n{self.tail()}")
            time.sleep(0.05)

    def owns(self, lease_owner: str | None) -> bool:
        """Whether a row's lease owner (host:pid:nonce) names this process."""
        return lease_owner is not None and lease_owner.split(":")[1:2] == [str(self.pid)]

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout_s} s\n{self.tail()}"
            ) from None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        """Send `sig` (if still running) and wait; returns the exit code (-9 for SIGKILL)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(timeout_s)

    def kill_quietly(self) -> None:
        """Clean-up after a failed test: never leave a process behind."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


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
        return _tails(self.started)

    def close(self) -> None:
        for process in self.started:
            process.kill_quietly()


# -- the outbox, read and written from the test -----------------------------------------------
def accept(database_url: str, batches: Iterable[Sequence[Command]]) -> int:
    """Accept each batch as one event through the unit of work; the number of commands."""

    async def run() -> int:
        engine = db.make_engine(database_url)
        try:
            uow = UnitOfWork(engine)
            total = 0
            for batch in batches:
                assert await uow.accept(event(), batch)
                total += len(batch)
            return total
        finally:
            await engine.dispose()

    return asyncio.run(run())


class Outbox:
    """Sync reads of the outbox table while dispatcher processes work on it."""

    def __init__(self, database_url: str) -> None:
        self.engine = sa.create_engine(db.sync_url(database_url), poolclass=NullPool)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_busy_timeout)

    def close(self) -> None:
        self.engine.dispose()

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, count(*) FROM outbox GROUP BY status"))
            return {str(status): int(n) for status, n in rows}

    def rows(self, *columns: str) -> list[Any]:
        names = ", ".join(columns or ("*",))
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT {names} FROM outbox ORDER BY id")))  # noqa: S608

    def stuck(self) -> list[Any]:
        """The rows not done, with why: for assertion messages."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT id, kind, status, attempts, last_error_code, last_error, "
                        "hold_reason FROM outbox WHERE status <> 'done' ORDER BY id LIMIT 20"
                    )
                )
            )

    def owners(self, status: str) -> set[str]:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT DISTINCT lease_owner FROM outbox WHERE status = :s"), {"s": status}
            )
            return {owner for (owner,) in found if owner}

    def wait_settled(
        self, processes: Sequence[DispatchProcess], *, timeout_s: float
    ) -> dict[str, int]:
        """Poll until no row is pending, in flight or waiting; the final counts by status."""
        deadline = time.monotonic() + timeout_s
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = self.counts()
            if not any(counts.get(status) for status in MOVING):
                return counts
            _check_alive(processes, counts)
            time.sleep(0.1)
        raise AssertionError(
            f"the outbox did not settle in {timeout_s} s: {counts}\n{_tails(processes)}"
        )


def _tails(processes: Sequence[DispatchProcess]) -> str:
    return "\n".join(p.tail() for p in processes)


def _check_alive(processes: Sequence[DispatchProcess], counts: dict[str, int]) -> None:
    for process in processes:
        if process.returncode is not None:
            raise AssertionError(
                f"{process.name} exited with {process.returncode} while the outbox still "
                f"had work: {counts}\n{_tails(processes)}"
            )


def _sqlite_busy_timeout(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


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
