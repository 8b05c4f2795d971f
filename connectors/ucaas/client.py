"""`UCaaSClient`: a typed async client for the whole UCaaS API.

    async with UCaaSClient(base_url, api_id="...", credentials=Credentials.of(email, pw)) as api:
        customer = await api.customers.get(customer_id)
        async for user in api.users.iterate(UserQuery(search_by="email", search_string=e)):
            ...

One attribute per route group. Connections are pooled and kept alive (aiohttp's pool,
see `wire.py`; pass an httpx `transport=` to go through httpx and it instead, as the
unit tests do); `as_account()` makes a client for other credentials on the same pool.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

import httpx

from connectors.ucaas.auth import Auth, AuthMode, BasicAuth, Credentials, TokenAuth
from connectors.ucaas.core import ApiCore, CallRecord, RetryPolicy
from connectors.ucaas.resources.access import AccessAPI
from connectors.ucaas.resources.contact_groups import ContactGroupsAPI
from connectors.ucaas.resources.contacts import ContactsAPI
from connectors.ucaas.resources.customers import CustomersAPI
from connectors.ucaas.resources.datapool import DatapoolAPI
from connectors.ucaas.resources.meetings import MeetingsAPI
from connectors.ucaas.resources.reports import ReportsAPI
from connectors.ucaas.resources.subscriptions import SubscriptionsAPI
from connectors.ucaas.resources.users import UsersAPI
from connectors.ucaas.wire import AiohttpWire, HttpxWire, Wire

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def make_auth(
    credentials: Credentials | None, mode: AuthMode, token_lifetime_s: float
) -> Auth | None:
    if credentials is None:
        return None
    if mode == "basic":
        return BasicAuth(credentials)
    return TokenAuth(credentials, lifetime_s=token_lifetime_s)


class UCaaSClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_id: str,
        credentials: Credentials | None = None,
        auth_mode: AuthMode = "token",
        token_lifetime_s: float = 15 * 60,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_connections: int = 100,
        retry: RetryPolicy | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        wire: Wire | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_wire = wire is None
        self.wire = wire or _wire(self.base_url, timeout, max_connections, transport)
        self._settings = (api_id, auth_mode, token_lifetime_s, retry, on_call)
        self.auth = make_auth(credentials, auth_mode, token_lifetime_s)
        core = ApiCore(self.wire, api_id=api_id, auth=self.auth, retry=retry, on_call=on_call)
        self.core = core
        self.access = AccessAPI(core)
        self.customers = CustomersAPI(core)
        self.subscriptions = SubscriptionsAPI(core)
        self.users = UsersAPI(core)
        self.meetings = MeetingsAPI(core)
        self.contacts = ContactsAPI(core)
        self.contact_groups = ContactGroupsAPI(core)
        self.datapool = DatapoolAPI(core)
        self.reports = ReportsAPI(core)

    def as_account(
        self, credentials: Credentials, auth_mode: AuthMode | None = None
    ) -> UCaaSClient:
        """A client for other credentials on the same connection pool (closing it is a no-op)."""
        api_id, mode, lifetime, retry, on_call = self._settings
        return UCaaSClient(
            self.base_url,
            api_id=api_id,
            credentials=credentials,
            auth_mode=auth_mode or mode,
            token_lifetime_s=lifetime,
            retry=retry,
            on_call=on_call,
            wire=self.wire,
        )

    async def aclose(self) -> None:
        if self._owns_wire:
            await self.wire.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


_HEADERS = {"Accept": "application/json", "User-Agent": "ucaas-sync/0.1"}


def _wire(
    base_url: str,
    timeout: httpx.Timeout | float,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None,
) -> Wire:
    timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    if transport is None:
        return AiohttpWire(
            base_url, timeout=timeout, max_connections=max_connections, headers=_HEADERS
        )
    limits = httpx.Limits(max_connections=max_connections, keepalive_expiry=30.0)
    http = httpx.AsyncClient(
        base_url=base_url, timeout=timeout, limits=limits, headers=_HEADERS, transport=transport
    )
    return HttpxWire(http)
