"""`UCaaSClient`: a typed async client for the whole UCaaS API.

    async with UCaaSClient(base_url, api_id="...", credentials=Credentials.of(email, pw)) as api:
        customer = await api.customers.get(customer_id)
        async for user in api.users.iterate(UserQuery(search_by="email", search_string=e)):
            ...

One attribute per route group. Connections are pooled and kept alive (by aiohttp's pool
behind an httpx transport, see `transport.py`; pass `transport=` to use another, as the
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
from connectors.ucaas.transport import AiohttpTransport

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
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_http = http is None
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        )
        self.http = http or httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            limits=limits,
            headers={"Accept": "application/json", "User-Agent": "ucaas-sync/0.1"},
            transport=transport or AiohttpTransport(limits),
        )
        self._settings = (api_id, auth_mode, token_lifetime_s, retry, on_call)
        self.auth = make_auth(credentials, auth_mode, token_lifetime_s)
        core = ApiCore(self.http, api_id=api_id, auth=self.auth, retry=retry, on_call=on_call)
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
            str(self.http.base_url),
            api_id=api_id,
            credentials=credentials,
            auth_mode=auth_mode or mode,
            token_lifetime_s=lifetime,
            retry=retry,
            on_call=on_call,
            http=self.http,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
