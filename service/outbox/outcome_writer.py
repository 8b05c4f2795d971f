"""Recording outcomes: a batch of finished commands in one transaction (group commit).

Per batch, one statement per kind of change, not one per command: the rows' new status
(done, retry, wait, dead), the id mappings written and forgotten, captured logins, a
tenant's waiting commands woken by a prerequisite made, followers held or released
(followers.py), the call log, and the result events of the commands done or dead
(through the ResultLog port, when one is wired in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.ucaas import CallRecord
from service.domain.commands import PRODUCERS
from service.outbox import direct, followers
from service.outbox.claims import Claim
from service.outbox.mappings import IdMappingView
from service.outbox.outcomes import Dead, Done, MappingWrite, Outcome, Retry, Wait
from service.outbox.result_log import CommandRef, ResultLog
from service.outbox.sql import among, among_bound, bound, per_dialect, upsert, upsert_many
from service.outbox.tables import CALLS, LOGINS, MAPPING, OUTBOX, CommandStatus, utcnow
from service.outbox.vault import CredentialVault

Finished = tuple[Claim, Outcome, Sequence[CallRecord]]


class OutcomeWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        vault: CredentialVault | None,
        remember: Callable[[IdMappingView], None],
        results: ResultLog | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.vault = vault
        self._remember = remember  # keeps a copy of a mapping once its write committed
        self.results = results

    async def finish_many(self, items: Sequence[Finished]) -> list[bool]:
        """Record many outcomes in one transaction (group commit): the statements are one
        per kind of change, not one per command. Each item's answer is False when its lease
        was lost, and then nothing of that item is written."""
        now = utcnow()
        async with self.engine.begin() as conn:
            owned = await self._owned(conn, [claim for claim, _, _ in items])
            mine = [item for item in items if item[0].id in owned]
            if self.results is not None:
                # before the mappings change: a result reads them as they were too
                finished = [
                    (_ref(claim, owned[claim.id]), o)
                    for claim, o, _ in mine
                    if isinstance(o, Done | Dead)
                ]
                if finished:
                    await self.results.finished(conn, finished, now)
            waits = [c for c, o, _ in mine if c.tenant and isinstance(o, Wait)]
            started = await self._attempts_started(conn, waits)
            for shape, values in _status_groups(mine, now).items():
                await direct.run(conn, _STATUS_UPDATES[shape], values)
            done = [(claim, o) for claim, o, _ in mine if isinstance(o, Done)]
            await self._write_done(conn, [o for _, o in done], now)
            tenants = {c.tenant for c, _ in done if c.tenant and c.kind in PRODUCERS}
            # A command that waited while a prerequisite of its tenant was made by another
            # attempt finishing at the same time missed that wake-up (it was in flight, not
            # waiting yet): woken now, it looks again at once instead of after its pause.
            tenants |= await self._made_since(conn, started, skip=tenants)
            if tenants:
                await self.wake_waiting(conn, tenants, now)
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

    async def _owned(
        self, conn: AsyncConnection, claims: Sequence[Claim]
    ) -> dict[int, tuple[str | None, str | None]]:
        """Which of these rows are still in flight under their claim's lease, with the
        (source, id) of the event that asked for each (what its result names)."""
        rows = await direct.rows(conn, _OWNED[self.dialect], {"b_ids": [c.id for c in claims]})
        owners = {c.id: c.owner for c in claims}
        return {
            row_id: (source, event_id)
            for row_id, owner, source, event_id in rows
            if owners.get(row_id) == owner
        }

    async def _write_done(self, conn: AsyncConnection, done: Sequence[Done], now: datetime) -> None:
        # The last write of a key in the batch wins: one statement may not touch a row twice.
        writes = {m.key: _mapping_values(m, now) for d in done for m in d.mappings}
        forget = [k for d in done for k in d.forget if k not in writes]
        if writes:
            await direct.run(conn, _UPSERT[self.dialect], list(writes.values()))
        if forget:
            await direct.run(
                conn,
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

    async def _attempts_started(
        self, conn: AsyncConnection, claims: Sequence[Claim]
    ) -> dict[str, datetime]:
        """Each tenant's earliest start among these attempts (a claim stamps updated_at)."""
        if not claims:
            return {}
        ids = [c.id for c in claims]
        rows = await conn.execute(
            sa.select(OUTBOX.c.tenant, sa.func.min(OUTBOX.c.updated_at))
            .where(among(self.dialect, OUTBOX.c.id, ids, sa.Integer))
            .group_by(OUTBOX.c.tenant)
        )
        return {tenant: started for tenant, started in rows if tenant is not None}

    async def _made_since(
        self, conn: AsyncConnection, started: dict[str, datetime], skip: set[str]
    ) -> set[str]:
        """The tenants one of whose prerequisites was made after a waiting attempt began."""
        made: set[str] = set()
        for tenant, since in started.items():
            if tenant in skip:
                continue
            found = await conn.scalar(
                sa.select(sa.literal(1))
                .where(
                    OUTBOX.c.tenant == tenant,
                    OUTBOX.c.status == CommandStatus.DONE.value,
                    OUTBOX.c.kind.in_(sorted(k.value for k in PRODUCERS)),
                    OUTBOX.c.done_at >= since,
                )
                .limit(1)
            )
            if found:
                made.add(tenant)
        return made

    async def wake_waiting(self, conn: AsyncConnection, tenants: set[str], now: datetime) -> None:
        """Something of these tenants was just made: their waiting commands look again now."""
        values = {"b_tenants": sorted(tenants), "b_now": now}
        await direct.run(conn, _WAKE[self.dialect], [values])

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
        await direct.run(conn, _LOG_CALL, rows)


_KEYS = ("kind", "tenant", "external_id")


def _owned_rows(dialect: str) -> Any:
    return sa.select(
        OUTBOX.c.id, OUTBOX.c.lease_owner, OUTBOX.c.event_source, OUTBOX.c.event_id
    ).where(
        among_bound(dialect, OUTBOX.c.id, "ids", sa.Integer),
        OUTBOX.c.status == CommandStatus.IN_FLIGHT.value,
    )


def _wake(dialect: str) -> Any:
    return (
        OUTBOX.update()
        .where(
            OUTBOX.c.status == CommandStatus.WAITING.value,
            among_bound(dialect, OUTBOX.c.tenant, "tenants", sa.String),
            OUTBOX.c.next_attempt_at > bound("now"),
        )
        .values(next_attempt_at=bound("now"))
    )


# Statements of every batch
_OWNED = per_dialect(_owned_rows)
_WAKE = per_dialect(_wake)
_UPSERT = per_dialect(lambda dialect: upsert_many(dialect, MAPPING, _KEYS))
_LOG_CALL = CALLS.insert()


def _ref(claim: Claim, cause: tuple[str | None, str | None]) -> CommandRef:
    return CommandRef(
        claim.id, claim.kind, claim.entity, claim.tenant, claim.payload, cause[0], cause[1]
    )


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
