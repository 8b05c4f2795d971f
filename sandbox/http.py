"""How a route group declares its operations, and the ASGI endpoint that runs them.

A route module lists `Op`s. Ops that share a method and path (licence assign and revoke on
`PATCH /users/{user_id}`, say) differ by `when`, a test on the request's headers or body,
and carry a `variant` so `/_sandbox/calls` counts them apart.

One endpoint per path does, in order: count the call, apply injected faults, read the
body, check the API id and credentials, run the handler, and answer JSON. Handlers are
plain functions of a `Ctx`: the state is in memory, so they never need to await.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartParser
from starlette.types import Receive, Scope, Send

from sandbox.auth import authenticate, check_api_id
from sandbox.errors import ApiError
from sandbox.faults import Faults
from sandbox.state import Store, User

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("sandbox")
MAX_BODY = 8 * 1024 * 1024
API_PREFIX = "/ucaas/v1"
# The code an injected error answers with, by its status.
FAULT_CODES = {400: 4000, 401: 4010, 403: 4030, 404: 4040, 429: 4290, 503: 5030}


@dataclass
class Ctx:
    store: Store
    method: str
    path_params: dict[str, str]
    query: dict[str, str]
    headers: Headers
    body: dict[str, Any]
    files: dict[str, tuple[str, bytes]]
    public_url: str
    token_lifetime_s: float = 900.0
    user: User | None = None

    @property
    def actor(self) -> User:
        assert self.user is not None, "route declared public but reads the caller"
        return self.user

    def app_type(self) -> str:
        """The X-App-Type header (vc or wb); meetings routes default to vc when absent."""
        value = (self.headers.get("x-app-type") or "vc").strip().lower()
        if value not in ("vc", "wb"):
            raise ApiError(1699, "X-App-Type")
        return value


Handler = Callable[[Ctx], dict[str, Any]]


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    handler: Handler
    public: bool = False
    variant: str | None = None
    when: Callable[[Ctx], bool] | None = None

    @property
    def label(self) -> str:
        base = f"{self.method} {self.path}"
        return f"{base} [{self.variant}]" if self.variant else base


def header_variants(
    method: str,
    path: str,
    headers: tuple[str, ...],
    variants: Mapping[str, Handler],
    otherwise: Handler,
) -> list[Op]:
    """Operations that share a method and path and differ by a header's value.

    The reference picks the operation with `X-License` (licences, group members) or
    `X-Action` (PIN reset). `headers` lists the header names read, first one named in
    labels; without any of them `otherwise` runs; any other value answers 400 / 4000.
    """
    label = headers[0].title()

    def value(ctx: Ctx) -> str:
        return next((v for h in headers if (v := (ctx.headers.get(h) or "").strip().lower())), "")

    def unknown(ctx: Ctx) -> dict[str, Any]:
        allowed = " or ".join(variants)
        raise ApiError(4000, label, msg=f"{label} must be {allowed}, or absent.")

    def chosen(name: str) -> Callable[[Ctx], bool]:
        return lambda ctx: value(ctx) == name

    ops = [
        Op(method, path, handler, variant=f"{label}: {name}", when=chosen(name))
        for name, handler in variants.items()
    ]
    ops.append(Op(method, path, otherwise, when=lambda c: not value(c)))
    ops.append(Op(method, path, unknown, variant=f"{label}: ?"))
    return ops


@dataclass
class Runtime:
    """What every endpoint shares: the state, the faults, the counters, the settings."""

    store: Store
    faults: Faults = field(default_factory=Faults)
    calls: Counter[str] = field(default_factory=Counter)
    faulted: Counter[str] = field(default_factory=Counter)
    public_url: str = "http://127.0.0.1:8900"
    admin_email: str = "admin@sandbox.test"


def json_response_parts(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], bytes]:
    body = orjson.dumps(payload)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    for key, value in (headers or {}).items():
        raw_headers.append((key.lower().encode(), value.encode()))
    return {"type": "http.response.start", "status": status, "headers": raw_headers}, body


async def send_json(
    send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> None:
    start, body = json_response_parts(status, payload, headers)
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: ApiError) -> None:
    await send_json(send, error.status, error.body(), error.headers)


async def drop_connection(send: Send) -> None:
    """Headers promise a body that never comes: the server then closes the connection.

    The caller returns right after; uvicorn sees an incomplete response and closes the
    socket, so the client gets a broken answer, as from a connection that died.
    """
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
    )


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(4000, status=413, msg="The request body is too large.")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def parse_body(
    headers: Headers, raw: bytes
) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """JSON, or multipart/form-data with the JSON document in a part named `data`."""
    content_type = headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _parse_multipart(headers, raw)
    if not raw.strip():
        return {}, {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(4000, msg="The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(4000)
    return body, {}


async def _parse_multipart(
    headers: Headers, raw: bytes
) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    async def stream() -> Any:
        yield raw

    form = await MultiPartParser(headers, stream()).parse()
    body: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            if key == "data":
                try:
                    parsed = orjson.loads(value)
                except orjson.JSONDecodeError:
                    raise ApiError(4000, msg="The `data` part is not valid JSON.") from None
                if isinstance(parsed, dict):
                    body.update(parsed)
            else:
                body[key] = value
        else:
            files[key] = (value.filename or key, await value.read())
    return body, files


class Endpoint:
    """The ASGI app behind one path: picks the op by method (and `when`), runs it."""

    def __init__(self, runtime: Runtime, ops: Sequence[Op]) -> None:
        self.runtime = runtime
        self.ops: dict[str, list[Op]] = {}
        for op in ops:
            self.ops.setdefault(op.method, []).append(op)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        store = runtime.store
        headers = Headers(scope=scope)
        try:
            raw = await read_body(receive)
            body, files = await parse_body(headers, raw)
        except ApiError as exc:
            await send_error(send, exc)
            return
        ctx = Ctx(
            store=store,
            method=scope["method"],
            path_params=scope.get("path_params", {}),
            query=dict(parse_qsl(scope.get("query_string", b"").decode())),
            headers=headers,
            body=body,
            files=files,
            public_url=runtime.public_url,
            token_lifetime_s=runtime.faults.token_lifetime_s,
        )
        candidates = self.ops.get(ctx.method, [])
        op = next((o for o in candidates if o.when is None or o.when(ctx)), candidates[-1])
        runtime.calls[op.label] += 1

        faults = runtime.faults
        drop: str | None = None
        if faults.applies(op.label):
            delay = faults.delay_s()
            if delay:
                await asyncio.sleep(delay)
            retry_after = faults.rate_limited()
            if retry_after is not None:
                runtime.faulted[op.label] += 1
                await send_error(
                    send, ApiError(4290, status=429, headers={"Retry-After": str(retry_after)})
                )
                return
            status = faults.error()
            if status is not None:
                runtime.faulted[op.label] += 1
                code = FAULT_CODES.get(status, 5000 if status >= 500 else 4000)
                msg = f"Injected fault: HTTP {status}."
                await send_error(send, ApiError(code, status=status, msg=msg))
                return
            drop = faults.drop()
            if drop == "before":
                runtime.faulted[op.label] += 1
                await drop_connection(send)
                return

        try:
            check_api_id(store, headers, required=op.public)
            if not op.public:
                ctx.user = authenticate(store, headers)
            payload = op.handler(ctx)
        except ApiError as exc:
            if drop == "after":
                runtime.faulted[op.label] += 1
                await drop_connection(send)
                return
            await send_error(send, exc)
            return
        except Exception:
            log.exception("handler failed: %s", op.label)
            await send_error(send, ApiError(5000, status=500))
            return
        if ctx.method != "GET":
            store.dirty = True
        if drop == "after":
            runtime.faulted[op.label] += 1
            await drop_connection(send)
            return
        await send_json(send, 200, payload)
