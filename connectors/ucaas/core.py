"""One HTTP call to the UCaaS API: headers, auth, error mapping, the call hook, retries.

The calls go out through a `Wire` (wire.py); the httpx transport is the test seam: pass
`transport=` to the client to run against anything.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson
import stamina
from pydantic import BaseModel, SecretStr, ValidationError

from connectors.ucaas.auth import Auth
from connectors.ucaas.errors import (
    ApiErrorDetail,
    ProtocolError,
    RateLimitedError,
    RetryableError,
    TransportError,
    error_class,
)
from connectors.ucaas.models.base import ListQuery, Page
from connectors.ucaas.wire import Answer, Wire, multipart

log = logging.getLogger("ucaas_sync.ucaas")
M = TypeVar("M", bound=BaseModel)
Json = dict[str, Any]


@dataclass(frozen=True)
class CallRecord:
    """What the call hook receives: enough for a call log, nothing secret."""

    method: str
    route: str
    path: str
    status: int | None
    code: int | None
    latency_s: float
    error: str | None
    started_at: datetime  # wall clock, UTC


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded in attempts and in time. Applies to reads, to 429s and to calls never sent;
    a write that may have been processed is never repeated here (the caller reconciles)."""

    attempts: int = 3
    timeout_s: float = 30.0
    wait_initial_s: float = 0.1
    wait_max_s: float = 5.0


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _ambiguous(exc: httpx.TransportError) -> bool:
    """Could the server have acted on the request? Not if we never connected."""
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class ApiCore:
    def __init__(
        self,
        wire: Wire,
        *,
        api_id: str,
        auth: Auth | None,
        retry: RetryPolicy | None,
        on_call: Callable[[CallRecord], None] | None,
    ) -> None:
        self.wire = wire
        self.api_id = api_id
        self.auth = auth
        self.retry = retry
        self.on_call = on_call

    async def login(self, email: str, password: SecretStr) -> str:
        body = await self.request(
            "POST",
            "/login",
            json={"email": email, "password": password.get_secret_value()},
            authenticated=False,
        )
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError(
                method="POST", route="/login", status=200, code=None, api_message="no token"
            )
        return token

    async def call(
        self,
        model: type[M],
        method: str,
        route: str,
        *,
        key: str | None = None,
        **kwargs: Any,
    ) -> M:
        """`request`, then validate the body (or its `key` member) as `model`."""
        body = await self.request(method, route, **kwargs)
        return self.parse(model, body.get(key) if key else body, method, route)

    @staticmethod
    def parse(model: type[M], data: Any, method: str, route: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ProtocolError(
                method=method,
                route=route,
                status=200,
                code=None,
                api_message=f"unexpected answer: {exc.error_count()} field(s) invalid",
            ) from None

    async def request(
        self,
        method: str,
        route: str,
        *,
        path: Mapping[str, str] | None = None,
        json: Json | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
        authenticated: bool = True,
    ) -> Json:
        """Send one call; return the JSON body of a success, raise an `errors` class else."""
        url = route.format(**{k: quote(v, safe="") for k, v in (path or {}).items()})
        policy = self.retry
        if policy is None or policy.attempts <= 1:
            return await self._send(method, route, url, json, params, headers, files, authenticated)

        def retry_on(exc: Exception) -> bool | float:
            if not isinstance(exc, RetryableError):
                return False
            safe = method == "GET" or (isinstance(exc, TransportError) and not exc.ambiguous)
            if isinstance(exc, RateLimitedError):
                return exc.retry_after if exc.retry_after is not None else True
            return safe

        async for attempt in stamina.retry_context(
            on=retry_on,
            attempts=policy.attempts,
            timeout=policy.timeout_s,
            wait_initial=policy.wait_initial_s,
            wait_max=policy.wait_max_s,
        ):
            with attempt:
                return await self._send(
                    method, route, url, json, params, headers, files, authenticated
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        route: str,
        url: str,
        json: Json | None,
        params: Mapping[str, Any] | None,
        extra: Mapping[str, str] | None,
        files: Mapping[str, tuple[str, bytes]] | None,
        authenticated: bool,
    ) -> Json:
        headers = {"X-Api-Id": self.api_id, **(extra or {})}
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        for attempt in (1, 2):
            auth_header = None
            if authenticated and self.auth is not None:
                auth_header = await self.auth.header(self.login)
                headers["Authorization"] = auth_header
            answer, body = await self._exchange(method, route, url, json, query, headers, files)
            if (
                answer.status == 401
                and attempt == 1
                and auth_header is not None
                and self.auth is not None
                and self.auth.invalidate(auth_header)
            ):
                log.info("ucaas %s %s: 401, logging in again", method, route)
                continue
            return self._result(method, route, answer, body)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self,
        method: str,
        route: str,
        url: str,
        json: Json | None,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        files: Mapping[str, tuple[str, bytes]] | None,
    ) -> tuple[Answer, Any]:
        sent, content = dict(headers), None
        if files:
            content, sent["Content-Type"] = multipart({"data": _dumps(json or {})}, files)
        elif json is not None:
            content, sent["Content-Type"] = orjson.dumps(json), "application/json"
        started = time.perf_counter()
        try:
            answer = await self.wire.send(method, url, query=query, headers=sent, content=content)
        except httpx.TransportError as exc:
            reason = type(exc).__name__
            self._record(method, route, url, None, None, started, reason)
            raise TransportError(method, route, reason, ambiguous=_ambiguous(exc)) from None
        try:
            body = orjson.loads(answer.content) if answer.content else None
        except orjson.JSONDecodeError:
            body = None
        code = (
            _int_or_none(body.get("code"))
            if isinstance(body, dict) and not answer.is_success
            else None
        )
        self._record(method, route, url, answer.status, code, started, None)
        return answer, body

    def _record(
        self,
        method: str,
        route: str,
        url: str,
        status: int | None,
        code: int | None,
        started: float,
        error: str | None,
    ) -> None:
        latency = time.perf_counter() - started
        log.debug("ucaas %s %s -> %s %s (%.1f ms)", method, route, status, code, latency * 1000)
        if self.on_call is not None:
            started_at = datetime.now(UTC) - timedelta(seconds=latency)
            self.on_call(CallRecord(method, route, url, status, code, latency, error, started_at))

    def _result(self, method: str, route: str, answer: Answer, body: Any) -> Json:
        if answer.is_success and isinstance(body, dict) and body.get("result", 1) != 0:
            return body
        details: tuple[ApiErrorDetail, ...] = ()
        code: int | None = None
        message = answer.reason or "error"
        if isinstance(body, dict):
            code = _int_or_none(body.get("code"))
            message = str(body.get("msg") or body.get("desc") or message)
            details = tuple(
                ApiErrorDetail(_int_or_none(e.get("code")), e.get("field"), str(e.get("msg", "")))
                for e in body.get("errors") or []
                if isinstance(e, dict)
            )
        elif answer.is_success:
            raise ProtocolError(
                method=method,
                route=route,
                status=answer.status,
                code=None,
                api_message="the answer is not a JSON object",
            )
        cls = error_class(answer.status, code)
        raise cls(
            method=method,
            route=route,
            status=answer.status,
            code=code,
            api_message=message,
            errors=details,
            retry_after=parse_retry_after(answer.headers.get("retry-after")),
        )

    # -- lists ----------------------------------------------------------------
    async def page(
        self,
        route: str,
        key: str,
        model: type[M],
        query: ListQuery | None,
        *,
        path: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Page[M]:
        params = query.params() if query else {}
        body = await self.request("GET", route, path=path, params=params, headers=headers)
        items = [self.parse(model, row, "GET", route) for row in body.get(key) or []]
        return Page[M](items=items, search=body.get("search") or {})

    async def iterate(
        self,
        route: str,
        key: str,
        model: type[M],
        query: ListQuery | None,
        *,
        path: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[M]:
        """Every item of every page, from `query.page` on (default: page 1, 100 a page)."""
        base = query or ListQuery()
        page_number = base.page or 1
        page_length = base.page_length or 100
        while True:
            current = base.model_copy(update={"page": page_number, "page_length": page_length})
            page = await self.page(route, key, model, current, path=path, headers=headers)
            for item in page.items:
                yield item
            if len(page.items) < page_length or page_number >= page.pages(default=page_number + 1):
                return
            page_number += 1


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _dumps(value: Json) -> str:
    return orjson.dumps(value).decode()
