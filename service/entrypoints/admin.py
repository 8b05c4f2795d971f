"""The admin HTTP server: the FastAPI app of `admin_api.py` under uvicorn, on the loop the
rest of the service runs on.

The socket is bound here rather than by uvicorn, so a port in use raises `OSError` from
`start()` (uvicorn would `sys.exit`) and port 0 gives a free port whose number `url`
reports. Signals stay with the runner: uvicorn's own handlers would replace the runner's
SIGTERM handler and swallow the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from service.entrypoints.admin_api import create_app
from service.entrypoints.admin_host import refuse_open_admin

if TYPE_CHECKING:
    from service.entrypoints.admin_host import RunningService

log = logging.getLogger("ucaas_sync.admin")

GRACEFUL_S = 5  # a browser's keep-alive or a slow scrape does not hold up a shutdown


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the runner owns SIGTERM and SIGINT


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class AdminServer:
    """`start()` binds and serves in the background; `stop()` finishes open requests."""

    def __init__(self, running: RunningService) -> None:
        self.running = running
        self.settings = running.settings.admin
        self.app = create_app(running)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._address: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        if self._address is None:
            raise RuntimeError("the admin server is not started")
        host, port = self._address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    async def start(self) -> None:
        refuse_open_admin(self.settings)  # the runner checks too; this guards other callers
        sock = _bind(self.settings.host, self.settings.port)
        self._address = (self.settings.host, int(sock.getsockname()[1]))
        config = uvicorn.Config(
            self.app,
            log_config=None,  # the service's logging stays as configured
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_S,
            server_header=False,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="admin")
        while not self._server.started:
            if self._task.done():
                sock.close()
                self._task.result()  # raises what stopped it
                raise RuntimeError("the admin server stopped while starting")
            await asyncio.sleep(0.01)
        log.info("admin API on %s", self.url)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), GRACEFUL_S + 2)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        finally:
            self._server = None
            self._task = None
