"""Domain events: what an HR or CRM CloudEvent says, validated and mapped within the UCaaS
API's limits. Pure: no I/O.

An event that cannot be mapped (unknown type, missing or invalid fields, a name longer
than the API takes) raises `InvalidEventError`; the consumer sends its record to the
dead-letter topic with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, EmailStr, TypeAdapter
from pydantic import ValidationError as DataError

from connectors.calendar.fetch import FeedError, normalise
from connectors.calendar.schema import FeedData
from connectors.crm.schema import Company, Purchase
from connectors.events.cloudevents import Envelope, has_control
from connectors.hr.scim import HrUserData
from service.calendar.translate import Feed
from service.domain.commands import UserProfile

HrKind = Literal["joined", "updated", "leave_started", "leave_ended", "left"]
CompanyKind = Literal["created", "updated", "closed"]

HR_TYPES: dict[str, HrKind] = {
    "hr.user.joined": "joined",
    "hr.user.updated": "updated",
    "hr.user.leave_started": "leave_started",
    "hr.user.leave_ended": "leave_ended",
    "hr.user.left": "left",
}
COMPANY_TYPES: dict[str, CompanyKind] = {
    "crm.company.created": "created",
    "crm.company.updated": "updated",
    "crm.company.closed": "closed",
}
PURCHASE_TYPE = "crm.subscription.purchased"
FEED_TYPES: dict[str, Literal["registered", "removed"]] = {
    "calendar.feed.registered": "registered",
    "calendar.feed.removed": "removed",
}
KNOWN_TYPES = frozenset({*HR_TYPES, *COMPANY_TYPES, PURCHASE_TYPE, *FEED_TYPES})

# The UCaaS API's limits on user fields (docs/api-notes.md).
NAME_MAX = 50
TEXT_MAX = 100
CUSTOMER_CODE_MAX = 50  # the CRM id is the customer_code (1310 beyond 50)
FEED_ID_MAX = 150  # with the UID and start, meeting keys fit the outbox's 255 characters
EMPLOYEE_ID_MAX = 100  # with the tenant, the entity key fits the outbox's 255 characters
_EMAIL = TypeAdapter(EmailStr)
M = TypeVar("M", bound=BaseModel)


class InvalidEventError(Exception):
    """The event cannot become commands: `error` is unknown_type or invalid_data."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(f"{error}: {reason}")
        self.error = error
        self.reason = reason[:500]


@dataclass(frozen=True)
class HrEvent:
    kind: HrKind
    tenant: str
    employee_id: str
    profile: UserProfile
    effective_at: datetime | None
    active: bool = True  # SCIM `active`: an update for an unknown inactive user creates none


@dataclass(frozen=True)
class CompanyEvent:
    kind: CompanyKind
    crm_id: str
    company: Company


@dataclass(frozen=True)
class PurchaseEvent:
    crm_id: str
    purchase: Purchase


@dataclass(frozen=True)
class FeedEvent:
    kind: Literal["registered", "removed"]
    feed: Feed


DomainEvent = HrEvent | CompanyEvent | PurchaseEvent | FeedEvent


def to_domain(envelope: Envelope) -> DomainEvent:
    if envelope.type in HR_TYPES:
        return _hr(envelope, HR_TYPES[envelope.type])
    if envelope.type in COMPANY_TYPES:
        company = _validate(Company, envelope.data)
        crm_id = _entity_id(company.company_id, envelope, CUSTOMER_CODE_MAX)
        if COMPANY_TYPES[envelope.type] == "created":
            _require_complete(company)
        return CompanyEvent(COMPANY_TYPES[envelope.type], crm_id, company)
    if envelope.type == PURCHASE_TYPE:
        purchase = _validate(Purchase, envelope.data)
        return PurchaseEvent(_entity_id(purchase.company_id, envelope, CUSTOMER_CODE_MAX), purchase)
    if envelope.type in FEED_TYPES:
        return _feed(envelope, FEED_TYPES[envelope.type])
    raise InvalidEventError("unknown_type", f"no handler for event type {envelope.type!r}")


