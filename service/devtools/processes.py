"""Small helpers for the processes the development tools start (broker, sandbox)."""

from __future__ import annotations

import signal
import socket
import subprocess
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout_s: float = 10) -> None:
    """Send it `sig` (SIGTERM: terminate), and kill it if it does not end in `timeout_s`."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
