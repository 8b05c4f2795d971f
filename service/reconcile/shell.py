"""`reconcile`: read the mappings, read UCaaS back, compare, and queue the repairs.

Reads use the platform account, which sees every customer. A handful of objects is read
with one GET each (at most `CONCURRENCY` at a time); more, with the kind's list route,
page by page, which costs one call per 100 objects whatever their number. A read that
fails fails the run: an object not seen is only called missing when UCaaS said so.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.ucaas import NotFoundError, UCaaSClient
from connectors.ucaas.models.meetings import Meeting, MeetingQuery
from service.domain.commands import App, Command, Kind, customer_entity
from service.outbox.followers import BLOCKED
from service.outbox.sql import chunks
from service.outbox.tables import MAPPING, OUTBOX, TERMINAL, CommandStatus, utcnow
from service.outbox.unit_of_work import Accepted, EventRecord, UnitOfWork
from service.reconcile.drift import detect, meeting_over
from service.reconcile.model import (
    KINDS,
    SOURCE,
    Drift,
    MeetingOwner,
    Observed,
    OpenCommand,
    Pushed,
    RepairStatus,
    Report,
)
from service.reconcile.repair import reopens, with_repairs

T = TypeVar("T")
FEW = 16  # up to this many objects of a kind: one GET each; more: the list route
CONCURRENCY = 8
# Serialises concurrent `reconcile --repair` runs on PostgreSQL ("reconcile" in hex).
LOCK_KEY = 0x7265636F6E63696C
SCHEDULES = (Kind.SCHEDULE_MEETING.value, Kind.UPDATE_MEETING.value)


class UnknownKindError(ValueError):
    pass


class Wired(Protocol):
    """What reconcile needs of the wired service (app/bootstrap.py's Service has both):
    the unit of work its repairs go through, and the platform account it reads with."""

    @property
    def uow(self) -> UnitOfWork: ...
    @property
    def ucaas(self) -> UCaaSClient: ...


def kinds_of(kinds: Iterable[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return KINDS
    chosen = {k.strip().lower() for k in kinds}
    unknown = sorted(chosen - set(KINDS))
    if unknown:
        raise UnknownKindError(f"unknown kind(s) {', '.join(unknown)}: use {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in chosen)


async def reconcile(
    service: Wired,
    *,
    tenant: str | None = None,
    kinds: Iterable[str] | None = None,
    repair: bool = False,
    now: datetime | None = None,
) -> Report:
    chosen = kinds_of(kinds)
    now = now or utcnow()
    engine = service.uow.engine
    pushed = await load_mappings(engine, chosen, tenant)
    live = [p for p in pushed if not (p.kind == "meeting" and meeting_over(p, now))]
    meetings = [p for p in live if p.kind == "meeting" and "meeting" in chosen]
    refs = await meeting_refs(engine, [p.external_id for p in meetings])
    observed = await read_back(service.ucaas, live, chosen, refs)
    comparison = detect(live, observed, now, chosen)
    entities = {d.entity for d in comparison.drifts}
    async with engine.connect() as conn:
        pending = await open_commands(conn, entities)
    drifts = with_repairs(comparison.drifts, refs=refs, open_commands=pending, now=now)
    queued = 0
    if repair:
        drifts, queued = await queue_repairs(service.uow, drifts, tenant, now)
    return Report(comparison.checked, drifts, repair, queued, now)


# -- the database -------------------------------------------------------------------------
async def load_mappings(
    engine: AsyncEngine, kinds: Sequence[str], tenant: str | None
) -> list[Pushed]:
    needed = set(kinds) | ({"user"} if "licence" in kinds else set())
    query = sa.select(MAPPING).where(MAPPING.c.kind.in_(sorted(needed)))
    if tenant is not None:
        # A customer's mapping has no tenant: its external id is the CRM id.
        query = query.where(
            sa.or_(
                sa.and_(MAPPING.c.kind == "customer", MAPPING.c.external_id == tenant),
                sa.and_(MAPPING.c.kind != "customer", MAPPING.c.tenant == tenant),
            )
        )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Pushed(
            r.kind,
            r.external_id if r.kind == "customer" else r.tenant,
            r.external_id,
            r.ucaas_id,
            r.natural_key,
            r.state or {},
        )
        for r in rows
    ]


async def meeting_refs(engine: AsyncEngine, keys: Iterable[str]) -> dict[str, MeetingOwner]:
    """Organiser and app of each meeting, from the last command that scheduled it."""
    out: dict[str, MeetingOwner] = {}
    async with engine.connect() as conn:
        for chunk in chunks(sorted({f"meeting:{k}" for k in keys})):
            rows = await conn.execute(
                sa.select(OUTBOX.c.payload)
                .where(OUTBOX.c.kind.in_(SCHEDULES), OUTBOX.c.entity.in_(chunk))
                .order_by(OUTBOX.c.id)
            )
            for (payload,) in rows:
                out[payload["meeting_key"]] = MeetingOwner(
                    payload["organizer_email"], payload.get("app", "vc")
                )
    return out


async def open_commands(conn: AsyncConnection, entities: Iterable[str]) -> dict[str, OpenCommand]:
    """Each entity's first unfinished command; an open reconcile repair is preferred."""
    out: dict[str, OpenCommand] = {}
    for chunk in chunks(sorted(set(entities))):
        rows = await conn.execute(
            sa.select(OUTBOX.c.id, OUTBOX.c.entity, OUTBOX.c.event_source)
            .where(OUTBOX.c.status.not_in(TERMINAL), OUTBOX.c.entity.in_(chunk))
            .order_by(OUTBOX.c.id)
        )
        for row_id, entity, source in rows:
            known = out.get(entity)
            if known is None or (source == SOURCE and known.source != SOURCE):
                out[entity] = OpenCommand(row_id, source)
    return out


async def queue_repairs(
    uow: UnitOfWork, drifts: list[Drift], tenant: str | None, now: datetime
) -> tuple[list[Drift], int]:
    """Write every planned repair in one transaction, forgetting the mappings of missing
    objects; entities that got an open command since the comparison are left alone."""
    planned = [d for d in drifts if d.status is RepairStatus.PLANNED]
    if not planned:
        return drifts, 0
    run = EventRecord(
        source=SOURCE,
        event_id=f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:12]}",
        type="ucaas.reconcile",
        tenant=tenant,
    )
    commands: list[Command] = []
    out: list[Drift] = []
    async with uow.transaction() as tx:
        conn = tx.conn
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        pending = await open_commands(conn, {d.entity for d in planned})
        for drift in drifts:
            if drift.status is not RepairStatus.PLANNED:
                out.append(drift)
                continue
            if drift.entity in pending:
                first = pending[drift.entity]
                late = RepairStatus.ALREADY_QUEUED if first.source == SOURCE else RepairStatus.WAITS
                out.append(_with(drift, late, f"#{first.id} opened meanwhile"))
                continue
            if drift.forgets_mapping:
                await _forget(conn, drift)
            commands.extend(drift.repair or ())
            out.append(_with(drift, RepairStatus.QUEUED, drift.reason))
        if commands:
            outcome = f"reconcile: {len(commands)} repair command(s)"
            accepted = Accepted(run, commands, outcome, now)
            await tx.inbox.add([accepted])
            await tx.commands.add([accepted])
            gates = {d.tenant for d in out if d.status is RepairStatus.QUEUED and reopens(d)}
            held = await _hold_behind_reactivation(conn, run, gates, now)
            out = [_behind(d, held) for d in out]
    return out, len(commands)


