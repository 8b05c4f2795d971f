"""Reconcile against HR, the source of truth: the people of a full HR snapshot, the UCaaS
users the service manages, what is found between them, and the report. Plain values, no
I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from service.domain.commands import App, Command, user_entity
from service.reconcile.model import RepairStatus

HR_EVENT_TYPE = "hr.reconcile"  # the inbox type of a run's repairs (source: reconcile)


@dataclass(frozen=True)
class Person:
    """One person of the snapshot, as the intake maps their SCIM user."""

    ref: str  # where the record was: "Resources[3]", "topic/0@17"
    tenant: str
    employee_id: str
    active: bool  # SCIM `active`; false too when the topic's latest event is hr.user.left
    email: str | None = None
    on_leave: bool = False  # the topic's latest event is hr.user.leave_started


@dataclass(frozen=True)
class Skipped:
    """A record the intake's mapping refuses. Its person may well exist: their employee
    id (when the record names one) is taken as present, so they are never deprovisioned
    for a record HR sent badly."""

    ref: str
    reason: str
    employee_id: str | None = None
    tenant: str | None = None  # None: any tenant


@dataclass(frozen=True)
class Snapshot:
    source: str  # the file, or kafka:TOPIC
    people: tuple[Person, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    records: int = 0  # resources present, or live records (not tombstones) of the topic
    declared: int | None = None  # a ListResponse's totalResults
    start_index: int | None = None  # a ListResponse's startIndex
    tombstones: int = 0
    elsewhere: int = 0  # people of other tenants than --tenant, left out

    @property
    def tenants(self) -> frozenset[str]:
        return frozenset(p.tenant for p in self.people)

    def count(self, tenant: str) -> int:
        return sum(1 for p in self.people if p.tenant == tenant)


@dataclass(frozen=True)
class Mapped:
    """A user id mapping: employee id -> UCaaS user, with the e-mail it was made with."""

    tenant: str
    employee_id: str
    ucaas_id: str
    email: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ManagedUser:
    """A UCaaS user the service manages. A rehire under a new employee id can map a second
    employee id to the same user: all of them are here, the one its suspend runs under
    first (the one holding licences, else the latest mapped)."""

    tenant: str
    ucaas_id: str
    employee_ids: tuple[str, ...]
    email: str | None = None
    licences: tuple[tuple[str, App], ...] = ()  # (employee id, app) the service mapped

    @property
    def entities(self) -> frozenset[str]:
        return frozenset(user_entity(self.tenant, e) for e in self.employee_ids)


class Found(StrEnum):
    ORPHAN = "orphan"  # none of its employee ids is in HR
    LEAVER = "leaver-still-active"  # HR says inactive, UCaaS says active


@dataclass(frozen=True)
class Finding:
    what: Found
    user: ManagedUser
    status: str | None  # the UCaaS user's status (A, S, ...); None: not in UCaaS
    needs: bool  # something to undo (active, or licences still mapped)
    repair: tuple[Command, ...] | None = None
    repair_status: RepairStatus = RepairStatus.NONE
    reason: str | None = None
    held: str | None = None  # the guard's reason, when the repair waits for approval

    @property
    def unresolved(self) -> bool:
        """Something to undo that no command queued (yet) undoes: exit code 1."""
        done = (RepairStatus.QUEUED, RepairStatus.ALREADY_QUEUED)
        return self.needs and self.repair_status not in done

    def as_json(self) -> dict[str, Any]:
        return {
            "finding": self.what.value,
            "tenant": self.user.tenant,
            "employee_ids": list(self.user.employee_ids),
            "ucaas_id": self.user.ucaas_id,
            "email": self.user.email,
            "ucaas_status": self.status,
            "licences": [f"{e}:{app}" for e, app in self.user.licences],
            "repair": self.repair_status.value,
            "commands": [c.as_json() for c in self.repair or ()],
            "held_for_approval": self.held,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class HrReport:
    snapshot: Snapshot
    checked: int  # managed UCaaS users of the tenants in scope
    findings: list[Finding]
    repair: bool
    suspect: tuple[str, ...] = ()  # why the snapshot looks empty or truncated
    refused: str | None = None  # why --repair wrote nothing
    queued: int = 0
    at: datetime | None = None
    tenants: tuple[str, ...] = ()

    def of(self, what: Found) -> list[Finding]:
        return [f for f in self.findings if f.what is what]

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.findings if f.unresolved]

    @property
    def held(self) -> int:
        return sum(1 for f in self.findings if f.held)

    def summary(self) -> str:
        snap = self.snapshot
        skipped = f" ({len(snap.skipped)} record(s) skipped)" if snap.skipped else ""
        verb = "queued" if self.repair else "repairable"
        count = sum(
            1
            for f in self.findings
            if f.repair_status is (RepairStatus.QUEUED if self.repair else RepairStatus.PLANNED)
        )
        held = f", {self.held} held for approval" if self.held else ""
        return (
            f"HR snapshot: {len(snap.people)} people{skipped}; {self.checked} managed users "
            f"checked: {len(self.of(Found.ORPHAN))} orphans, "
            f"{len(self.of(Found.LEAVER))} leavers still active, {count} {verb}{held}"
        )

    def as_json(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "summary": self.summary(),
            "snapshot": snap.source,
            "tenants": list(self.tenants),
            "people": len(snap.people),
            "skipped_records": len(snap.skipped),
            "tombstones": snap.tombstones,
            "checked": self.checked,
            "orphans": len(self.of(Found.ORPHAN)),
            "leavers_still_active": len(self.of(Found.LEAVER)),
            "queued_commands": self.queued,
            "held_for_approval": self.held,
            "unresolved": len(self.unresolved),
            "suspect": list(self.suspect),
            "repair_refused": self.refused,
        }
