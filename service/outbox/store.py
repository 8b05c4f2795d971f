"""The outbox's database operations: claim under a lease, record an outcome, repair.

Claims take due runnable rows whose entity has no earlier unfinished row (FIFO per
entity), the row due longest first: a command re-checked every few seconds while it
waits is due again each time, and taken in id order such rows ahead of a new command
could fill every claim for ever (employees waiting for the customer queued after them).
On PostgreSQL the candidate rows are locked with `FOR UPDATE SKIP LOCKED`, so several
dispatcher processes can share one database; on SQLite one process claims and the single
UPDATE is atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.ucaas import CallRecord
from service.domain.commands import APPROVAL, DENIED
from service.outbox import followers
from service.outbox.outcomes import Dead, Done, MappingKey, MappingWrite, Outcome, Retry, Wait
from service.outbox.sql import among, bound, upsert, upsert_many
from service.outbox.tables import (
    CALLS,
    LOGINS,
    MAPPING,
    OUTBOX,
    RUNNABLE,
    TERMINAL,
    CommandStatus,
    OutboxRow,
    utcnow,
)
from service.outbox.vault import CredentialVault

# Mappings this process keeps copies of. Customers and users are added, and replaced only
# after their UCaaS object vanished (reconcile forgets the mapping and queues a create, in
# this or another process). So a copy can only point at an object that is gone: creates
# check the database itself, and an answer a gone id explains (404, an unknown customer, a
# refused login) makes the executor re-read what it used (executors/base.py, `healing`).
# Licences, subscriptions and meetings are forgotten or superseded (revoke, cancel, a new
# purchase): always read from the database.
CACHED_KINDS = frozenset({"customer", "user"})
# At most this many copies (about 1 KB each): a large initial load makes a user per
# employee, and unbounded copies grew the dispatcher by ~1 GB per million. A copy let go
# is read from the database when next needed.
CACHE_LIMIT = 50_000
# Built once: an alias builds its column collection, which a claim must not pay each time.
_CANDIDATE = OUTBOX.alias("o")
_EARLIER = OUTBOX.alias("earlier")
# Kinds whose success can satisfy another command's prerequisite (a customer, a
# subscription, a user to organise meetings, a freed seat): they wake the tenant's waiters.
PRODUCERS = frozenset({"create_customer", "create_subscription", "create_user", "revoke_licence"})


@dataclass(frozen=True)
class Claim:
    id: int
    entity: str
    kind: str
    tenant: str | None
    payload: dict[str, Any]
    attempts: int
    in_doubt: bool
    created_at: datetime
    owner: str


def _claim_of(row: sa.Row[Any], owner: str) -> Claim:
    return Claim(
        id=row.id,
        entity=row.entity,
        kind=row.kind,
        tenant=row.tenant,
        payload=row.payload,
        attempts=row.attempts,
        in_doubt=row.in_doubt,
        created_at=row.created_at,
        owner=owner,
    )


class OutboxStore:
    def __init__(
        self,
        engine: AsyncEngine,
        vault: CredentialVault | None = None,
        *,
        cache_limit: int = CACHE_LIMIT,
    ) -> None:
        self.engine = engine
        self.cache_limit = cache_limit
        self.dialect = engine.dialect.name
        self.vault = vault
        # Statements of the hot path are built once: building one costs more CPU than
        # PostgreSQL spends running it.
        self._claim = _claim_statement(self.dialect)
        # Single-statement reads need no transaction: on PostgreSQL, no BEGIN and ROLLBACK
        # round trips around each lookup (asyncpg's autocommit is a client-side flag).
        # SQLite's driver opens no transaction for a read anyway.
        self._reads = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        self._by_key: dict[MappingKey, IdMappingView] = {}
        self._by_natural: dict[tuple[str, str, str], IdMappingView] = {}

    # -- claims ---------------------------------------------------------------------------
    async def claim(self, owner: str, limit: int, lease_s: float) -> list[Claim]:
        now = utcnow()
        values = {
            "b_now": now,
            "b_limit": limit,
            "b_owner": owner,
            "b_expires": now + timedelta(seconds=lease_s),
        }
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(_ONE_PLAN)
            rows = (await conn.execute(self._claim, values)).all()
        return sorted((_claim_of(r, owner) for r in rows), key=lambda c: c.id)

    async def reclaim_expired(self) -> int:
        """Rows whose worker died: back to pending, and in doubt (the call may have run)."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                OUTBOX.update()
                .where(
                    OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
                    OUTBOX.c.lease_expires_at < now,
                )
                .values(
                    status=CommandStatus.PENDING.value,
                    in_doubt=True,
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
        return result.rowcount

    async def extend(self, owner: str, ids: Sequence[int], lease_s: float) -> int:
        """Renew the leases this owner still holds on `ids`."""
        now = utcnow()
        mine = sa.and_(
            self._among(OUTBOX.c.id, ids, sa.Integer),
            OUTBOX.c.lease_owner == owner,
            OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
        )
        if self.dialect == "postgresql":
            # Rows being finished right now are locked by the outcome writer, which updates
            # them in its own order: waiting for them could deadlock, and they need no
            # renewal. Skip them.
            mine = OUTBOX.c.id.in_(
                sa.select(OUTBOX.c.id).where(mine).with_for_update(skip_locked=True)
            )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                OUTBOX.update()
                .where(mine)
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
            )
        return result.rowcount

    async def release(self, claims: Sequence[Claim]) -> int:
        """Give back claims cut short by a shutdown: the attempt does not count."""
        if not claims:
            return 0
        now = utcnow()
        async with self.engine.begin() as conn:
            released = 0
            for claim in claims:
                result = await conn.execute(
                    self._mine(claim).values(
                        status=CommandStatus.PENDING.value,
                        in_doubt=True,
                        attempts=OUTBOX.c.attempts - 1,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                )
                released += result.rowcount
        return released

    @staticmethod
    def _mine(claim: Claim) -> Any:
        return OUTBOX.update().where(
            OUTBOX.c.id == claim.id,
            OUTBOX.c.lease_owner == claim.owner,
            OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
        )

    # -- outcomes -------------------------------------------------------------------------
    async def finish(
        self, claim: Claim, outcome: Outcome, calls: Sequence[CallRecord] = ()
    ) -> bool:
        """Record the outcome; False when the lease was lost (another worker has the row)."""
        [recorded] = await self.finish_many([(claim, outcome, calls)])
        return recorded

    async def finish_many(self, items: Sequence[Finished]) -> list[bool]:
        """Record many outcomes in one transaction (group commit): the statements are one
        per kind of change, not one per command. Each item's answer is False when its lease
        was lost, and then nothing of that item is written."""
        now = utcnow()
        async with self.engine.begin() as conn:
            owned = await self._owned(conn, [claim for claim, _, _ in items])
            mine = [item for item in items if item[0].id in owned]
            for shape, values in _status_groups(mine, now).items():
                await conn.execute(_STATUS_UPDATES[shape], values)
            done = [(claim, o) for claim, o, _ in mine if isinstance(o, Done)]
            await self._write_done(conn, [o for _, o in done], now)
            tenants = {c.tenant for c, _ in done if c.tenant and c.kind in PRODUCERS}
            if tenants:
                await self._wake_waiting(conn, tenants, now)
            for claim, outcome, _ in mine:
                if isinstance(outcome, Dead):
                    await followers.block_followers(conn, claim.entity, claim.id, now)
            later = [(c.entity, c.id) for c, o, _ in mine if isinstance(o, Wait | Retry)]
            await followers.queue_behind(conn, later, now)
            waiting = {c.tenant for c, o, _ in mine if c.tenant and isinstance(o, Dead | Wait)}
            if waiting:
                await followers.hold_behind_dead_customers(conn, self.dialect, waiting, now)
            if done:
                await followers.release_held(conn, self.dialect, [c.id for c, _ in done], now)
            await self._log_calls(conn, mine)
        for _, outcome in done:
            for m in outcome.mappings:
                self._remember(IdMappingView(m.key, m.ucaas_id, m.natural_key, m.state))
        return [claim.id in owned for claim, _, _ in items]

    def _among(self, column: Any, values: Sequence[Any], item: Any) -> Any:
        return among(self.dialect, column, values, item)

    async def _owned(self, conn: AsyncConnection, claims: Sequence[Claim]) -> set[int]:
        """Which of these rows are still in flight under their claim's lease."""
        rows = await conn.execute(
            sa.select(OUTBOX.c.id, OUTBOX.c.lease_owner).where(
                self._among(OUTBOX.c.id, [c.id for c in claims], sa.Integer),
                OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
            )
        )
        owners = {c.id: c.owner for c in claims}
        return {row_id for row_id, owner in rows if owners.get(row_id) == owner}

    async def _write_done(self, conn: AsyncConnection, done: Sequence[Done], now: datetime) -> None:
        # The last write of a key in the batch wins: one statement may not touch a row twice.
        writes = {m.key: _mapping_values(m, now) for d in done for m in d.mappings}
        forget = [k for d in done for k in d.forget if k not in writes]
        if writes:
            await conn.execute(upsert_many(self.dialect, MAPPING, _KEYS), list(writes.values()))
        if forget:
            await conn.execute(
                _FORGET,
                [
                    {"b_kind": k.kind, "b_tenant": k.tenant, "b_external": k.external_id}
                    for k in forget
                ],
            )
        for login in (d.login for d in done if d.login is not None):
            if self.vault is None:
                raise RuntimeError("a tenant login was captured but no vault is configured")
            values = {
                "tenant": login.tenant,
                "username": login.username,
                "secret": self.vault.seal(login.password),
                "source": "captured",
                "updated_at": now,
            }
            await conn.execute(upsert(self.dialect, LOGINS, values, ("tenant",)))

    async def _wake_waiting(self, conn: AsyncConnection, tenants: set[str], now: datetime) -> None:
        """Something of these tenants was just made: their waiting commands look again now."""
        await conn.execute(
            OUTBOX.update()
            .where(
                OUTBOX.c.status == CommandStatus.WAITING.value,
                self._among(OUTBOX.c.tenant, sorted(tenants), sa.String),
                OUTBOX.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )

    async def _log_calls(self, conn: AsyncConnection, items: Sequence[Finished]) -> None:
        rows = [
            {
                "command_id": claim.id,
                "entity": claim.entity,
                "method": c.method,
                "route": c.route,
                "status": c.status,
                "api_code": c.code,
                "latency_ms": round(c.latency_s * 1000, 3),
                "error": c.error,
                "at": c.started_at,
            }
            for claim, _, calls in items
            for c in calls
        ]
        if rows:
            await conn.execute(CALLS.insert(), rows)

    # -- operator actions -----------------------------------------------------------------
    async def retry(self, command_id: int) -> bool:
        """A dead command runs again, with a fresh attempt budget."""
        return await self._reopen(
            command_id, (CommandStatus.DEAD.value,), CommandStatus.PENDING.value
        )

    async def drop(self, command_id: int) -> bool:
        """Give up on a command; the commands it blocked run."""
        return await self._reopen(
            command_id,
            (CommandStatus.DEAD.value, CommandStatus.HELD.value, *RUNNABLE),
            CommandStatus.DROPPED.value,
        )

    async def approve(self, *, command_id: int | None = None, tenant: str | None = None) -> int:
        """Let held deprovisioning run: one command, or every one held for a tenant."""
        return await self._decide(command_id, tenant, CommandStatus.PENDING.value)

    async def deny(self, *, command_id: int | None = None, tenant: str | None = None) -> int:
        """Drop held deprovisioning: the users keep their access."""
        return await self._decide(command_id, tenant, CommandStatus.DROPPED.value)

    async def _decide(self, command_id: int | None, tenant: str | None, to_status: str) -> int:
        if command_id is None and tenant is None:
            raise ValueError("name a command id or a tenant")
        now = utcnow()
        query = OUTBOX.update().where(
            OUTBOX.c.status == CommandStatus.HELD.value, OUTBOX.c.hold_reason.like(f"{APPROVAL}%")
        )
        if command_id is not None:
            query = query.where(OUTBOX.c.id == command_id)
        if tenant is not None:
            query = query.where(OUTBOX.c.tenant == tenant)
        dropped = to_status == CommandStatus.DROPPED.value
        async with self.engine.begin() as conn:
            result = await conn.execute(
                # next_attempt_at stays: an effective-dated command still waits for its date.
                # approved_at keeps the guard from counting an approved burst again.
                query.values(
                    status=to_status,
                    hold_reason=DENIED if dropped else None,
                    approved_at=None if dropped else now,
                    updated_at=now,
                    done_at=now if dropped else None,
                )
            )
        return result.rowcount

    async def held_for_approval(self) -> list[OutboxRow]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(OUTBOX)
                    .where(
                        OUTBOX.c.status == CommandStatus.HELD.value,
                        OUTBOX.c.hold_reason.like(f"{APPROVAL}%"),
                    )
                    .order_by(OUTBOX.c.id)
                )
            ).all()
        return [OutboxRow.model_validate(dict(r._mapping)) for r in rows]

    async def _reopen(
        self, command_id: int, from_statuses: tuple[str, ...], to_status: str
    ) -> bool:
        now = utcnow()
        async with self.engine.begin() as conn:
            entity = await conn.scalar(
                OUTBOX.update()
                .where(OUTBOX.c.id == command_id, OUTBOX.c.status.in_(from_statuses))
                .values(
                    status=to_status,
                    attempts=0,
                    next_attempt_at=now,
                    hold_reason=None,
                    updated_at=now,
                    done_at=now if to_status == CommandStatus.DROPPED.value else None,
                )
                .returning(OUTBOX.c.entity)
            )
            if entity is None:
                return False
            if to_status == CommandStatus.DROPPED.value:
                await followers.release_held(conn, self.dialect, [command_id], now)
            else:
                await followers.requeue_behind(conn, command_id, entity, now)
        return True

    # -- reads ----------------------------------------------------------------------------
    async def mapping(self, key: MappingKey, *, fresh: bool = False) -> IdMappingView | None:
        """The mapping of `key`; `fresh` reads the database even when a copy is kept, and
        brings the copy up to date (drops it when the database has none)."""
        cached = None if fresh else self._by_key.get(key)
        if cached is not None:
            return cached
        async with self._reads.connect() as conn:
            values = {"b_kind": key.kind, "b_tenant": key.tenant, "b_external": key.external_id}
            row = (await conn.execute(_BY_KEY, values)).first()
        found = IdMappingView.of(row) if row else None
        if found is not None:
            self._remember(found)
        elif fresh:
            self._drop(self._by_key.get(key))
        return found

    async def mapping_by_natural(
        self, kind: str, tenant: str, natural_key: str, *, fresh: bool = False
    ) -> IdMappingView | None:
        cached = None if fresh else self._by_natural.get((kind, tenant, natural_key))
        if cached is not None:
            return cached
        async with self._reads.connect() as conn:
            values = {"b_kind": kind, "b_tenant": tenant, "b_natural": natural_key}
            row = (await conn.execute(_BY_NATURAL, values)).first()
        found = IdMappingView.of(row) if row else None
        if found is not None:
            self._remember(found)
        elif fresh:
            self._drop(self._by_natural.get((kind, tenant, natural_key)))
        return found

    def _remember(self, mapping: IdMappingView) -> None:
        if mapping.key.kind not in CACHED_KINDS:
            return
        self._drop(self._by_key.get(mapping.key))  # its old natural key may differ
        self._by_key[mapping.key] = mapping
        if len(self._by_key) > self.cache_limit:
            # the copy kept longest goes: insertion order, a dict's own
            self._drop(next(iter(self._by_key.values())))
        if mapping.natural_key is not None:
            self._by_natural[_natural(mapping)] = mapping

    def _drop(self, mapping: IdMappingView | None) -> None:
        if mapping is None:
            return
        if self._by_key.get(mapping.key) is mapping:
            del self._by_key[mapping.key]
        if mapping.natural_key is not None and self._by_natural.get(_natural(mapping)) is mapping:
            del self._by_natural[_natural(mapping)]

    async def mappings_of(self, kind: str, tenant: str) -> list[IdMappingView]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(MAPPING).where(MAPPING.c.kind == kind, MAPPING.c.tenant == tenant)
                )
            ).all()
        return [IdMappingView.of(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)
                )
            ).all()
        return {str(status): int(count) for status, count in rows}

    async def due(self) -> int:
        """Rows a claim would look at now: pending or waiting, and due (ix_outbox_due)."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                sa.select(sa.func.count()).where(
                    OUTBOX.c.status.in_(followers.RUNNABLE_LITERALS),
                    OUTBOX.c.next_attempt_at <= utcnow(),
                )
            )
        return int(found or 0)

    async def rows(
        self, *, status: str | None = None, entity: str | None = None, limit: int = 100
    ) -> list[OutboxRow]:
        query = sa.select(OUTBOX).order_by(OUTBOX.c.id).limit(limit)
        if status:
            query = query.where(OUTBOX.c.status == status)
        if entity:
            query = query.where(OUTBOX.c.entity == entity)
        async with self.engine.connect() as conn:
            result = (await conn.execute(query)).all()
        return [OutboxRow.model_validate(dict(r._mapping)) for r in result]


_KEYS = ("kind", "tenant", "external_id")


def _natural(mapping: IdMappingView) -> tuple[str, str, str]:
    return (mapping.key.kind, mapping.key.tenant, mapping.natural_key or "")


def _mapping_values(mapping: MappingWrite, now: datetime) -> dict[str, Any]:
    return {
        "kind": mapping.key.kind,
        "tenant": mapping.key.tenant,
        "external_id": mapping.key.external_id,
        "ucaas_id": mapping.ucaas_id,
        "natural_key": mapping.natural_key,
        "state": mapping.state,
        "updated_at": now,
    }


@dataclass(frozen=True)
class IdMappingView:
    key: MappingKey
    ucaas_id: str
    natural_key: str | None
    state: dict[str, Any]

    @classmethod
    def of(cls, row: sa.Row[Any]) -> IdMappingView:
        return cls(
            MappingKey(row.kind, row.tenant, row.external_id),
            row.ucaas_id,
            row.natural_key,
            row.state,
        )


Finished = tuple[Claim, Outcome, Sequence[CallRecord]]


# The claim has one good plan at any size: walk ix_outbox_due in order, probe each row's
# entity on ix_outbox_open_entity, stop at the LIMIT. After a burst, before autovacuum has
# analysed the table, PostgreSQL believes a handful of rows exist and plans a bitmap scan
# that sorts every due row, or a sequential scan of the table for each one's entity: 72-92
# ms per claim with 17,000 due (auto_explain), and the database's CPU, not UCaaS, set the
# pace. The other plans are ruled out for the claim's transaction only.
_ONE_PLAN = sa.text(
    "SELECT "
    + ", ".join(
        f"set_config('enable_{scan}', 'off', true)"
        for scan in ("seqscan", "bitmapscan", "sort", "hashjoin", "mergejoin")
    )
)


def _claim_statement(dialect: str) -> Any:
    """Due runnable rows, due longest first (ix_outbox_due), whose entity has no earlier
    unfinished row, leased to `b_owner` until `b_expires`."""
    o, earlier = _CANDIDATE, _EARLIER
    blocked = (
        sa.select(sa.literal(1))
        .where(
            earlier.c.entity == o.c.entity,
            earlier.c.id < o.c.id,
            earlier.c.status.not_in(TERMINAL),
        )
        .exists()
    )
    candidates = (
        sa.select(o.c.id)
        .where(
            o.c.status.in_(followers.RUNNABLE_LITERALS),
            o.c.next_attempt_at <= bound("now"),
            ~blocked,
        )
        .order_by(o.c.next_attempt_at, o.c.id)
        .limit(bound("limit"))
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=o)
    return (
        OUTBOX.update()
        .where(OUTBOX.c.id.in_(candidates.scalar_subquery()))
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


def _owned_update() -> Any:
    # lease_owner stays: it tells which dispatcher ran the command last.
    return OUTBOX.update().where(
        OUTBOX.c.id == bound("id"),
        OUTBOX.c.lease_owner == bound("owner"),
        OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
    )


# One statement per shape of outcome, run with many parameter sets (executemany).
_STATUS_UPDATES: dict[str, Any] = {
    "done": _owned_update().values(
        status=CommandStatus.DONE.value,
        done_at=bound("now"),
        hold_reason=bound("note"),
        lease_expires_at=None,
        updated_at=bound("now"),
    ),
    "retry": _owned_update().values(
        status=CommandStatus.PENDING.value,
        next_attempt_at=bound("next"),
        last_error_code=bound("code"),
        last_error=bound("message"),
        in_doubt=sa.or_(OUTBOX.c.in_doubt, sa.bindparam("b_ambiguous", type_=sa.Boolean)),
        # an attempt made while the API was down for everyone does not count
        attempts=OUTBOX.c.attempts - sa.bindparam("b_uncount", type_=sa.Integer),
        lease_expires_at=None,
        updated_at=bound("now"),
    ),
    "wait": _owned_update().values(
        status=CommandStatus.WAITING.value,
        next_attempt_at=bound("next"),
        hold_reason=bound("reason"),
        # Waiting is not failing, and the API answered: the failures before it were
        # transient. The budget is for failures in a row: counted across a long wait, the
        # odd 5xx of each re-check (a lookup) adds up until a flaky API kills the command.
        attempts=0,
        lease_expires_at=None,
        updated_at=bound("now"),
    ),
    "dead": _owned_update().values(
        status=CommandStatus.DEAD.value,
        last_error_code=bound("code"),
        last_error=bound("message"),
        lease_expires_at=None,
        updated_at=bound("now"),
    ),
}

_BY_KEY = sa.select(MAPPING).where(
    MAPPING.c.kind == bound("kind"),
    MAPPING.c.tenant == bound("tenant"),
    MAPPING.c.external_id == bound("external"),
)
_BY_NATURAL = (
    sa.select(MAPPING)
    .where(
        MAPPING.c.kind == bound("kind"),
        MAPPING.c.tenant == bound("tenant"),
        MAPPING.c.natural_key == bound("natural"),
    )
    .order_by(MAPPING.c.updated_at.desc())
    .limit(1)
)

_FORGET = MAPPING.delete().where(
    MAPPING.c.kind == bound("kind"),
    MAPPING.c.tenant == bound("tenant"),
    MAPPING.c.external_id == bound("external"),
)


def _status_groups(items: Sequence[Finished], now: datetime) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for claim, outcome, _ in items:
        values: dict[str, Any] = {"b_id": claim.id, "b_owner": claim.owner, "b_now": now}
        if isinstance(outcome, Done):
            shape, values["b_note"] = "done", outcome.note
        elif isinstance(outcome, Retry):
            shape = "retry"
            values |= {
                "b_next": now + timedelta(seconds=outcome.delay_s),
                "b_code": outcome.code[:40],
                "b_message": outcome.message[:1000],
                "b_ambiguous": outcome.ambiguous,
                "b_uncount": 0 if outcome.count else 1,
            }
        elif isinstance(outcome, Wait):
            shape = "wait"
            values |= {
                "b_next": now + timedelta(seconds=outcome.delay_s),
                "b_reason": outcome.reason[:255],
            }
        else:
            shape = "dead"
            values |= {"b_code": outcome.code[:40], "b_message": outcome.message[:1000]}
        groups.setdefault(shape, []).append(values)
    return groups
