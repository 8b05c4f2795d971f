"""The service as an operator runs it, for tests and benchmarks: `ucaas-sync` child
processes (logs go to a file, so a chatty process never blocks on a full pipe), and the
outbox read with a plain sync engine while they work on it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from service.outbox import db

BIN = Path(sys.executable).parent
# Statuses a command leaves by itself; `held` and `dead` wait for a person.
MOVING = ("pending", "in_flight", "waiting")


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
            process = subprocess.Popen(  # noqa: S603 - our own command, the caller's arguments
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


# -- the outbox, read while the processes work on it ----------------------------------------
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
            f"the outbox did not settle in {timeout_s} s: {counts}\n{tails(processes)}"
        )


def tails(processes: Sequence[DispatchProcess]) -> str:
    """The last lines each process logged: for assertion and error messages."""
    return "\n".join(p.tail() for p in processes)


def _check_alive(processes: Sequence[DispatchProcess], counts: dict[str, int]) -> None:
    for process in processes:
        if process.returncode is not None:
            raise AssertionError(
                f"{process.name} exited with {process.returncode} while the outbox still "
                f"had work: {counts}\n{tails(processes)}"
            )


def _sqlite_busy_timeout(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