async def _hold_behind_reactivation(
    conn: AsyncConnection, run: EventRecord, tenants: set[str], now: datetime
) -> dict[str, str]:
    """A suspended or closed customer refuses its tenant's login (4014): the tenant's other
    repairs of this run are held behind the customer's repair, and the outbox releases them
    when it is done (kept held, like any follower, while it is dead). Tenant -> reason."""
    reasons: dict[str, str] = {}
    mine = sa.and_(OUTBOX.c.event_source == run.source, OUTBOX.c.event_id == run.event_id)
    for tenant in sorted(tenants):
        entity = customer_entity(tenant)
        gate = await conn.scalar(
            sa.select(sa.func.max(OUTBOX.c.id)).where(
                mine, OUTBOX.c.entity == entity, OUTBOX.c.kind == Kind.UPDATE_CUSTOMER.value
            )
        )
        if gate is None:
            continue
        await conn.execute(
            OUTBOX.update()
            .where(
                mine,
                OUTBOX.c.tenant == tenant,
                OUTBOX.c.entity != entity,
                OUTBOX.c.status == CommandStatus.PENDING.value,
            )
            .values(
                status=CommandStatus.HELD.value, hold_reason=BLOCKED.format(gate), updated_at=now
            )
        )
        reasons[tenant] = f"after #{gate}, the customer's reactivation"
    return reasons


def _behind(drift: Drift, held: dict[str, str]) -> Drift:
    """The drift, saying so when its repair waits for the customer's."""
    if drift.status is not RepairStatus.QUEUED or drift.kind == "customer":
        return drift
    why = held.get(drift.tenant)
    return replace(drift, reason="; ".join(filter(None, (drift.reason, why)))) if why else drift


