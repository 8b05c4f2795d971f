"""Commands: what the service owes the UCaaS API, one kind per idempotent executor.

A command is (kind, entity, payload, tenant). `entity` is the FIFO unit: commands of one
entity run in the order they were accepted, commands of different entities concurrently.
Payloads are validated by the kind's model on the way in (translation) and on the way out
(execution), so a bad payload is a programming error caught before any call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

App = Literal["vc", "wb"]


class Kind(StrEnum):
    CREATE_USER = "create_user"
    UPDATE_USER = "update_user"
    SUSPEND_USER = "suspend_user"
    REACTIVATE_USER = "reactivate_user"
    ASSIGN_LICENCE = "assign_licence"
    REVOKE_LICENCE = "revoke_licence"
    CREATE_CUSTOMER = "create_customer"
    UPDATE_CUSTOMER = "update_customer"
    CLOSE_CUSTOMER = "close_customer"
    CREATE_SUBSCRIPTION = "create_subscription"
    SCHEDULE_MEETING = "schedule_meeting"
    UPDATE_MEETING = "update_meeting"
    CANCEL_MEETING = "cancel_meeting"


DEPROVISIONING = frozenset({Kind.SUSPEND_USER, Kind.REVOKE_LICENCE})
# How a command held for approval (the deprovisioning guard) says so in its hold reason.
APPROVAL = "approval: "
DENIED = "denied"


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- users ------------------------------------------------------------------------------
class UserPayload(Payload):
    tenant: str = Field(description="the customer's CRM id")
    employee_id: str


class UserProfile(Payload):
    email: str
    first_name: str
    middle_name: str | None = None
    last_name: str | None = None
    department: str | None = None
    designation: str | None = None


class CreateUser(UserPayload):
    profile: UserProfile


class UpdateUser(UserPayload):
    email: str = Field(description="to find the user if the mapping is lost")
    changes: dict[str, str | None]


class SuspendUser(UserPayload):
    pass


class ReactivateUser(UserPayload):
    pass


class AssignLicence(UserPayload):
    app: App


class RevokeLicence(UserPayload):
    app: App


# -- customers ----------------------------------------------------------------------------
class Address(Payload):
    address_1: str
    city: str
    country: str = Field(description="ISO 3166 alpha-2 or alpha-3")
    address_2: str | None = None
    address_3: str | None = None
    state: str | None = None
    zipcode: str | None = None


class CustomerProfile(Payload):
    customer_name: str
    customer_legal_name: str
    contact_name: str
    contact_email: str
    office_address: Address
    billing_address: Address | None = None
    individual: bool | None = None


class CreateCustomer(Payload):
    crm_id: str
    profile: CustomerProfile


class UpdateCustomer(Payload):
    crm_id: str
    changes: dict[str, Any]


class CloseCustomer(Payload):
    crm_id: str
    status: Literal["C", "S"] = "C"


class CreateSubscription(Payload):
    crm_id: str
    purchase_id: str
    plan_id: str
    app: App
    seats: int = Field(ge=1)
    start: date


# -- meetings -----------------------------------------------------------------------------
class MeetingSpec(Payload):
    room_name: str
    desc: str
    start_time: datetime = Field(description="UTC")
    zone: str = Field(description="IANA time zone name")
    duration: int = Field(ge=10)
    moderators: int = Field(ge=1)
    participants: int = Field(ge=0)
    invitees: tuple[str, ...] = ()


class MeetingPayload(Payload):
    meeting_key: str
    tenant: str
    organizer_email: str
    app: App = "vc"


class ScheduleMeeting(MeetingPayload):
    meeting: MeetingSpec


class UpdateMeeting(MeetingPayload):
    meeting: MeetingSpec


class CancelMeeting(MeetingPayload):
    pass


PAYLOADS: dict[Kind, type[Payload]] = {
    Kind.CREATE_USER: CreateUser,
    Kind.UPDATE_USER: UpdateUser,
    Kind.SUSPEND_USER: SuspendUser,
    Kind.REACTIVATE_USER: ReactivateUser,
    Kind.ASSIGN_LICENCE: AssignLicence,
    Kind.REVOKE_LICENCE: RevokeLicence,
    Kind.CREATE_CUSTOMER: CreateCustomer,
    Kind.UPDATE_CUSTOMER: UpdateCustomer,
    Kind.CLOSE_CUSTOMER: CloseCustomer,
    Kind.CREATE_SUBSCRIPTION: CreateSubscription,
    Kind.SCHEDULE_MEETING: ScheduleMeeting,
    Kind.UPDATE_MEETING: UpdateMeeting,
    Kind.CANCEL_MEETING: CancelMeeting,
}


def user_entity(tenant: str, employee_id: str) -> str:
    return f"user:{tenant}:{employee_id}"


def customer_entity(crm_id: str) -> str:
    return f"customer:{crm_id}"


def subscription_entity(crm_id: str) -> str:
    """All of one company's purchases: one FIFO entity, so they run one at a time. After a
    lost answer a purchase adopts "the customer's subscription of its plan that no other
    purchase maps to"; two purchases adopting at once could both pick the same one. The
    claim runs one command of an entity at a time across every dispatcher process, and a
    purchase's mapping is committed with its status, so the next one sees it taken."""
    return f"subscriptions:{crm_id}"


def meeting_entity(meeting_key: str) -> str:
    return f"meeting:{meeting_key}"


@dataclass(frozen=True)
class Command:
    kind: Kind
    entity: str
    payload: Payload
    tenant: str | None = None
    not_before: datetime | None = None  # effective-dated: not to run before this time

    def as_json(self) -> dict[str, Any]:
        """The shape `plan` prints and the outbox stores."""
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "entity": self.entity,
            "payload": self.payload.model_dump(mode="json", exclude_none=True),
        }
        if self.not_before is not None:
            out["not_before"] = self.not_before.isoformat()
        return out

    @classmethod
    def of(cls, payload: Payload, kind: Kind | None = None) -> Command:
        """A command with the entity and tenant its payload implies."""
        found = kind or next(k for k, model in PAYLOADS.items() if type(payload) is model)
        if isinstance(payload, UserPayload):
            return cls(
                found, user_entity(payload.tenant, payload.employee_id), payload, payload.tenant
            )
        if isinstance(payload, MeetingPayload):
            return cls(found, meeting_entity(payload.meeting_key), payload, payload.tenant)
        if isinstance(payload, CreateSubscription):
            # Not the customer's entity: a purchase may come before the company, and it
            # waits for the customer instead of blocking the customer's creation.
            return cls(found, subscription_entity(payload.crm_id), payload, payload.crm_id)
        crm_id = getattr(payload, "crm_id", None)
        if isinstance(crm_id, str):
            return cls(found, customer_entity(crm_id), payload, crm_id)
        raise TypeError(f"no entity for {type(payload).__name__}")  # pragma: no cover


def parse_payload(kind: Kind | str, data: dict[str, Any]) -> Payload:
    return PAYLOADS[Kind(kind)].model_validate(data)
