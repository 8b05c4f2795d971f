"""Domain events: what an HR, CRM or calendar CloudEvent says, in the service's own terms.

Plain data, no I/O and no wire format: the intake maps each CloudEvent's data (a SCIM
user, a CRM company, a feed registration) to one of these within the UCaaS API's limits
(service/intake/), and translation reads only these. Each knows the entity whose desired
state it changes, and the tenant it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from service.domain.commands import (
    App,
    UserProfile,
    customer_entity,
    user_entity,
)
from service.domain.feeds import Feed, feed_entity

HrKind = Literal["joined", "updated", "leave_started", "leave_ended", "left"]
CompanyKind = Literal["created", "updated", "closed", "reopened"]
CompanyStatus = Literal["open", "closed"]
PurchaseKind = Literal["purchased", "updated", "cancelled"]
PurchaseStatus = Literal["active", "cancelled", "expired"]
FeedKind = Literal["registered", "removed"]


@dataclass(frozen=True)
class HrEvent:
    """What an HR system says of one person: the whole SCIM user, level-triggered (the
    kind is a hint; `active` and the scope decide whether they are a leaver)."""

    kind: HrKind
    tenant: str
    employee_id: str
    profile: UserProfile
    effective_at: datetime | None
    active: bool = True  # SCIM `active`
    # When the source says the person looked like this (SCIM meta.lastModified, else the
    # CloudEvent's time): an event older than one applied changes nothing.
    source_time: datetime | None = None
    employee_number: str | None = None  # enterprise employeeNumber: a rehire match key
    out_of_scope: str | None = None  # why the policy's scope leaves them out: a leaver

    @property
    def entity(self) -> str:
        return user_entity(self.tenant, self.employee_id)


class _OfCompany:
    """A CRM fact: its entity is the company's, its tenant the company's CRM id."""

    crm_id: str

    @property
    def entity(self) -> str:
        return customer_entity(self.crm_id)

    @property
    def tenant(self) -> str:
        return self.crm_id


@dataclass(frozen=True)
class CompanyEvent(_OfCompany):
    kind: CompanyKind
    crm_id: str
    # The UCaaS customer fields the event carries (an update carries only what changed);
    # a created company carries them all.
    fields: Mapping[str, Any] = field(default_factory=dict)
    # The status the data states, if it states one: it wins over the event's name.
    status: CompanyStatus | None = None


@dataclass(frozen=True)
class Purchase:
    """A purchase as the CRM has it now (every crm.subscription.* event carries it whole)."""

    purchase_id: str
    plan: str  # a UCaaS plan id
    app: App
    seats: int
    start: date
    status: PurchaseStatus | None = None  # None: the data does not say; the event's name does


@dataclass(frozen=True)
class PurchaseEvent(_OfCompany):
    """A purchase changes its company's state (its purchases, their status and seats)."""

    crm_id: str
    purchase: Purchase
    kind: PurchaseKind = "purchased"


@dataclass(frozen=True)
class FeedEvent:
    kind: FeedKind
    feed: Feed

    @property
    def entity(self) -> str:
        return feed_entity(self.feed.feed_id)

    @property
    def tenant(self) -> str:
        return self.feed.tenant


DomainEvent = HrEvent | CompanyEvent | PurchaseEvent | FeedEvent
