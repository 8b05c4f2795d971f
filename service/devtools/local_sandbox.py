"""Start the bundled UCaaS sandbox as a child process on a free loopback port.

The service never imports `sandbox/`: it runs the `ucaas-sandbox` command, as an operator
would, and talks to it over HTTP.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.devtools.processes import free_port, stop

DEFAULT_API_ID = "sandbox-app"
DEFAULT_ADMIN = ("admin@sandbox.test", "sandbox-admin")


def sandbox_command() -> list[str]:
    beside = Path(sys.executable).with_name("ucaas-sandbox")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ucaas-sandbox")
    return [found] if found else [sys.executable, "-m", "sandbox"]


@dataclass
class LocalSandbox:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/ucaas/v1"

    @classmethod
    def start(cls, port: int | None = None, *extra: str, timeout_s: float = 20.0) -> LocalSandbox:
        port = port or free_port()
        process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            [*sandbox_command(), "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sandbox = cls(port, process)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"ucaas-sandbox exited with code {process.returncode}")
            try:
                httpx.get(f"{sandbox.root}/_sandbox/health", timeout=1.0)
                return sandbox
            except httpx.TransportError:
                time.sleep(0.05)
        sandbox.stop()
        raise RuntimeError(f"ucaas-sandbox did not answer on port {port}")

    def stop(self) -> None:
        stop(self.process)
