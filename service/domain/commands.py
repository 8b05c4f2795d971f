"""Commands: what the service owes the UCaaS API, one kind per idempotent executor.

A command is (kind, entity, payload, tenant). `entity` is the FIFO unit: commands of one
entity run in the order they were accepted, commands of different entities concurrently.
Payloads are validated by the kind's model on the way in (translation) and on the way out
(execution), so a bad payload is a programming error caught before any call.

Each kind is declared once, by its payload model: `@command(Kind.X, ...)` names the kind
and its properties, and PAYLOADS, DEPROVISIONING and PRODUCERS are derived from those
declarations. A new UCaaS command is a Kind member and its payload here (with the type of the result
event its success publishes, `result=`), an executor (`@executes(Payload)` in
service/executors/), and the translation that emits it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

App = Literal["vc", "wb"]


class Kind(StrEnum):
    CREATE_USER = "create_user"
    UPDATE_USER = "update_user"
    SUSPEND_USER = "suspend_user"
    REACTIVATE_USER = "reactivate_user"
    CHANGE_EMAIL = "change_email"
    ASSIGN_LICENCE = "assign_licence"
    REVOKE_LICENCE = "revoke_licence"
    CREATE_CUSTOMER = "create_customer"
    UPDATE_CUSTOMER = "update_customer"
    CLOSE_CUSTOMER = "close_customer"
    CREATE_SUBSCRIPTION = "create_subscription"
    REOPEN_CUSTOMER = "reopen_customer"
    SET_SUBSCRIPTION_STATUS = "set_subscription_status"
    SET_SUBSCRIPTION_SEATS = "set_subscription_seats"
    SCHEDULE_MEETING = "schedule_meeting"
    UPDATE_MEETING = "update_meeting"
    CANCEL_MEETING = "cancel_meeting"


# How a command held for approval (the deprovisioning guard) says so in its hold reason.
APPROVAL = "approval: "
DENIED = "denied"


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Declared by @command on each kind's payload model.
    kind: ClassVar[Kind]
    # Takes access away (suspends a user, revokes a licence): a burst of these is held for
    # an operator's approval (intake/guard.py).
    deprovisions: ClassVar[bool] = False
    # Its success can satisfy another command's prerequisite (a customer, a subscription,
    # a user to organise meetings, a freed seat): it wakes the tenant's waiting commands.
    produces_prerequisite: ClassVar[bool] = False
    # The CloudEvent type its success publishes on the results topic (service/results/).
    result: ClassVar[str]


PAYLOADS: dict[Kind, type[Payload]] = {}  # each kind's payload model, filled by @command
M = TypeVar("M", bound=type[Payload])


def command(
    kind: Kind, *, result: str, deprovisions: bool = False, produces_prerequisite: bool = False
) -> Callable[[M], M]:
    """Declare a payload model as the one of `kind`, with the kind's properties and the
    type of the result event its success publishes."""

    def declare(model: M) -> M:
        if kind in PAYLOADS:
            raise TypeError(f"{kind} has two payload models: {PAYLOADS[kind]} and {model}")
        model.kind = kind
        model.result = result
        model.deprovisions = deprovisions
        model.produces_prerequisite = produces_prerequisite
        PAYLOADS[kind] = model
        return model

    return declare


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


@command(Kind.CREATE_USER, result="ucaas.user.provisioned", produces_prerequisite=True)
class CreateUser(UserPayload):
    profile: UserProfile
    # A rehire under a new employee id: this leaver's UCaaS user is the person's, adopted
    # rather than created again.
    rehire_of: str | None = None


@command(Kind.UPDATE_USER, result="ucaas.user.updated")
class UpdateUser(UserPayload):
    email: str = Field(description="to find the user if the mapping is lost")
    changes: dict[str, str | None]


@command(Kind.SUSPEND_USER, result="ucaas.user.suspended", deprovisions=True)
class SuspendUser(UserPayload):
    pass


@command(Kind.REACTIVATE_USER, result="ucaas.user.reactivated")
class ReactivateUser(UserPayload):
    pass


@command(Kind.CHANGE_EMAIL, result="ucaas.user.email_changed")
class ChangeEmail(UserPayload):
    """An e-mail change, which the API cannot make: queued held for a person, who changes
    it in UCaaS by hand and approves; the executor then checks and records it."""

    old_email: str
    new_email: str


@command(Kind.ASSIGN_LICENCE, result="ucaas.user.licence_assigned")
class AssignLicence(UserPayload):
    app: App


@command(
    Kind.REVOKE_LICENCE,
    result="ucaas.user.licence_revoked",
    deprovisions=True,
    produces_prerequisite=True,
)
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


@command(Kind.CREATE_CUSTOMER, result="ucaas.customer.created", produces_prerequisite=True)
class CreateCustomer(Payload):
    crm_id: str
    profile: CustomerProfile


@command(Kind.UPDATE_CUSTOMER, result="ucaas.customer.updated")
class UpdateCustomer(Payload):
    crm_id: str
    changes: dict[str, Any]


@command(Kind.CLOSE_CUSTOMER, result="ucaas.customer.closed")
class CloseCustomer(Payload):
    crm_id: str
    status: Literal["C", "S"] = "C"


# A closed (or suspended) customer refuses its tenant's login (4014): reopening it lets the
# tenant's waiting commands run again.
@command(Kind.REOPEN_CUSTOMER, result="ucaas.customer.reopened", produces_prerequisite=True)
class ReopenCustomer(Payload):
    crm_id: str


class PurchasePayload(Payload):
    """A command about one CRM purchase: its entity is its company's purchases."""

    crm_id: str
    purchase_id: str


