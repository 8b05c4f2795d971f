"""`reconcile --hr-snapshot`: HR's whole population against the UCaaS users the service
manages; orphans and leavers still active reported, and with --repair deprovisioned
through the unit of work and the deprovisioning guard.

The snapshot is read first (a file, or a topic up to its end offsets), then the user and
licence mappings of the tenants it covers (or of --tenant), then, from UCaaS, only the
users HR does not call active. A snapshot that looks empty or truncated is reported as
such, and --repair refuses it unless forced: it would make everyone an orphan.

The repairs of one run are written in one transaction, one inbox row per tenant (source
`reconcile`, type `hr.reconcile`), each tenant's deprovisioning counted by the intake's
guard with what the tenant had deprovisioned within the window: beyond the threshold
every one is held for approval with the guard's reason. The people deprovisioned are
marked as left in their desired state (the intake's `left` rule does the same), so a
rehire later reactivates them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.kafka_security import KafkaConnection
from connectors.hr.snapshot import SnapshotError, latest_records, list_response
from service.domain.commands import Command, user_entity
from service.intake.guard import approvals
from service.intake.lifecycle import UserState
from service.intake.shell import recent_deprovisioning
from service.outbox.sql import chunks
from service.outbox.states import SavedState
from service.outbox.tables import MAPPING, STATES, utcnow
from service.outbox.unit_of_work import Accepted, EventRecord, Transaction, UnitOfWork
from service.reconcile.hr_drift import candidates, find, managed_users, suspicions
from service.reconcile.hr_model import HR_EVENT_TYPE, Finding, HrReport, Mapped, Snapshot
from service.reconcile.hr_people import from_list_response, from_records
from service.reconcile.hr_repair import first_open, with_repairs
from service.reconcile.model import SOURCE, Pushed, RepairStatus
from service.reconcile.shell import LOCK_KEY, Wired, open_commands, read_back
from service.settings import IntakeSettings

KAFKA = "kafka:"
ON_LEAVE = "on_leave"  # the intake's UserState.status of someone on leave
LEFT = "left"


async def load_snapshot(
    spec: str, *, tenant: str | None, bootstrap: KafkaConnection | str
) -> Snapshot:
    """FILE (a SCIM ListResponse) or kafka:TOPIC (read through `bootstrap`, with its TLS
    and SASL)."""
    if spec.startswith(KAFKA):
        topic = spec.removeprefix(KAFKA)
        if not topic:
            raise SnapshotError("kafka: needs a topic, e.g. kafka:hr.snapshot")
        return from_records(await latest_records(bootstrap, topic), spec, tenant)
    try:
        document = await asyncio.to_thread(Path(spec).read_bytes)
    except OSError as exc:
        raise SnapshotError(f"{spec}: {exc.strerror or type(exc).__name__}") from None
    return from_list_response(list_response(document), spec, tenant)


async def reconcile_hr(
    service: Wired,
    snapshot: Snapshot,
    *,
    guard: IntakeSettings,
    tenant: str | None = None,
    repair: bool = False,
    force: bool = False,
    now: datetime | None = None,
) -> HrReport:
    now = now or utcnow()
    tenants = (tenant,) if tenant else tuple(sorted(snapshot.tenants))
    engine = service.uow.engine
    mapped, licences = await load_managed(engine, tenants)
    users = managed_users(mapped, licences)
    suspect = suspicions(snapshot, tenants, Counter(u.tenant for u in users))
    wanted = candidates(users, snapshot)
    pushed = [Pushed("user", u.tenant, u.employee_ids[0], u.ucaas_id) for u in wanted]
    observed = await read_back(service.ucaas, pushed, ("user",), {})
    resting = await on_leave(engine, {e for u in wanted for e in u.entities})
    found = find(users, snapshot, observed.users, resting)
    async with engine.connect() as conn:
        pending = await open_commands(conn, {e for f in found for e in f.user.entities})
    report = HrReport(
        snapshot, len(users), with_repairs(found, pending), repair, suspect, at=now, tenants=tenants
    )
    if not repair:
        return report
    if suspect and not force:
        return replace(report, refused=f"{suspect[0]} (--force to repair anyway)")
    findings, queued = await queue_deprovisioning(service.uow, report.findings, guard, now)
    return replace(report, findings=findings, queued=queued)


# -- the database -------------------------------------------------------------------------
async def load_managed(
    engine: AsyncEngine, tenants: Sequence[str]
) -> tuple[list[Mapped], list[tuple[str, str]]]:
    """The tenants' user mappings, and their licence mappings as (tenant, "employee:app")."""
    users: list[Mapped] = []
    licences: list[tuple[str, str]] = []
    async with engine.connect() as conn:
        for some in chunks(sorted(set(tenants))):
            rows = await conn.execute(
                sa.select(
                    MAPPING.c.kind,
                    MAPPING.c.tenant,
                    MAPPING.c.external_id,
                    MAPPING.c.ucaas_id,
                    MAPPING.c.natural_key,
                    MAPPING.c.updated_at,
                ).where(MAPPING.c.kind.in_(("user", "licence")), MAPPING.c.tenant.in_(some))
            )
            for kind, tenant, external_id, ucaas_id, email, updated_at in rows:
                if kind == "user":
                    users.append(Mapped(tenant, external_id, ucaas_id, email, updated_at))
                else:
                    licences.append((tenant, external_id))
    return users, licences


