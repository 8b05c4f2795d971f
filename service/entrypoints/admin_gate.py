"""Who is asking the admin API, and may they: an ASGI layer in front of the FastAPI app.

It runs before routing and before a byte of the body is read, so a caller without a
valid token learns nothing (not even whether its JSON would parse) and cannot make the
server read a large body: 401 first, then the role (403), then the body's size (413).
Every refusal is a JSON `{"detail": "..."}`, the shape the OpenAPI document gives it.

Roles: a `reader` may GET (and HEAD) everything behind the token; an `operator` may also
change state (every other method). The pure parts (`Keyring`, `needed_role`) decide; the
`AdminGate` only reads the request and answers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from service.outbox.audit import Actor, Role

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Refused = Callable[[Actor, str, str], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024  # the largest action body is a few hundred bytes
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/", "/docs"})
# the page shells' assets: files only, no data (StaticFiles never leaves its folder)
OPEN_PREFIXES = ("/static/", "/swagger-ui/")
READ_METHODS = frozenset({"GET", "HEAD"})
ANONYMOUS = Actor("anonymous", "operator")  # no token configured: loopback only
UNAUTHORIZED = "a valid bearer token is needed (Authorization: Bearer ...)"
FORBIDDEN = "this token may only read: the action needs an operator token"
TOO_LARGE = f"the body is larger than {MAX_BODY_BYTES} bytes"
BAD_LENGTH = "Content-Length is not a number"


def _digest(secret: str) -> bytes:
    # equal lengths for compare_digest, whatever the tokens' lengths
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Keyring:
    """The configured tokens, by digest; empty: the API is open (on loopback only)."""

    keys: tuple[tuple[bytes, Actor], ...]

    @classmethod
    def of(cls, named: Iterable[tuple[str, str, str]]) -> Keyring:
        keys = []
        for name, role, secret in named:
            keys.append(
                (_digest(secret), Actor(name, "operator" if role == "operator" else "reader"))
            )
        return cls(tuple(keys))

    def identify(self, authorization: str | None) -> Actor | None:
        """The token's actor, or None. Every key is compared, whichever matches, so the
        time taken says nothing about which token (or how much of one) was right."""
        if not self.keys:
            return ANONYMOUS
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        digest = _digest(given.strip())
        found: Actor | None = None
        for key, actor in self.keys:
            if secrets.compare_digest(key, digest) and found is None:
                found = actor
        return found


def needed_role(method: str, path: str) -> Role | None:
    """None: open (health and the page shells); reader: reading; operator: the rest."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    return "reader" if method in READ_METHODS else "operator"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def problem(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class AdminGate:
    """Authenticates, authorises and caps the body; puts the actor in `scope["state"]`."""

    def __init__(
        self,
        app: ASGIApp,
        keyring: Keyring,
        on_refused: Refused | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.on_refused = on_refused
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = str(scope["method"]), str(scope["path"])
        needed = needed_role(method, path)
        if needed is not None:
            actor = self.keyring.identify(_header(scope, b"authorization"))
            if actor is None:
                challenge = {"WWW-Authenticate": 'Bearer realm="ucaas-sync"'}
                await problem(send, 401, UNAUTHORIZED, challenge)
                return
            if needed == "operator" and actor.role != "operator":
                if self.on_refused is not None:
                    query = bytes(scope.get("query_string", b"")).decode("latin-1")
                    await self.on_refused(actor, method, path + (f"?{query}" if query else ""))
                await problem(send, 403, FORBIDDEN)
                return
            scope.setdefault("state", {})["actor"] = actor
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await problem(send, 400, BAD_LENGTH)
                return
            if int(length) > self.max_body:
                await problem(send, 413, TOO_LARGE)
                return
        if method in READ_METHODS:
            await self.app(scope, receive, send)  # the app never reads a GET's body
            return
        # Read the body here, up to the cap, so a chunked upload without a length is cut
        # off too; the app then gets it from memory.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_body:
                await problem(send, 413, TOO_LARGE)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