def _feed(envelope: Envelope, kind: Literal["registered", "removed"]) -> FeedEvent:
    data = _validate(FeedData, envelope.data)
    feed_id = _entity_id(data.feed_id, envelope, FEED_ID_MAX)
    if kind == "registered":
        missing = [n for n in ("url", "organizer_email", "tenant") if getattr(data, n) is None]
        if missing:
            raise InvalidEventError("invalid_data", f"a feed needs {', '.join(missing)}")
        if has_control(data.tenant or ""):  # as for HR events: not a CRM id, and a NUL
            raise InvalidEventError("invalid_data", "tenant holds control characters")
        try:
            normalise(data.url or "")
        except FeedError as exc:
            raise InvalidEventError("invalid_data", exc.reason) from None
    feed = Feed(
        feed_id=feed_id,
        url=data.url or "",
        organizer_email=str(data.organizer_email or "").lower(),
        tenant=data.tenant or "",
        interval_s=data.interval_s,
    )
    return FeedEvent(kind, feed)


def _validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise InvalidEventError(
            "invalid_data", f"data must be a JSON object, not {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except DataError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise InvalidEventError(
            "invalid_data", f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None


def _entity_id(given: str | None, envelope: Envelope, limit: int) -> str:
    found = (given or envelope.subject or "").strip()
    if not found:
        raise InvalidEventError("invalid_data", "no entity id: set the subject or the id field")
    if has_control(found):
        raise InvalidEventError("invalid_data", "the entity id holds control characters")
    if len(found) > limit:
        raise InvalidEventError(
            "invalid_data", f"entity id {found[:20]!r}... is longer than {limit} characters"
        )
    if envelope.subject and given and given != envelope.subject:
        raise InvalidEventError(
            "invalid_data", f"subject {envelope.subject!r} and data id {given!r} differ"
        )
    return found


def _require_complete(company: Company) -> None:
    missing = [
        name
        for name in ("name", "legal_name", "contact", "office_address")
        if getattr(company, name) is None
    ]
    if missing:
        raise InvalidEventError("invalid_data", f"a new company needs {', '.join(missing)}")


def _hr(envelope: Envelope, kind: HrKind) -> HrEvent:
    user = _validate(HrUserData, envelope.data)
    employee_id = _entity_id(user.employee_id, envelope, EMPLOYEE_ID_MAX)
    if has_control(user.tenant):
        raise InvalidEventError("invalid_data", "tenant holds control characters")
    return HrEvent(kind, user.tenant, employee_id, profile_of(user), user.effective_at, user.active)


def profile_of(user: HrUserData) -> UserProfile:
    """A UCaaS user profile from a SCIM user, or InvalidEventError if the API could not
    take it (every check here is one the API would otherwise answer with a 11xx code)."""
    email = user.primary_email
    if email is None:
        raise InvalidEventError("invalid_data", "no e-mail: emails[] or an e-mail userName needed")
    try:
        email = _EMAIL.validate_python(email)
    except DataError:
        raise InvalidEventError(
            "invalid_data", f"{email!r} is not a valid e-mail address"
        ) from None
    name = user.name
    first = (name.given_name if name else None) or (user.display_name or "").split(" ")[0]
    if not first:
        raise InvalidEventError(
            "invalid_data", "name.givenName is required (UCaaS needs a first name)"
        )
    fields = {
        "email": (email, TEXT_MAX),
        "name.givenName": (first, NAME_MAX),
        "name.middleName": (name.middle_name if name else None, NAME_MAX),
        "name.familyName": (name.family_name if name else None, NAME_MAX),
        "department": (user.enterprise.department if user.enterprise else None, TEXT_MAX),
        "title": (user.title, TEXT_MAX),
    }
    for field, (value, limit) in fields.items():
        if value is not None and len(value) > limit:
            raise InvalidEventError(
                "invalid_data", f"{field} is longer than the {limit} characters UCaaS takes"
            )
        if value is not None and has_control(value):
            raise InvalidEventError("invalid_data", f"{field} holds control characters")
    return UserProfile(
        email=email.lower(),
        first_name=first,
        middle_name=fields["name.middleName"][0] or None,
        last_name=fields["name.familyName"][0] or None,
        department=fields["department"][0] or None,
        designation=user.title or None,
    )
