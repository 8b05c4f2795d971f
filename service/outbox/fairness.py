"""Fair claims: a claim's slots shared among the tenants that have due work.

A reseller runs many customers (tenants) on one service. Claims used to take the rows due
longest first across all tenants: a burst of 10,000 commands of one tenant filled every
claim until it had drained, and another tenant's single hire, due after all of them,
waited for the whole burst. Now a claim of `limit` rows

1. finds up to `limit` tenants with due runnable rows, round-robin, so that with more
   tenants than slots each gets its turn: the tenants are looked up by a skip scan of
   ix_outbox_tenant_due (one index probe per tenant with runnable rows, not one per
   row), at most every 50 ms while a list of up to 256 of them serves (with more, each
   claim looks up the ones after the last tenant the previous claim reached);
2. gives each of them an equal share of `limit` (the remainder to the first ones in
   turn), capped by the tenant's rate budget (tenant_rates.py), and takes, per tenant, its
   rows due longest first whose entity has no earlier unfinished row (FIFO per entity, as
   before): one statement on PostgreSQL (a LATERAL pick per tenant, `FOR UPDATE SKIP
   LOCKED`, so several dispatchers still never take one row); on SQLite, which has no
   LATERAL (and one process claims), a UNION ALL of one pick per tenant;
3. hands what a tenant could not use (it had fewer rows) to the tenants that filled their
   share, in a few more rounds.

Within a tenant, due-longest-first still holds (re-checked waiting rows cannot starve a
new command of their tenant). Tenants with no tenant (NULL) share as the tenant ''.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from service.outbox import direct, followers
from service.outbox.sql import bound
from service.outbox.tables import OUTBOX, TERMINAL, CommandStatus, UtcDateTime
from service.outbox.tenant_rates import TenantRates

# Enough for the leftover of tenants that ran dry to reach those with more; each round
# is one statement, and a round that takes nothing ends the claim.
ROUNDS = 4
# Tenants picked by one SQLite statement at most (a compound SELECT has 500 terms at most).
_PER_STATEMENT = 100
# The tenants with due work are looked up again after this long; in between, claims take
# their turns from the list they have. A saturated dispatcher claims a few rows hundreds
# of times a second, and the look-up was a fifth of each claim (it steps over the index
# entries of finished rows that no vacuum has removed yet). A tenant new since is seen at
# the next look-up, or at once by a claim the list does not fill.
_LOOK_AGAIN_S = 0.05
# Tenants kept between look-ups at most; with more, each claim looks up its own turn.
_KNOWN = 256

# Built once: an alias builds its column collection, which a claim must not pay each time.
_CANDIDATE = OUTBOX.alias("o")
_EARLIER = OUTBOX.alias("earlier")


# Inlined, not bound: SQLite plans the entity probe on ix_outbox_open_entity only when it
# sees the statuses (with them bound, a pick of 64 tenants took 5 ms, inlined 0.3 ms).
_TERMINAL = [sa.literal_column(f"'{s}'", sa.String) for s in TERMINAL]
_IN_FLIGHT = sa.literal_column(f"'{CommandStatus.IN_FLIGHT.value}'", sa.String)


def tenant_key(table: Any) -> Any:
    """The tenant a row is shared as; the same expression as ix_outbox_tenant_due's."""
    return sa.func.coalesce(table.c.tenant, sa.literal_column("''"))


def _claimable(o: Any) -> list[Any]:
    """Due runnable rows whose entity has no earlier unfinished row (but those dated
    ahead, which hold up nothing until their date or until they run)."""
    earlier = _EARLIER
    blocked = (
        sa.select(sa.literal(1))
        .where(
            earlier.c.entity == o.c.entity,
            earlier.c.id < o.c.id,
            earlier.c.status.not_in(_TERMINAL),
            sa.or_(
                earlier.c.effective_at.is_(None),
                earlier.c.effective_at <= bound("now"),
                earlier.c.status == _IN_FLIGHT,
            ),
        )
        .exists()
    )
    return [
        o.c.status.in_(followers.RUNNABLE_LITERALS),
        o.c.next_attempt_at <= bound("now"),
        ~blocked,
    ]


def _leased(ids: Any) -> Any:
    """The rows `ids` selects, leased to `b_owner` until `b_expires`, returned whole."""
    return (
        OUTBOX.update()
        .where(OUTBOX.c.id.in_(ids))
        .values(
            status=CommandStatus.IN_FLIGHT.value,
            lease_owner=bound("owner"),
            lease_expires_at=bound("expires"),
            attempts=OUTBOX.c.attempts + 1,
            hold_reason=None,
            updated_at=bound("now"),
        )
        .returning(*OUTBOX.c)
    )


