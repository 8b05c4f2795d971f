"""The event types the service takes: one table, one row per CloudEvent type.

Each row says which topic carries the type, the schema of its data (connectors/), how
that data becomes a domain event (the source's mapping), how a domain event and the
entity's desired state become commands (the source's translation), and the model of that
state. Everything else that knows the event types reads this table: the intake and
`plan` (`to_domain`, `translate`), the model each entity's state is read with (`state`),
the metrics' labels (`KNOWN_TYPES`) and the AsyncAPI document (entrypoints/asyncapi.py).

Adding an event type: a row here, the domain event's kind (domain/events.py), and the
rule that translates it (the source's module: lifecycle.py for HR, crm.py, feeds.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from connectors.calendar.schema import FeedData
from connectors.crm.schema import Company
from connectors.crm.schema import Purchase as PurchaseData
from connectors.events.cloudevents import Envelope
from connectors.hr.scim import HrUserData
from service.calendar.translate import FeedState
from service.domain.events import (
    CompanyEvent,
    CompanyKind,
    DomainEvent,
    FeedEvent,
    FeedKind,
    HrEvent,
    HrKind,
    PurchaseEvent,
    PurchaseKind,
)
from service.domain.translation import DesiredState, Translation
from service.intake import crm, feeds, hr
from service.intake.crm import CompanyState
from service.intake.licences import LicencePolicy
from service.intake.lifecycle import UserState, translate_hr
from service.intake.mapping import InvalidEventError, validate
from service.intake.people import People
from service.settings import IntakeSettings

Topic = Literal["hr", "crm", "calendar"]  # KafkaSettings.hr_topic, crm_topic, calendar_topic
W = TypeVar("W", bound=BaseModel)
E = TypeVar("E")
S = TypeVar("S", bound=DesiredState)


@dataclass(frozen=True)
class Context:
    """What a translation may read besides the event and its entity's state."""

    policy: LicencePolicy
    settings: IntakeSettings
    now: datetime
    # the leavers an unknown employee id may be (a rehire under a new id); None: no one
    people: People | None = None


@dataclass(frozen=True)
class EventType(Generic[W, E, S]):
    name: str  # the CloudEvent type
    topic: Topic
    data: type[W]  # the schema of the CloudEvent's data
    domain: type[E]  # the domain event it becomes
    to_domain: Callable[[Envelope, W, LicencePolicy], E]
    translate: Callable[[E, S | None, Context], Translation]
    state: type[S]  # the desired state of the event's entity

    def event(self, envelope: Envelope, policy: LicencePolicy) -> E:
        return self.to_domain(envelope, validate(self.data, envelope.data), policy)

    def translation(self, event: E, state: BaseModel | None, context: Context) -> Translation:
        """Translate with the entity's state, if it is of this type's model."""
        own = state if isinstance(state, self.state) else None
        return self.translate(event, own, context)


def _hr(event: HrEvent, state: UserState | None, context: Context) -> Translation:
    people, now = context.people, context.now
    leaver = people.leaver(event, now) if state is None and people is not None else None
    holder = people.holder(event, now) if people is not None else None
    return translate_hr(event, state, context.policy, now=now, leaver=leaver, holder=holder)


def _company(event: CompanyEvent, state: CompanyState | None, context: Context) -> Translation:
    return crm.translate_company(event, state, context.settings.close_status)


def _purchase(event: PurchaseEvent, state: CompanyState | None, _: Context) -> Translation:
    return crm.translate_purchase(event, state)


def _feed(event: FeedEvent, state: FeedState | None, context: Context) -> Translation:
    return feeds.translate_feed(event, state, context.now)


def _no_policy(mapping: Callable[[Envelope, W], E]) -> Callable[[Envelope, W, LicencePolicy], E]:
    """A mapping the policy file has no say in (CRM, calendar)."""

    def mapped(envelope: Envelope, data: W, _: LicencePolicy) -> E:
        return mapping(envelope, data)

    return mapped


def _hr_type(kind: HrKind) -> EventType[HrUserData, HrEvent, UserState]:
    return EventType(
        f"hr.user.{kind}", "hr", HrUserData, HrEvent, partial(hr.event_of, kind), _hr, UserState
    )


def _company_type(kind: CompanyKind) -> EventType[Company, CompanyEvent, CompanyState]:
    mapping = _no_policy(partial(crm.company_event, kind))
    return EventType(
        f"crm.company.{kind}", "crm", Company, CompanyEvent, mapping, _company, CompanyState
    )


def _purchase_type(kind: PurchaseKind) -> EventType[PurchaseData, PurchaseEvent, CompanyState]:
    mapping = _no_policy(partial(crm.purchase_event, kind))
    return EventType(
        f"crm.subscription.{kind}",
        "crm",
        PurchaseData,
        PurchaseEvent,
        mapping,
        _purchase,
        CompanyState,
    )


def _feed_type(kind: FeedKind) -> EventType[FeedData, FeedEvent, FeedState]:
    mapping = _no_policy(partial(feeds.feed_event, kind))
    return EventType(
        f"calendar.feed.{kind}", "calendar", FeedData, FeedEvent, mapping, _feed, FeedState
    )


EVENT_TYPES: tuple[EventType[Any, Any, Any], ...] = (
    _hr_type("joined"),
    _hr_type("updated"),
    _hr_type("leave_started"),
    _hr_type("leave_ended"),
    _hr_type("left"),
    _company_type("created"),
    _company_type("updated"),
    _company_type("closed"),
    _company_type("reopened"),
    _purchase_type("purchased"),
    _purchase_type("updated"),
    _purchase_type("cancelled"),
    _feed_type("registered"),
    _feed_type("removed"),
)

DEFAULT_POLICY = LicencePolicy()
BY_TYPE: dict[str, EventType[Any, Any, Any]] = {row.name: row for row in EVENT_TYPES}
KNOWN_TYPES = frozenset(BY_TYPE)


def _by_domain(
    rows: Sequence[EventType[Any, Any, Any]],
) -> dict[type[Any], EventType[Any, Any, Any]]:
    """Translation and state belong to the domain event, not to the CloudEvent type (the
    translation reads the event's kind): the rows of one domain class must agree, so that
    translating by the event's class is translating by its row."""
    found: dict[type[Any], EventType[Any, Any, Any]] = {}
    for row in rows:
        first = found.setdefault(row.domain, row)
        if (first.translate, first.state) != (row.translate, row.state):
            raise TypeError(f"{row.name} translates {row.domain.__name__} unlike {first.name}")
    return found


BY_DOMAIN = _by_domain(EVENT_TYPES)


def row_of(envelope: Envelope) -> EventType[Any, Any, Any]:
    found = BY_TYPE.get(envelope.type)
    if found is None:
        raise InvalidEventError("unknown_type", f"no handler for event type {envelope.type!r}")
    return found


def to_domain(envelope: Envelope, policy: LicencePolicy | None = None) -> DomainEvent:
    """The domain event a CloudEvent says (mapped as the policy file says), or
    InvalidEventError."""
    event: DomainEvent = row_of(envelope).event(envelope, policy or DEFAULT_POLICY)
    return event


def translate(event: DomainEvent, state: BaseModel | None, context: Context) -> Translation:
    """The one translation the intake and the dry-run `plan` share."""
    return BY_DOMAIN[type(event)].translation(event, state, context)
