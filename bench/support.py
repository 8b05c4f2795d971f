"""What the benchmarks share: the sandbox's admin routes, a database of the kind asked
for, CPU time of the processes involved, and percentiles."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.app.bootstrap import Service
from service.devtools.local_postgres import fresh_database, postgres_problem
from service.devtools.local_sandbox import DEFAULT_ADMIN, LocalSandbox

DATABASES = ("auto", "sqlite", "postgres")


@dataclass(frozen=True)
class SandboxControl:
    """The sandbox's own routes (outside the UCaaS API), as its admin."""

    sandbox: LocalSandbox

    def _post(self, route: str, body: dict[str, Any] | None = None) -> None:
        response = httpx.post(
            f"{self.sandbox.root}/_sandbox/{route}", json=body, auth=DEFAULT_ADMIN, timeout=30
        )
        response.raise_for_status()

    def reset(self, latency_ms: float = 0) -> None:
        """A fresh state and zero counters, then `latency_ms` on every call."""
        self._post("reset")
        self.latency(latency_ms)

    def latency(self, latency_ms: float) -> None:
        self._post("faults", {"latency_ms": latency_ms})

    def calls(self) -> dict[str, Any]:
        response = httpx.get(f"{self.sandbox.root}/_sandbox/calls", auth=DEFAULT_ADMIN, timeout=30)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def calls_total(self) -> int:
        return int(self.calls()["total"])

    def state(self) -> dict[str, Any]:
        response = httpx.get(f"{self.sandbox.root}/_sandbox/state", auth=DEFAULT_ADMIN, timeout=60)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found


async def setup_done(service: Service, commands: int) -> None:
    """Dispatch until the setup's `commands` are all done, not merely idle: a subscription
    accepted with its customer may run first and wait, and a waiting command does not keep
    run_until_idle running; a timed run would then start with licences waiting for it
    (seen on SQLite: 12-22 of 4,000 commands not done at the end)."""
    for _ in range(50):
        await service.dispatcher.run_until_idle(idle_s=0.1)
        if await service.store.counts() == {"done": commands}:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"setup did not finish: {await service.store.counts()}")


def database_kind(asked: str) -> str:
    """`auto`: PostgreSQL (what production runs) when one answers, else SQLite."""
    if asked == "auto":
        return "sqlite" if postgres_problem() else "postgres"
    if asked == "postgres" and postgres_problem():
        raise SystemExit(postgres_problem())
    return asked


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh empty database of `kind` (sqlite or postgres): its URL, dropped after."""
    if kind == "postgres":
        with fresh_database() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"


# -- where the time goes ----------------------------------------------------------------------
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def pids_named(name: str) -> list[int]:
    """Processes whose command name is `name` (PostgreSQL's backends, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == name:
                found.append(int(entry.name))
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot (everyone's processes)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS


class CpuMeter:
    """CPU seconds used by named groups of processes between `start` and `stop`."""

    def __init__(self, groups: dict[str, Sequence[int] | str]) -> None:
        # a group is a list of pids, or a command name looked up at each reading
        self.groups = groups
        self.began: dict[str, dict[int, float]] = {}
        self.machine = 0.0

    def _read(self) -> dict[str, dict[int, float]]:
        found: dict[str, dict[int, float]] = {}
        for group, who in self.groups.items():
            pids = pids_named(who) if isinstance(who, str) else list(who)
            found[group] = {pid: cpu_seconds(pid) for pid in pids}
        return found

    def start(self) -> None:
        self.began = self._read()
        self.machine = machine_busy_seconds()

    def stop(self, wall_s: float) -> dict[str, float]:
        """Cores used per group over `wall_s` (1.0: one core busy all the time), and by
        whatever else ran on the machine meanwhile (`other`)."""
        now = self._read()
        used = {}
        for group, pids in now.items():
            before = self.began.get(group, {})
            used[group] = sum(max(0.0, t - before.get(pid, 0.0)) for pid, t in pids.items())
        busy = machine_busy_seconds() - self.machine
        used["other"] = max(0.0, busy - sum(used.values()))
        return {group: round(s / wall_s, 2) if wall_s > 0 else 0.0 for group, s in used.items()}


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of `values`; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Profiler:
    """py-spy sampling one process until stopped, its collapsed stacks written to `path`
    (one line per stack and its count: `py-spy`'s `--format raw`, what flamegraph tools
    and a few lines of Python read)."""

    process: subprocess.Popen[bytes]
    path: Path

    @classmethod
    def start(cls, path: Path, pid: int, rate: int = 250) -> Profiler:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
        command += ["--output", str(path), "--nonblocking"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return cls(process, path)

    def stop(self) -> None:
        """Ctrl-C for py-spy: it writes what it sampled and exits."""
        self.process.send_signal(signal.SIGINT)
        try:
            _, errors = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        if not self.path.exists():
            raise RuntimeError(f"py-spy wrote no profile: {errors.decode(errors='replace')}")