def _pick_postgresql() -> Any:
    """Each tenant of `b_tenants` its rows up to its `b_quotas`, in one statement."""
    o = _CANDIDATE
    shares = (
        sa.func.unnest(
            sa.bindparam("b_tenants", type_=postgresql.ARRAY(sa.String)),
            sa.bindparam("b_quotas", type_=postgresql.ARRAY(sa.Integer)),
        )
        .table_valued("tenant", "quota")
        .render_derived(name="share")
    )
    pick = (
        sa.select(o.c.id)
        .where(tenant_key(o) == shares.c.tenant, *_claimable(o))
        .order_by(o.c.next_attempt_at, o.c.id)
        .limit(shares.c.quota)
        .with_for_update(skip_locked=True, of=o)
        .lateral("pick")
    )
    ids = sa.select(pick.c.id).select_from(shares.join(pick, sa.true()))
    return _leased(ids.scalar_subquery())


def _pick_sqlite(tenants: int) -> Any:
    """Each of `tenants` tenants (`b_tenant_<n>`) its rows up to `b_quota_<n>`, in one
    statement: a UNION ALL of one pick per tenant (SQLite has no LATERAL, and a statement
    per tenant cost 50 ms per claim of 64 rows among 64 tenants)."""
    o = _CANDIDATE
    picks = [
        sa.select(
            sa.select(o.c.id)
            .where(tenant_key(o) == bound(f"tenant_{n}"), *_claimable(o))
            .order_by(o.c.next_attempt_at, o.c.id)
            .limit(bound(f"quota_{n}"))
            .subquery(f"pick_{n}")
            .c.id
        )
        for n in range(tenants)
    ]
    ids = picks[0] if tenants == 1 else sa.union_all(*picks)
    return _leased(ids.scalar_subquery() if tenants == 1 else sa.select(ids.subquery().c.id))


# Tenants (keys) with due runnable rows, in key order from `b_from`, `b_cap` at most. The
# recursive part steps from one tenant with runnable rows to the next by one probe of
# ix_outbox_tenant_due each (a skip scan), and PostgreSQL stops it at the LIMIT. Whether a
# tenant has a due row is a scalar subquery (one probe), not EXISTS: PostgreSQL turns an
# EXISTS into a semi-join that reads every due row (seen under the claim's forced plan).
# `step` gives the key order back whatever order the rows come in.
_TENANTS = sa.text(
    """
    WITH RECURSIVE seen(tenant, step) AS (
        SELECT (SELECT coalesce(tenant, '') FROM outbox
                WHERE status IN ('pending', 'waiting') AND coalesce(tenant, '') >= :b_from
                ORDER BY coalesce(tenant, '') LIMIT 1), 0
        UNION ALL
        SELECT (SELECT coalesce(tenant, '') FROM outbox
                WHERE status IN ('pending', 'waiting') AND coalesce(tenant, '') > seen.tenant
                ORDER BY coalesce(tenant, '') LIMIT 1), seen.step + 1
        FROM seen WHERE seen.tenant IS NOT NULL
    )
    SELECT tenant, step FROM seen
    WHERE tenant IS NOT NULL AND (
        SELECT 1 FROM outbox d
        WHERE coalesce(d.tenant, '') = seen.tenant
          AND d.status IN ('pending', 'waiting') AND d.next_attempt_at <= :b_now
        LIMIT 1) IS NOT NULL
    LIMIT :b_cap
    """
).bindparams(
    sa.bindparam("b_from", type_=sa.String),
    sa.bindparam("b_now", type_=UtcDateTime()),
    sa.bindparam("b_cap", type_=sa.Integer),
)


def shares(tenants: Sequence[str], slots: int) -> dict[str, int]:
    """`slots` split evenly over `tenants`, the remainder one each to the first ones."""
    if not tenants or slots <= 0:
        return {}
    each, extra = divmod(slots, len(tenants))
    quotas = {t: each + (1 if n < extra else 0) for n, t in enumerate(tenants)}
    return {t: q for t, q in quotas.items() if q > 0}


