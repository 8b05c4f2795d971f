"""The sandbox's ASGI application: the UCaaS API under /ucaas/v1, and /_sandbox/*."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from sandbox.admin import admin_routes
from sandbox.api import all_ops
from sandbox.errors import ApiError
from sandbox.http import API_PREFIX, Endpoint, Op, Runtime

log = logging.getLogger("sandbox")

# The reference spells some routes two ways; the canonical spelling is on the left.
ALIASES = (
    ("/meetings", "/meeting"),
    ("/sessions/join", "/session/join"),
    ("/contacts/", "/contact/"),
    ("/branding", "/branding/"),
)


def aliases_of(path: str) -> list[str]:
    return [
        alias + path[len(canonical) :] for canonical, alias in ALIASES if path.startswith(canonical)
    ]


def api_routes(runtime: Runtime, ops: list[Op]) -> list[Route]:
    by_path: dict[str, list[Op]] = {}
    for op in ops:
        by_path.setdefault(op.path, []).append(op)
    routes: list[Route] = []
    for path, path_ops in by_path.items():
        endpoint = Endpoint(runtime, path_ops)
        methods = sorted({op.method for op in path_ops})
        for spelling in (path, *aliases_of(path)):
            routes.append(Route(spelling, endpoint, methods=methods, name=path))
    return routes


async def _error_response(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: 4040, 405: 4050}.get(status, 5000)
    error = ApiError(code, status=status, msg="No such route." if status == 404 else None)
    return Response(orjson.dumps(error.body()), status_code=status, media_type="application/json")


def create_app(
    runtime: Runtime, state_path: Path | None = None, save_every_s: float = 1.0
) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        saver = (
            asyncio.create_task(_save_loop(runtime, state_path, save_every_s))
            if state_path
            else None
        )
        try:
            yield
        finally:
            if saver:
                saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saver
                runtime.store.save(state_path)  # type: ignore[arg-type]

    app = Starlette(
        routes=[
            Mount(API_PREFIX, routes=api_routes(runtime, all_ops())),
            *admin_routes(runtime),
        ],
        exception_handlers={404: _error_response, 405: _error_response},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


async def _save_loop(runtime: Runtime, path: Path | None, every_s: float) -> None:
    assert path is not None
    while True:
        await asyncio.sleep(every_s)
        if runtime.store.dirty:
            try:
                runtime.store.save(path)
            except OSError:
                log.exception("could not save sandbox state to %s", path)