@command(Kind.CREATE_SUBSCRIPTION, result="ucaas.subscription.created", produces_prerequisite=True)
class CreateSubscription(PurchasePayload):
    plan_id: str
    app: App
    seats: int = Field(ge=1)
    start: date


SubscriptionStatus = Literal["A", "S", "X"]  # active, suspended, expired (the API's codes)


# Not `deprovisions`: the guard counts people, and this is one deliberate CRM act on a
# company. A subscription active again (or with more seats) can be what a waiting licence
# or meeting needs (1262, 1615/1616), hence produces_prerequisite.
@command(
    Kind.SET_SUBSCRIPTION_STATUS, result="ucaas.subscription.changed", produces_prerequisite=True
)
class SetSubscriptionStatus(PurchasePayload):
    status: SubscriptionStatus


@command(
    Kind.SET_SUBSCRIPTION_SEATS, result="ucaas.subscription.changed", produces_prerequisite=True
)
class SetSubscriptionSeats(PurchasePayload):
    seats: int = Field(ge=1)


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
    # the calendar feed the meeting comes from (for its result event; absent in rows
    # queued before it was recorded)
    feed_id: str | None = None


@command(Kind.SCHEDULE_MEETING, result="ucaas.meeting.scheduled")
class ScheduleMeeting(MeetingPayload):
    meeting: MeetingSpec


@command(Kind.UPDATE_MEETING, result="ucaas.meeting.updated")
class UpdateMeeting(MeetingPayload):
    meeting: MeetingSpec


@command(Kind.CANCEL_MEETING, result="ucaas.meeting.cancelled")
class CancelMeeting(MeetingPayload):
    pass


DEPROVISIONING = frozenset(k for k, model in PAYLOADS.items() if model.deprovisions)
PRODUCERS = frozenset(k for k, model in PAYLOADS.items() if model.produces_prerequisite)


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
    held: str | None = None  # why it waits for a person from the start (the translation's)

    def as_json(self) -> dict[str, Any]:
        """The shape `plan` prints and the outbox stores."""
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "entity": self.entity,
            "payload": self.payload.model_dump(mode="json", exclude_none=True),
        }
        if self.not_before is not None:
            out["not_before"] = self.not_before.isoformat()
        if self.held is not None:
            out["held"] = self.held
        return out

    @classmethod
    def of(cls, payload: Payload) -> Command:
        """A command of the payload's kind, with the entity and tenant the payload implies."""
        found = type(payload).kind
        if isinstance(payload, UserPayload):
            return cls(
                found, user_entity(payload.tenant, payload.employee_id), payload, payload.tenant
            )
        if isinstance(payload, MeetingPayload):
            return cls(found, meeting_entity(payload.meeting_key), payload, payload.tenant)
        if isinstance(payload, PurchasePayload):
            # Not the customer's entity: a purchase may come before the company, and it
            # waits for the customer instead of blocking the customer's creation; its
            # later status and seat changes queue behind its creation.
            return cls(found, subscription_entity(payload.crm_id), payload, payload.crm_id)
        crm_id = getattr(payload, "crm_id", None)
        if isinstance(crm_id, str):
            return cls(found, customer_entity(crm_id), payload, crm_id)
        raise TypeError(f"no entity for {type(payload).__name__}")  # pragma: no cover


def parse_payload(kind: Kind | str, data: dict[str, Any]) -> Payload:
    return PAYLOADS[Kind(kind)].model_validate(data)
