"""Run the UCaaS sandbox on a free loopback port, and drive its /_sandbox admin routes."""

from __future__ import annotations

import base64
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from sandbox.app import create_app
from sandbox.http import API_PREFIX, Runtime
from sandbox.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, DEFAULT_API_ID, fresh_store

ADMIN_AUTH = (DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD)


def basic(email: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()


class SandboxServer:
    """uvicorn in a thread of its own, bound to a socket we opened (so the port is known)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.root = f"http://127.0.0.1:{port}"
        self.base_url = self.root + API_PREFIX
        runtime = Runtime(store=fresh_store(), public_url=self.root)
        config = uvicorn.Config(
            create_app(runtime), log_level="critical", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.http = httpx.Client(timeout=10)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> SandboxServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        self.http.close()


@dataclass
class SandboxAdmin:
    """The /_sandbox routes over real HTTP, plus raw API calls for test set-up."""

    root: str
    base_url: str
    api_id: str = DEFAULT_API_ID
    # One pooled client for every set-up call: building an httpx.Client per call (TLS
    # context and all) cost more than the calls themselves.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def _admin(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        response = self.http.request(
            method, f"{self.root}/_sandbox/{path}", json=json, auth=ADMIN_AUTH
        )
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._admin("POST", "reset")

    def state(self) -> dict[str, Any]:
        return self._admin("GET", "state")  # type: ignore[no-any-return]

    def calls(self) -> dict[str, Any]:
        return self._admin("GET", "calls")  # type: ignore[no-any-return]

    def faults(self, **settings: Any) -> dict[str, Any]:
        return self._admin("POST", "faults", settings)  # type: ignore[no-any-return]

    def clock(self, offset_s: float) -> None:
        self._admin("POST", "clock", {"offset_s": offset_s})

    def api(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        *,
        auth: tuple[str, str] = ADMIN_AUTH,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """A raw API call (no client code involved), for set-up and negative tests."""
        return self.http.request(
            method,
            self.base_url + path,
            json=json,
            params=params,
            headers={"X-Api-Id": self.api_id, "Authorization": basic(*auth), **(headers or {})},
        )