async def on_leave(engine: AsyncEngine, entities: Iterable[str]) -> set[str]:
    """The entities whose desired state is on leave (suspended, licences kept)."""
    found: set[str] = set()
    async with engine.connect() as conn:
        for some in chunks(sorted(set(entities))):
            rows = await conn.execute(
                sa.select(STATES.c.entity, STATES.c.state).where(STATES.c.entity.in_(some))
            )
            found.update(e for e, state in rows if (state or {}).get("status") == ON_LEAVE)
    return found


async def queue_deprovisioning(
    uow: UnitOfWork, findings: list[Finding], guard: IntakeSettings, now: datetime
) -> tuple[list[Finding], int]:
    """Write every planned repair in one transaction, through the guard; users that got an
    open command since they were compared are left alone."""
    planned = [f for f in findings if f.repair_status is RepairStatus.PLANNED]
    if not planned:
        return findings, 0
    run = f"hr-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:12]}"
    async with uow.transaction() as tx:
        conn = tx.conn
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        pending = await open_commands(conn, {e for f in planned for e in f.user.entities})
        out: list[Finding] = []
        by_tenant: dict[str, list[Command]] = defaultdict(list)
        for finding in findings:
            if finding.repair_status is not RepairStatus.PLANNED:
                out.append(finding)
                continue
            late = first_open(finding, pending)
            if late is not None:
                mine = late.source == SOURCE
                status = RepairStatus.ALREADY_QUEUED if mine else RepairStatus.WAITS
                why = f"#{late.id} opened meanwhile"
                out.append(replace(finding, repair=None, repair_status=status, reason=why))
                continue
            by_tenant[finding.user.tenant].extend(finding.repair or ())
            out.append(replace(finding, repair_status=RepairStatus.QUEUED))
        if not by_tenant:
            return out, 0
        held = await _accept(tx, run, by_tenant, guard, now)
        await _mark_left(tx, [f for f in out if f.repair_status is RepairStatus.QUEUED], run, now)
    queued = sum(len(c) for c in by_tenant.values())
    return [_held(f, held) for f in out], queued


async def _accept(
    tx: Transaction,
    run: str,
    by_tenant: dict[str, list[Command]],
    guard: IntakeSettings,
    now: datetime,
) -> dict[str, str]:
    """One inbox row and its commands per tenant, the guard's holds applied; the entities
    held for approval, with the guard's reason."""
    since = now - timedelta(seconds=guard.guard_window_s)
    recent = await recent_deprovisioning(tx.conn, by_tenant, since)
    accepted: list[Accepted] = []
    held: dict[str, str] = {}
    for tenant, commands in sorted(by_tenant.items()):
        holds = approvals(
            commands,
            recent=recent[tenant],
            threshold=guard.guard_threshold,
            window_s=guard.guard_window_s,
        )
        held.update((commands[i].entity, reason) for i, reason in holds.items())
        event = EventRecord(
            source=SOURCE, event_id=f"{run}-{tenant}", type=HR_EVENT_TYPE, tenant=tenant
        )
        outcome = f"reconcile against HR: {len(commands)} deprovisioning command(s)"
        accepted.append(Accepted(event, commands, outcome, now, holds))
    await tx.inbox.add(accepted)
    await tx.commands.add(accepted)
    return held


async def _mark_left(tx: Transaction, queued: list[Finding], run: str, now: datetime) -> None:
    """As the intake's `left` rule: status left, no apps; a rehire then reactivates."""
    tenants = {
        user_entity(f.user.tenant, e): f.user.tenant for f in queued for e in f.user.employee_ids
    }
    states = await tx.states.load(dict.fromkeys(tenants, UserState))
    saved = [
        SavedState(
            entity,
            UserState.entity_kind,
            tenants[entity],
            UserState.model_validate({**state.model_dump(), "status": LEFT, "apps": ()}),
            run,
            now,
        )
        for entity, state in states.items()
        if isinstance(state, UserState) and state.status != LEFT
    ]
    await tx.states.save(saved)


def _held(finding: Finding, held: dict[str, str]) -> Finding:
    if finding.repair_status is not RepairStatus.QUEUED:
        return finding
    reasons = [held[c.entity] for c in finding.repair or () if c.entity in held]
    return replace(finding, held=reasons[0]) if reasons else finding