def _with(drift: Drift, status: RepairStatus, reason: str | None) -> Drift:
    repair = drift.repair if status is RepairStatus.QUEUED else None
    return replace(drift, status=status, reason=reason, repair=repair)


async def _forget(conn: AsyncConnection, drift: Drift) -> None:
    tenant = "" if drift.kind == "customer" else drift.tenant
    # Only the mapping that was compared: one replaced meanwhile points at a live object.
    await conn.execute(
        MAPPING.delete().where(
            MAPPING.c.kind == drift.kind,
            MAPPING.c.tenant == tenant,
            MAPPING.c.external_id == drift.external_id,
            MAPPING.c.ucaas_id == drift.ucaas_id,
        )
    )


# -- UCaaS --------------------------------------------------------------------------------
async def read_back(
    api: UCaaSClient,
    pushed: Sequence[Pushed],
    kinds: Sequence[str],
    refs: dict[str, MeetingOwner],
) -> Observed:
    def ids(kind: str) -> set[str]:
        return {p.ucaas_id for p in pushed if p.kind == kind}

    user_ids = ids("user") if {"user", "licence"} & set(kinds) else set()
    try:
        async with asyncio.TaskGroup() as group:
            customers = group.create_task(
                _read(
                    ids("customer") if "customer" in kinds else set(),
                    api.customers.get,
                    api.customers.iterate,
                    lambda c: c.customer_id,
                )
            )
            subscriptions = group.create_task(
                _read(
                    ids("subscription") if "subscription" in kinds else set(),
                    api.subscriptions.get,
                    api.subscriptions.iterate,
                    lambda s: s.subscription_id,
                )
            )
            users = group.create_task(
                _read(user_ids, api.users.get, api.users.iterate, lambda u: u.user_id)
            )
            meetings = group.create_task(
                _meetings(api, [p for p in pushed if p.kind == "meeting"], refs)
                if "meeting" in kinds
                else _nothing()
            )
    except ExceptionGroup as failed:
        # One read failed and the others were cancelled: the first error is the story.
        raise failed.exceptions[0] from None
    return Observed(
        users=users.result(),
        customers=customers.result(),
        subscriptions=subscriptions.result(),
        meetings=meetings.result(),
    )


async def _nothing() -> dict[str, Meeting]:
    return {}


async def _read(
    wanted: set[str],
    get: Callable[[str], Awaitable[T]],
    iterate: Callable[[], AsyncIterator[T]],
    id_of: Callable[[T], str],
    *,
    listable: bool = True,
    limit: asyncio.Semaphore | None = None,
) -> dict[str, T]:
    if not wanted:
        return {}
    if listable and len(wanted) > FEW:
        return {id_of(item): item async for item in iterate() if id_of(item) in wanted}
    limit = limit or asyncio.Semaphore(CONCURRENCY)

    async def one(object_id: str) -> tuple[str, T | None]:
        async with limit:
            try:
                return object_id, await get(object_id)
            except NotFoundError:
                return object_id, None

    found = await asyncio.gather(*(one(i) for i in sorted(wanted)))
    return {object_id: item for object_id, item in found if item is not None}


async def _meetings(
    api: UCaaSClient, pushed: Sequence[Pushed], refs: dict[str, MeetingOwner]
) -> dict[str, Meeting]:
    """Per organiser and app: the organiser's meetings listed, or a few fetched by id."""
    groups: dict[tuple[str, App], set[str]] = defaultdict(set)
    for p in pushed:
        ref = refs.get(p.external_id)
        groups[(p.natural_key or "", ref.app if ref else "vc")].add(p.ucaas_id)
    limit = asyncio.Semaphore(CONCURRENCY)  # shared: many organisers with a few each
    found = await asyncio.gather(
        *(_read_meetings(api, o, app, wanted, limit) for (o, app), wanted in groups.items())
    )
    return {k: v for part in found for k, v in part.items()}


async def _read_meetings(
    api: UCaaSClient, organiser: str, app: App, wanted: set[str], limit: asyncio.Semaphore
) -> dict[str, Meeting]:
    def listing() -> AsyncIterator[Meeting]:
        query = MeetingQuery(search_by="user_id", search_string=organiser)
        return api.meetings.iterate(query, app)

    async def get(meeting_id: str) -> Meeting:
        return await api.meetings.get(meeting_id, app)

    # Without an organiser on record there is nothing to list by: by id only.
    return await _read(
        wanted, get, listing, lambda m: m.meeting_id, listable=bool(organiser), limit=limit
    )
