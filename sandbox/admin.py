"""`/_sandbox/*`: not part of the UCaaS API. State, call counts, reset, faults, clock.

Guarded by the tenant admin's credentials (Basic, or a token from /login).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.auth import authenticate
from sandbox.errors import ApiError, forbidden
from sandbox.faults import Faults
from sandbox.http import Runtime, read_body, send_error, send_json
from sandbox.seed import fresh_store

AdminHandler = Callable[[Runtime, dict[str, Any]], dict[str, Any]]


def state(runtime: Runtime, _: dict[str, Any]) -> dict[str, Any]:
    return runtime.store.to_json(secrets_too=False)


def calls(runtime: Runtime, _: dict[str, Any]) -> dict[str, Any]:
    return {
        "total": sum(runtime.calls.values()),
        "calls": dict(sorted(runtime.calls.items())),
        "faulted": dict(sorted(runtime.faulted.items())),
    }


def reset(runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    """A fresh state (same API id and admin login), no faults, zero counters."""
    old = runtime.store
    admin = old.users[old.user_by_email[runtime.admin_email.lower()]]
    runtime.store = fresh_store(old.api_id, runtime.admin_email, password_hash=admin.password_hash)
    runtime.faults = Faults()
    runtime.calls.clear()
    runtime.faulted.clear()
    return {"result": 1, "msg": "Sandbox state has been reset."}


def faults(runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("reset"):
        runtime.faults = Faults()
        body = {k: v for k, v in body.items() if k != "reset"}
    bad = runtime.faults.update(body)
    if bad:
        raise ApiError(4000, msg=f"Unknown or invalid fault settings: {', '.join(sorted(bad))}.")
    return {"result": 1, "faults": runtime.faults.as_dict()}


def read_faults(runtime: Runtime, _: dict[str, Any]) -> dict[str, Any]:
    return {"result": 1, "faults": runtime.faults.as_dict()}


def clock(runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    """Shift sandbox time (meeting stages, expiries) by `offset_s` seconds from the wall clock."""
    offset = body.get("offset_s", 0)
    if isinstance(offset, bool) or not isinstance(offset, int | float):
        raise ApiError(4000, msg="offset_s must be a number of seconds.")
    runtime.store.clock_offset = timedelta(seconds=offset)
    return {"result": 1, "now": runtime.store.now().isoformat()}


class AdminEndpoint:
    def __init__(self, runtime: Runtime, handler: AdminHandler) -> None:
        self.runtime = runtime
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            user = authenticate(self.runtime.store, Headers(scope=scope))
            if user.user_type != "TA":
                raise forbidden()
            raw = await read_body(receive)
            body = orjson.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ApiError(4000)
            payload = self.handler(self.runtime, body)
        except orjson.JSONDecodeError:
            await send_error(send, ApiError(4000, msg="The request body is not valid JSON."))
            return
        except ApiError as exc:
            await send_error(send, exc)
            return
        await send_json(send, 200, payload)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def admin_routes(runtime: Runtime) -> list[Route]:
    def route(path: str, handler: AdminHandler, method: str) -> Route:
        return Route(path, AdminEndpoint(runtime, handler), methods=[method])

    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        route("/_sandbox/state", state, "GET"),
        route("/_sandbox/calls", calls, "GET"),
        route("/_sandbox/reset", reset, "POST"),
        route("/_sandbox/faults", faults, "POST"),
        route("/_sandbox/faults", read_faults, "GET"),
        route("/_sandbox/clock", clock, "POST"),
    ]
