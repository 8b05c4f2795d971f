"""Snapshot records to people, through the intake's own mapping: each SCIM user is put in
an hr.user.updated CloudEvent and given to `to_domain` (service/intake/events.py), so a
record means here what it means to the intake. Pure.

A record the mapping refuses is skipped and reported with its reason; the employee id it
names (enterprise employeeNumber, else externalId, else the record's key) counts as
present, so nobody is deprovisioned because HR sent their record badly.

From a topic, the latest event of each key is the person's state: hr.user.left says they
left whatever its `active`; hr.user.leave_started says they are on leave (not a leaver);
a tombstone says HR no longer has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from connectors.events.cloudevents import Envelope, InvalidRecordError, Record, parse
from connectors.hr.scim import ENTERPRISE
from connectors.hr.snapshot import ListResponse
from service.domain.events import HrEvent
from service.intake.events import to_domain
from service.intake.mapping import InvalidEventError
from service.reconcile.hr_model import Person, Skipped, Snapshot

SOURCE_URI = "/ucaas-sync/reconcile"
MAPPED_AS = "hr.user.updated"
HR_TYPES = "hr.user."


def from_list_response(response: ListResponse, source: str, tenant: str | None) -> Snapshot:
    """The people of a ListResponse; `tenant` for resources without one, and when given
    the only tenant kept."""
    people: list[Person] = []
    skipped: list[Skipped] = []
    for index, resource in enumerate(response.resources):
        ref = f"Resources[{index}]"
        if not isinstance(resource, dict):
            skipped.append(Skipped(ref, f"a JSON {type(resource).__name__}, not a SCIM user"))
            continue
        data = _with_tenant(resource, tenant)
        record = Record("hr-snapshot", 0, index, None, None)
        envelope = Envelope(ref, SOURCE_URI, MAPPED_AS, None, None, data, record)
        found = _person(ref, envelope, data, key=None)
        if isinstance(found, Skipped):
            skipped.append(found)
        else:
            people.append(found)
    return _scoped(
        Snapshot(
            source=source,
            people=tuple(people),
            skipped=tuple(skipped),
            records=len(response.resources),
            declared=response.total_results,
            start_index=response.start_index,
        ),
        tenant,
    )


def from_records(records: Iterable[Record], source: str, tenant: str | None) -> Snapshot:
    """The people of a topic's latest records (one per key; keyless ones as they are)."""
    people: list[Person] = []
    skipped: list[Skipped] = []
    live = tombstones = 0
    for record in records:
        ref = f"{record.topic}/{record.partition}@{record.offset}"
        key = record.key.decode("utf-8", "replace") if record.key else None
        if record.value is None:
            tombstones += 1
            continue
        live += 1
        try:
            envelope = parse(record)
        except InvalidRecordError as exc:
            skipped.append(Skipped(ref, f"{exc.error}: {exc.reason}", key, tenant))
            continue
        data = _with_tenant(envelope.data, tenant)
        if not envelope.type.startswith(HR_TYPES):
            skipped.append(
                Skipped(ref, f"type {envelope.type!r} is not an hr.user event", key, tenant)
            )
            continue
        kind = envelope.type.removeprefix(HR_TYPES)
        mapped = replace(envelope, type=MAPPED_AS, subject=envelope.subject or key, data=data)
        found = _person(ref, mapped, data, key=key)
        if isinstance(found, Skipped):
            skipped.append(found)
        elif kind == "left":
            people.append(replace(found, active=False))
        else:
            people.append(replace(found, on_leave=kind == "leave_started"))
    return _scoped(
        Snapshot(
            source=source,
            people=tuple(people),
            skipped=tuple(skipped),
            records=live,
            tombstones=tombstones,
        ),
        tenant,
    )


def _person(ref: str, envelope: Envelope, data: Any, *, key: str | None) -> Person | Skipped:
    try:
        event = to_domain(envelope)
    except InvalidEventError as exc:
        return Skipped(ref, exc.reason, _employee_id(data) or key, _tenant(data))
    if not isinstance(event, HrEvent):  # pragma: no cover - the type is an HR one
        return Skipped(ref, f"not an HR event: {type(event).__name__}", key)
    return Person(ref, event.tenant, event.employee_id, event.active, event.profile.email)


def _scoped(snapshot: Snapshot, tenant: str | None) -> Snapshot:
    if tenant is None:
        return snapshot
    kept = tuple(p for p in snapshot.people if p.tenant == tenant)
    return replace(snapshot, people=kept, elsewhere=len(snapshot.people) - len(kept))


def _with_tenant(data: Any, tenant: str | None) -> Any:
    """The contract's `tenant`, else the one given on the command line."""
    if tenant is None or not isinstance(data, dict) or data.get("tenant"):
        return data
    return {**data, "tenant": tenant}


def _employee_id(data: Any) -> str | None:
    """The employee id a refused SCIM user names, as the mapping would read it."""
    if not isinstance(data, dict):
        return None
    for extension in (data.get(ENTERPRISE), data.get("enterprise")):
        if isinstance(extension, dict) and _text(extension.get("employeeNumber")):
            return _text(extension.get("employeeNumber"))
    return _text(data.get("externalId"))


def _tenant(data: Any) -> str | None:
    return _text(data.get("tenant")) if isinstance(data, dict) else None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def skipped_ids(skipped: Sequence[Skipped]) -> list[tuple[str | None, str]]:
    """(tenant or None for any, employee id) of the refused records that name one."""
    return [(s.tenant, s.employee_id) for s in skipped if s.employee_id]
