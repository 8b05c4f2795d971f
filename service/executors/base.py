"""What an executor gets to work with, and the exception it raises to wait.

An executor is `async (Exec, payload) -> Outcome`. It reads mappings, calls the UCaaS API
through the right account, and returns what to record; it never writes to the database
itself, so the outcome and its mappings commit together.

Customer and user mappings and tenant logins are kept in memory (mappings.CACHED_KINDS), and
reconcile may replace them from any process. Rather than a database read per command to
check a copy, an answer that a replaced id or login explains (404, an unknown customer id,
a refused login) makes `healing` compare what the attempt used with the database; when
something was replaced, the copies are brought up to date and the executor runs once more
from the database. Executors that take a 404 to mean "already gone" ask `recheck` first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.ucaas import (
    ApiError,
    AuthenticationError,
    Credentials,
    ForbiddenError,
    NotFoundError,
    UCaaSClient,
    UCaaSError,
)
from service.domain.commands import Payload
from service.outbox.claims import Claim
from service.outbox.mappings import CACHED_KINDS, IdMappingView
from service.outbox.outcomes import MappingKey, Outcome, WaitForError
from service.outbox.ports import MappingReader

log = logging.getLogger("ucaas_sync.executors")


class ReplacedError(Exception):
    """An id or login this attempt used from memory has been replaced in the database."""


UNKNOWN_CUSTOMER = 1234  # a customer id in the body is not one the caller sees


def replacement_explains(exc: UCaaSError) -> bool:
    """Answers an id or login that has been replaced would give."""
    if isinstance(exc, NotFoundError | AuthenticationError | ForbiddenError):
        return True
    return isinstance(exc, ApiError) and UNKNOWN_CUSTOMER in exc.codes


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
    """The platform account, and per-tenant accounts: configured, or stored (captured from
    create_customer's answer)."""

    platform: UCaaSClient
    store: MappingReader
    admin_acts_for_tenants: bool = True
    configured: dict[str, Credentials] = field(default_factory=dict)
    # tenant -> the stored login and its client; the customer id is the store's copy
    _clients: dict[str, tuple[Credentials, UCaaSClient]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def tenant(self, tenant: str, *, fresh: bool = False) -> TenantAccess:
        """`fresh`: the customer id and the login from the database, not from memory."""
        customer = await self.store.mapping(MappingKey("customer", "", tenant), fresh=fresh)
        if customer is None:
            raise WaitForError(f"tenant {tenant} has no UCaaS customer yet")
        if fresh:
            await self.refresh(tenant)
        api = await self._tenant_client(tenant)
        if api is not None:
            return TenantAccess(tenant, customer.ucaas_id, api, acting_admin=False)
        if not self.admin_acts_for_tenants:
            raise WaitForError(f"no UCaaS login for tenant {tenant}: configure one")
        return TenantAccess(tenant, customer.ucaas_id, self.platform, acting_admin=True)

    async def _tenant_client(self, tenant: str) -> UCaaSClient | None:
        if tenant in self._clients:
            return self._clients[tenant][1]
        async with self._lock:
            if tenant in self._clients:
                return self._clients[tenant][1]
            credentials = self.configured.get(tenant) or await self.store.stored_login(tenant)
            return self._client(tenant, credentials) if credentials else None

    def _client(self, tenant: str, credentials: Credentials) -> UCaaSClient:
        known = self._clients.get(tenant)
        if known is None or known[0] != credentials:
            known = (credentials, self.platform.as_account(credentials))
            self._clients[tenant] = known
        return known[1]

    async def refresh(self, tenant: str) -> UCaaSClient | None:
        """Read the tenant's stored login again (a re-created customer's login replaces the
        one in use): the client for it from now on, or None when there is none."""
        if tenant not in self.configured:
            async with self._lock:
                stored = await self.store.stored_login(tenant)
                if stored is None:
                    self._clients.pop(tenant, None)
                else:
                    self._client(tenant, stored)
        return await self._tenant_client(tenant)

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
    store: MappingReader
    accounts: Accounts
    zones: ZoneIds
    fresh: bool = False  # the attempt again after a replacement: read the database only
    # What this attempt read of what is kept in memory, to compare after a telling answer.
    used: dict[MappingKey, str] = field(default_factory=dict)
    apis: dict[str, UCaaSClient] = field(default_factory=dict)  # tenant -> the client used

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

    async def mapping(
        self, kind: str, tenant: str, external_id: str, *, fresh: bool = False
    ) -> IdMappingView | None:
        """`fresh` for a create's "already mapped" check: a copy in memory may point at an
        object reconcile has since forgotten, and a new object's key is not kept anyway."""
        key = MappingKey(kind, tenant, external_id)
        return self._note(await self.store.mapping(key, fresh=fresh or self.fresh))

    async def mapping_by_natural(
        self, kind: str, tenant: str, natural_key: str
    ) -> IdMappingView | None:
        found = await self.store.mapping_by_natural(kind, tenant, natural_key, fresh=self.fresh)
        return self._note(found)

    async def tenant(self, tenant: str) -> TenantAccess:
        access = await self.accounts.tenant(tenant, fresh=self.fresh)
        self.used[MappingKey("customer", "", tenant)] = access.customer_id
        self.apis[tenant] = access.api
        return access

    def _note(self, found: IdMappingView | None) -> IdMappingView | None:
        if found is not None and found.key.kind in CACHED_KINDS:
            self.used[found.key] = found.ucaas_id
        return found

    async def replaced(self) -> bool:
        """Did the database replace an id or login this attempt used? The copies in memory
        are brought up to date either way. Database reads on an error path only."""
        changed = False
        for key, used in list(self.used.items()):
            now = await self.store.mapping(key, fresh=True)
            changed |= now is None or now.ucaas_id != used
        for tenant, api in self.apis.items():
            # Compared with what this attempt used: another may have taken the new login up.
            changed |= (await self.accounts.refresh(tenant) or self.platform) is not api
        return changed

    async def recheck(self) -> None:
        """Before a 404 is taken to mean "already gone": raise ReplacedError when it may only
        mean that this attempt used a replaced id (then `healing` runs it again)."""
        if not self.fresh and await self.replaced():
            raise ReplacedError

    def again(self) -> Exec:
        return Exec(self.claim, self.store, self.accounts, self.zones, fresh=True)


Executor = Callable[[Exec, Any], Awaitable[Outcome]]
Registry = dict[str, tuple[type[Payload], Executor]]


def healing(executor: Executor) -> Executor:
    """Run `executor`; after an answer that a replaced id or login explains, and only if
    the database did replace one this attempt used, once more from the database."""

    async def run(x: Exec, payload: Any) -> Outcome:
        try:
            return await executor(x, payload)
        except ReplacedError:
            pass
        except UCaaSError as exc:
            if x.fresh or not replacement_explains(exc) or not await x.replaced():
                raise
        log.info("command %s: ids or login replaced meanwhile; once more", x.claim.id)
        return await executor(x.again(), payload)

    return run
