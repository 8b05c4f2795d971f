"""Per-tenant rate limits: a token bucket per tenant, spent when a claim takes its commands.

A provider that limits calls per account answers 429 to the whole tenant once it is over;
the breaker then pauses every claim (all tenants) for `Retry-After`. Keeping each tenant
under its limit on this side avoids that.

Why at claim time, and not just before the UCaaS call: a worker that waited for its
tenant's budget would hold its slot and its lease while it waited. With a burst of one
throttled tenant every worker would sit waiting on that tenant's bucket, and the other
tenants' commands would queue behind it again, which is what fair claims are for. A claim
takes no more of a tenant's commands than its budget allows, so the workers stay free for
the others.

A command is charged one call when claimed; when its outcome is recorded the charge is
settled against the calls it made (a lookup before creating adds one, a command that made
no call gives its token back), so the bucket tracks calls, not commands.

Buckets live in each dispatcher process. With several processes each takes
`1 / processes` of the limit (the setting says how many share it): the sum never goes
over the account's limit; an idle process leaves its share unused. A bucket shared
through the database would be exact, but every claim of a limited tenant would then
lock one row that all dispatchers contend for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from service.settings import DispatcherSettings


class TenantRates:
    """Token buckets of the tenants with a limit; tenants without one are never asked."""

    def __init__(
        self, settings: DispatcherSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        share = 1.0 / settings.processes
        self._default = settings.tenant_calls_per_s * share
        self._rates = {t: r * share for t, r in settings.tenant_limits.items()}
        # tenant -> (tokens, when counted); a new bucket starts full
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def limited(self) -> bool:
        return self._default > 0 or any(r > 0 for r in self._rates.values())

    def rate(self, tenant: str) -> float:
        """Calls per second this process may make for `tenant`; 0: no limit."""
        return self._rates.get(tenant, self._default)

    def budget(self, tenant: str) -> int | None:
        """Commands of `tenant` a claim may take now (None: no limit)."""
        rate = self.rate(tenant)
        if rate <= 0:
            return None
        return max(0, int(self._tokens(tenant, rate)))

    def spent(self) -> set[str]:
        """The tenants whose budget is used up now."""
        return {t for t in self._buckets if self.budget(t) == 0}

    def spend(self, tenant: str, calls: float) -> None:
        """Charge `calls` (negative: give back) to a limited tenant's bucket. It may go
        below zero (a command made more calls than charged): later claims wait for it."""
        rate = self.rate(tenant)
        if rate > 0:
            self._buckets[tenant] = (self._tokens(tenant, rate) - calls, self.clock())

    def settle(self, charges: Iterable[tuple[str, int]]) -> None:
        """Commands done: each was charged one call at its claim, it made `calls`."""
        for tenant, calls in charges:
            if calls != 1:
                self.spend(tenant, calls - 1)

    def _tokens(self, tenant: str, rate: float) -> float:
        # A second's worth at most (at least one call): a tenant idle for a while gets a
        # burst no larger than its provider lets through in a second.
        capacity = max(1.0, rate)
        now = self.clock()
        tokens, since = self._buckets.get(tenant, (capacity, now))
        return min(capacity, tokens + (now - since) * rate)
