"""Start the project's own commands as subprocesses on free loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.devtools.processes import stop as stop_process

BIN = Path(sys.executable).parent


def wait_http(
    url: str, timeout_s: float = 15.0, process: subprocess.Popen[str] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(url)


def start_sandbox(port: int, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [str(BIN / "ucaas-sandbox"), "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    wait_http(f"http://127.0.0.1:{port}/_sandbox/health", process=process)
    return process


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
    """Stop it (devtools' stop) and return what it printed."""
    stop_process(process, sig)
    return process.stdout.read() if process.stdout else ""
