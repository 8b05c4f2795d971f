"""What an executor gets to work with, and the exception it raises to wait.

An executor is `async (Exec, payload) -> Outcome`. It reads mappings, calls the UCaaS API
through the right account, and returns what to record; it never writes to the database
itself, so the outcome and its mappings commit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.ucaas import Credentials, UCaaSClient
from service.credentials import CredentialVault
from service.domain.commands import Payload
from service.outbox.outcomes import MappingKey, Outcome
from service.outbox.store import LOGINS, Claim, IdMappingView, OutboxStore

log = logging.getLogger("ucaas_sync.executors")


class WaitForError(Exception):
    """A prerequisite is missing: the command waits with this reason, it does not fail."""


@dataclass(frozen=True)
class TenantAccess:
    """How to act in a tenant: its UCaaS customer id and the account to use.

    `acting_admin` is True when the tenant's own login is unknown and the platform account
    acts for it (it then names the customer on user creation).
    """

    tenant: str
    customer_id: str
    api: UCaaSClient
    acting_admin: bool


@dataclass
class Accounts:
    """The platform account, and per-tenant accounts from the credential registry."""

    platform: UCaaSClient
    store: OutboxStore
    vault: CredentialVault | None
    admin_acts_for_tenants: bool = True
    configured: dict[str, Credentials] = field(default_factory=dict)
    _clients: dict[str, UCaaSClient] = field(default_factory=dict)
    _customers: dict[str, str] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def tenant(self, tenant: str) -> TenantAccess:
        customer_id = await self._customer_id(tenant)
        api = await self._tenant_client(tenant)
        if api is not None:
            return TenantAccess(tenant, customer_id, api, acting_admin=False)
        if not self.admin_acts_for_tenants:
            raise WaitForError(f"no UCaaS login for tenant {tenant}: configure one")
        return TenantAccess(tenant, customer_id, self.platform, acting_admin=True)

    async def _customer_id(self, tenant: str) -> str:
        # A tenant's customer id never changes once made: read it once per process.
        known = self._customers.get(tenant)
        if known is not None:
            return known
        customer = await self.store.mapping(MappingKey("customer", "", tenant))
        if customer is None:
            raise WaitForError(f"tenant {tenant} has no UCaaS customer yet")
        self._customers[tenant] = customer.ucaas_id
        return customer.ucaas_id

    async def _tenant_client(self, tenant: str) -> UCaaSClient | None:
        if tenant in self._clients:
            return self._clients[tenant]
        async with self._lock:
            if tenant in self._clients:
                return self._clients[tenant]
            credentials = self.configured.get(tenant) or await self._stored(tenant)
            if credentials is None:
                return None
            client = self.platform.as_account(credentials)
            self._clients[tenant] = client
            return client

    async def _stored(self, tenant: str) -> Credentials | None:
        if self.vault is None:
            return None
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(sa.select(LOGINS).where(LOGINS.c.tenant == tenant))).first()
        if row is None:
            return None
        return Credentials(row.username, self.vault.open(row.secret))

    def forget(self, tenant: str) -> None:
        """Drop a cached tenant client (after a login was replaced)."""
        self._clients.pop(tenant, None)


@dataclass
class ZoneIds:
    """IANA zone name -> the API's timezone_id, read once from /timezones."""

    api: UCaaSClient
    _ids: dict[str, str] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def id_of(self, zone: str) -> str:
        if self._ids is None:
            async with self._lock:
                if self._ids is None:
                    zones = await self.api.datapool.timezones()
                    self._ids = {z.zone_name: z.timezone_id for z in zones if z.zone_name}
        found = self._ids.get(zone) or self._ids.get("UTC") or self._ids.get("Etc/UTC")
        if found is None:
            raise WaitForError(f"the API knows no time zone {zone}")
        return found


@dataclass
class Exec:
    """One attempt at one command."""

    claim: Claim
    store: OutboxStore
    accounts: Accounts
    zones: ZoneIds

    @property
    def lookup_first(self) -> bool:
        """An earlier attempt may have acted: find the object before creating it. A clean
        first attempt spends no lookup call.

        `in_doubt` alone decides: the attempt count is no guide, since a row released at
        shutdown, or retried uncounted during an outage, is back at attempt 1 although
        its call may have gone out."""
        return self.claim.in_doubt

    @property
    def platform(self) -> UCaaSClient:
        return self.accounts.platform

    async def mapping(self, kind: str, tenant: str, external_id: str) -> IdMappingView | None:
        return await self.store.mapping(MappingKey(kind, tenant, external_id))


Executor = Callable[[Exec, Any], Awaitable[Outcome]]
Registry = dict[str, tuple[type[Payload], Executor]]
