"""What reconcile compares and what it reports: plain values, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from connectors.ucaas.models.customers import Customer
from connectors.ucaas.models.meetings import Meeting
from connectors.ucaas.models.subscriptions import Subscription
from connectors.ucaas.models.users import User
from service.domain.commands import App, Command

# In the order repairs are queued: a customer before its subscriptions, a user before its
# licences (one entity: the outbox runs them in that order).
KINDS = ("customer", "subscription", "user", "licence", "meeting")
SOURCE = "reconcile"  # the event_source of every command reconcile queues


class What(StrEnum):
    MISSING = "missing"
    DIFFERS = "differs"
    GONE = "cancelled-or-gone"  # meetings: cancelled in UCaaS, or never there


class RepairStatus(StrEnum):
    PLANNED = "planned"  # commands to queue (queued with --repair)
    QUEUED = "queued"  # queued by this run
    ALREADY_QUEUED = "already-queued"  # an earlier reconcile's repair is still open
    WAITS = "waits"  # the entity has other open commands: compared again after they run
    NONE = "none"  # cannot be repaired by a command: a person decides


@dataclass(frozen=True)
class Pushed:
    """One id mapping: the UCaaS object and the state the service last pushed to it."""

    kind: str
    tenant: str
    external_id: str
    ucaas_id: str
    natural_key: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """What UCaaS answered, by UCaaS id. An id absent here is missing (or cancelled)."""

    users: Mapping[str, User] = field(default_factory=dict)
    customers: Mapping[str, Customer] = field(default_factory=dict)
    subscriptions: Mapping[str, Subscription] = field(default_factory=dict)
    meetings: Mapping[str, Meeting] = field(default_factory=dict)


@dataclass(frozen=True)
class MeetingOwner:
    """Who organises a meeting and in which app: from the last command that scheduled it
    (the mapping keeps only the organiser's UCaaS id and the spec)."""

    organizer_email: str
    app: App = "vc"


@dataclass(frozen=True)
class OpenCommand:
    """The first unfinished outbox command of an entity."""

    id: int
    source: str | None


@dataclass(frozen=True)
class Drift:
    kind: str
    tenant: str
    external_id: str  # employee id, CRM id, purchase id, "employee:app", meeting key
    ucaas_id: str
    what: What
    entity: str  # the outbox entity its repairs run under
    fields: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)  # (pushed, actual)
    state: Mapping[str, Any] = field(default_factory=dict)  # what was pushed
    repair: tuple[Command, ...] | None = None
    status: RepairStatus = RepairStatus.NONE
    reason: str | None = None  # why no repair, or what an operator should know

    @property
    def forgets_mapping(self) -> bool:
        """A missing object's mapping points at nothing, and a create is a no-op while it
        exists: the repair forgets it in the transaction that queues the create."""
        return self.what is What.MISSING and self.kind in ("customer", "subscription", "user")

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tenant": self.tenant,
            "entity": self.external_id,
            "ucaas_id": self.ucaas_id,
            "drift": self.what.value,
            "fields": {k: {"pushed": p, "actual": a} for k, (p, a) in self.fields.items()},
            "repair": self.status.value,
            "commands": [c.as_json() for c in self.repair or ()],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Comparison:
    checked: int
    drifts: list[Drift]


@dataclass(frozen=True)
class Report:
    checked: int
    drifts: list[Drift]
    repair: bool
    queued: int = 0  # commands written by this run
    at: datetime | None = None

    @property
    def in_step(self) -> int:
        return self.checked - len(self.drifts)

    @property
    def unresolved(self) -> list[Drift]:
        """Drift nobody has queued a repair for (yet): what makes the exit code 1."""
        done = (RepairStatus.QUEUED, RepairStatus.ALREADY_QUEUED)
        return [d for d in self.drifts if d.status not in done]

    @property
    def repaired(self) -> int:
        return sum(1 for d in self.drifts if d.status is RepairStatus.QUEUED)

    def summary(self) -> str:
        verb = "repaired/queued" if self.repair else "repairable"
        count = (
            self.repaired
            if self.repair
            else sum(1 for d in self.drifts if d.status is RepairStatus.PLANNED)
        )
        return (
            f"checked {self.checked} objects: {self.in_step} in step, "
            f"{len(self.drifts)} drifted, {count} {verb}"
        )