class FairShare:
    """Claims' fair part, built once per store: statements, and where the turn is."""

    def __init__(self, dialect: str, rates: TenantRates | None = None) -> None:
        self.dialect = dialect
        self.rates = rates if rates is not None and rates.limited else None
        # PostgreSQL's one pick; SQLite's by the number of tenants, built when first needed
        self._picks: dict[int, Any] = {0: _pick_postgresql()} if dialect == "postgresql" else {}
        self.cursor: str | None = None  # the last tenant a claim reached, when it stopped
        self._known: list[str] | None = None  # every tenant with due work, when last seen
        self._known_at = 0.0
        self._many = False  # the last look-up found more than _KNOWN tenants
        self._next = 0  # where the next turn starts in _known

    async def claim(self, conn: AsyncConnection, values: dict[str, Any], limit: int) -> list[Any]:
        """Lease up to `limit` rows shared among tenants (`values`: the lease's `b_now`,
        `b_owner`, `b_expires`); the rows taken."""
        spent = self.rates.spent() if self.rates else set()
        tenants = await self._turn(conn, values["b_now"], limit, spent)
        budgets = {t: self.rates.budget(t) if self.rates else None for t in tenants}
        active = [t for t in tenants if budgets[t] != 0]
        taken: Counter[str] = Counter()
        rows: list[Any] = []
        for _ in range(ROUNDS):
            quotas = shares(active, limit - len(rows))
            for tenant, budget in budgets.items():
                if tenant in quotas and budget is not None:
                    quotas[tenant] = min(quotas[tenant], budget - taken[tenant])
            quotas = {t: q for t, q in quotas.items() if q > 0}
            if not quotas:
                break
            got = await self._take(conn, values, quotas)
            rows.extend(got)
            counted = Counter(r.tenant or "" for r in got)
            taken.update(counted)
            # A tenant that did not fill its share has nothing more to give this claim.
            active = [t for t in quotas if counted[t] >= quotas[t]]
            if not got:
                break
        if self.rates is not None:
            for tenant, n in taken.items():
                self.rates.spend(tenant, n)
        if len(rows) < limit:
            self._known = None  # maybe a tenant is new: the next claim looks
        return rows

    async def _turn(
        self, conn: AsyncConnection, now: Any, limit: int, spent: set[str]
    ) -> list[str]:
        """The tenants whose turn it is: up to `limit` with due rows, round-robin, from the
        list looked up last while it is fresh, else after the cursor, wrapping around to
        the first ones. Tenants whose rate budget is `spent` are stepped over without
        taking a place (else many throttled tenants could fill every claim's turn, and
        the others would wait)."""
        fresh = time.monotonic() - self._known_at < _LOOK_AGAIN_S
        if fresh and self._known:
            turn = self._turn_of_known(self._known, limit, spent)
            if turn:
                return turn
        if not (fresh and self._many):
            everyone = await self._tenants(conn, "", now, _KNOWN + 1)
            self._known_at, self._many = time.monotonic(), len(everyone) > _KNOWN
            if not self._many:
                self._known = everyone
                return self._turn_of_known(everyone, limit, spent)
            self._known = None
        # More tenants than are kept: each claim looks up the next ones after the cursor.
        cap = limit + len(spent)
        # One tenant more than the places asked for says whether the turn goes on.
        if self.cursor is None:
            found = await self._tenants(conn, "", now, cap + 1)
        else:
            # from the cursor's tenant on, itself left out (it had its turn)
            after = await self._tenants(conn, self.cursor, now, cap + 2)
            found = [t for t in after if t != self.cursor]
            if len(found) < cap:  # fewer after the cursor than places: on from the first
                more = await self._tenants(conn, "", now, cap + 1)
                found += [t for t in more if t not in found]
        visited, more_left = found[:cap], len(found) > cap
        kept = [t for t in visited if t not in spent]
        # The next claim goes on after the last tenant given a turn; when this one saw
        # every tenant with due work, it starts from the first again.
        if len(kept) > limit:
            self.cursor = kept[limit - 1]
            return kept[:limit]
        self.cursor = visited[-1] if more_left else None
        return kept

    def _turn_of_known(self, known: list[str], limit: int, spent: set[str]) -> list[str]:
        """Up to `limit` of the tenants looked up last, round-robin, those with a spent
        budget stepped over."""
        start = self._next % len(known) if known else 0
        kept = [t for t in known[start:] + known[:start] if t not in spent][:limit]
        if kept:
            self._next = known.index(kept[-1]) + 1
        return kept

    @staticmethod
    async def _tenants(conn: AsyncConnection, start: str, now: Any, cap: int) -> list[str]:
        found = await direct.rows(conn, _TENANTS, {"b_from": start, "b_now": now, "b_cap": cap})
        return [str(tenant) for tenant, _ in sorted(found, key=lambda row: row.step)]

    async def _take(
        self, conn: AsyncConnection, values: dict[str, Any], quotas: dict[str, int]
    ) -> list[Any]:
        if self.dialect == "postgresql":
            given = {**values, "b_tenants": list(quotas), "b_quotas": list(quotas.values())}
            return await direct.rows(conn, self._picks[0], given)
        rows: list[Any] = []
        items = list(quotas.items())
        # SQLite takes at most 500 terms in a compound SELECT
        for start in range(0, len(items), _PER_STATEMENT):
            chunk = items[start : start + _PER_STATEMENT]
            if len(chunk) not in self._picks:
                self._picks[len(chunk)] = _pick_sqlite(len(chunk))
            given = dict(values)
            for n, (tenant, quota) in enumerate(chunk):
                given[f"b_tenant_{n}"], given[f"b_quota_{n}"] = tenant, quota
            rows.extend((await conn.execute(self._picks[len(chunk)], given)).all())
        return rows
