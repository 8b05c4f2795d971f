"""CRM events: companies and purchases to domain events, and those to customer and
subscription commands. A company's CRM id is its UCaaS customer_code.

Level-triggered: each event states what the company or purchase is now, and translation
converges the desired state on it, whatever the event's name. A `status` in the data wins;
without one, the name says it (closed, reopened, cancelled) or the status is unchanged.

company created    new: create_customer (customer_code = the CRM id); known: changes only
company updated    known: update_customer with the fields that changed; unknown and
                   complete: create_customer; unknown and partial: nothing (recorded)
company closed     close_customer (status C, or S when the policy suspends instead)
company reopened   a closed company: reopen_customer (status A); else as updated
purchase           new and active: create_subscription (it waits for the customer); known:
                   set_subscription_status (cancelled S, expired X, active A) and
                   set_subscription_seats for what changed; a plan cannot change
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.crm.schema import Company, PostalAddress
from connectors.crm.schema import Purchase as PurchaseData
from connectors.events.cloudevents import Envelope
from service.domain.commands import (
    Address,
    CloseCustomer,
    Command,
    CreateCustomer,
    CreateSubscription,
    CustomerProfile,
    ReopenCustomer,
    SetSubscriptionSeats,
    SetSubscriptionStatus,
    SubscriptionStatus,
    UpdateCustomer,
)
from service.domain.events import (
    CompanyEvent,
    CompanyKind,
    CompanyStatus,
    Purchase,
    PurchaseEvent,
    PurchaseKind,
    PurchaseStatus,
)
from service.domain.translation import DesiredState, Translation
from service.intake.mapping import CUSTOMER_CODE_MAX, entity_id, invalid

CloseStatus = Literal["C", "S"]
# The UCaaS subscription status each purchase status asks for: a cancelled purchase is
# suspended (S), an expired one expired (X); both come back with A.
SUBSCRIPTION_STATUS: dict[PurchaseStatus, SubscriptionStatus] = {
    "active": "A",
    "cancelled": "S",
    "expired": "X",
}


class PurchaseState(BaseModel):
    """What the accepted events ask of one purchase."""

    model_config = ConfigDict(frozen=True)

    status: PurchaseStatus = "active"
    seats: int | None = None  # None: taken before seats were kept (a state of an older version)
    plan: str | None = None
    # create_subscription issued. False: the purchase was cancelled or expired before it was
    # ever active here, so no subscription was asked for (an active status later asks).
    subscribed: bool = True


class CompanyState(DesiredState):
    """What the accepted events ask of one company: its customer and its purchases."""

    model_config = ConfigDict(frozen=True)
    entity_kind: ClassVar[str] = "company"  # entity_state.kind

    created: bool = False  # create_customer issued (a purchase may come first)
    status: CompanyStatus = "open"
    profile: dict[str, Any] = Field(default_factory=dict)  # the fields last asked for
    purchases: dict[str, PurchaseState] = Field(default_factory=dict)  # by purchase id

    @field_validator("purchases", mode="before")
    @classmethod
    def _from_ids(cls, value: Any) -> Any:
        """States stored before purchases kept their status and seats hold a list of ids:
        each one's create_subscription was issued, and nothing said it ended."""
        if isinstance(value, list | tuple):
            return {str(purchase_id): PurchaseState() for purchase_id in value}
        return value

    def with_purchase(self, purchase_id: str, purchase: PurchaseState) -> CompanyState:
        return self.model_copy(update={"purchases": {**self.purchases, purchase_id: purchase}})


def address(postal: PostalAddress) -> Address:
    return Address(
        address_1=postal.line1,
        address_2=postal.line2,
        address_3=postal.line3,
        city=postal.city,
        state=postal.region,
        zipcode=postal.postal_code,
        country=postal.country,
    )


def customer_fields(company: Company) -> dict[str, Any]:
    """The UCaaS customer fields a (possibly partial) company carries."""
    fields: dict[str, Any] = {
        "customer_name": company.name,
        "customer_legal_name": company.legal_name,
        "individual": company.individual,
    }
    if company.contact is not None:
        fields["contact_name"] = company.contact.name
        fields["contact_email"] = str(company.contact.email)
    if company.office_address is not None:
        fields["office_address"] = address(company.office_address).model_dump(exclude_none=True)
    if company.billing_address is not None:
        fields["billing_address"] = address(company.billing_address).model_dump(exclude_none=True)
    return {k: v for k, v in fields.items() if v is not None}


def company_event(kind: CompanyKind, envelope: Envelope, company: Company) -> CompanyEvent:
    """The domain event of a crm.company.* CloudEvent whose data is `company`."""
    crm_id = entity_id(company.company_id, envelope, CUSTOMER_CODE_MAX)
    if kind == "created":
        missing = [
            name
            for name in ("name", "legal_name", "contact", "office_address")
            if getattr(company, name) is None
        ]
        if missing:
            raise invalid(f"a new company needs {', '.join(missing)}")
    return CompanyEvent(kind, crm_id, customer_fields(company), company_status(company))


def company_status(company: Company) -> CompanyStatus | None:
    """The status a company's data states (the CRM's active is the state's open)."""
    if company.status is None:
        return None
    return "closed" if company.status == "closed" else "open"


def purchase_event(kind: PurchaseKind, envelope: Envelope, data: PurchaseData) -> PurchaseEvent:
    """The domain event of a crm.subscription.* CloudEvent."""
    crm_id = entity_id(data.company_id, envelope, CUSTOMER_CODE_MAX)
    purchase = Purchase(data.purchase_id, data.plan, data.app, data.seats, data.start, data.status)
    return PurchaseEvent(crm_id, purchase, kind)


def _complete(fields: Mapping[str, Any]) -> bool:
    needed = (
        "customer_name",
        "customer_legal_name",
        "contact_name",
        "contact_email",
        "office_address",
    )
    return all(k in fields for k in needed)


_STATUS_OF_KIND: dict[CompanyKind, CompanyStatus] = {"closed": "closed", "reopened": "open"}


def translate_company(
    event: CompanyEvent, state: CompanyState | None, close_status: CloseStatus = "C"
) -> Translation:
    known = state or CompanyState()
    if event.kind == "closed":  # needs no fields, and changes none
        commands: list[Command] = []
        new, note = known, None
    else:
        commands, new, note = _profile(event, known)
    wanted = event.status or _STATUS_OF_KIND.get(event.kind)
    crm_id = event.crm_id
    if wanted == "closed" and new.status != "closed":
        commands.append(Command.of(CloseCustomer(crm_id=crm_id, status=close_status)))
        new = new.model_copy(update={"status": "closed"})
    elif wanted == "open" and new.status == "closed":
        # A closed company's events change its fields and leave it closed; only a stated
        # status or a `reopened` brings it back (an old `created` replayed must not).
        commands.append(Command.of(ReopenCustomer(crm_id=crm_id)))
        new = new.model_copy(update={"status": "open"})
    elif wanted is not None and not commands:
        note = f"already {wanted}: nothing to do"
    return Translation(commands, new if new != known else None, note)


def _profile(
    event: CompanyEvent, known: CompanyState
) -> tuple[list[Command], CompanyState, str | None]:
    """The customer's fields: created once complete, then updated with what changed."""
    fields = dict(event.fields)
    if not known.created:
        if not _complete(fields):
            return [], known, "update for an unknown company without all its fields: recorded"
        create = CreateCustomer(crm_id=event.crm_id, profile=CustomerProfile.model_validate(fields))
        return (
            [Command.of(create)],
            known.model_copy(update={"created": True, "profile": fields}),
            None,
        )
    changes = {k: v for k, v in fields.items() if known.profile.get(k) != v}
    if not changes:
        return [], known, "nothing changed"
    merged = known.model_copy(update={"profile": {**known.profile, **changes}})
    return [Command.of(UpdateCustomer(crm_id=event.crm_id, changes=changes))], merged, None


def translate_purchase(event: PurchaseEvent, state: CompanyState | None) -> Translation:
    known = state or CompanyState()
    purchase = event.purchase
    wanted = purchase.status or ("cancelled" if event.kind == "cancelled" else None)
    before = known.purchases.get(purchase.purchase_id)
    if before is not None and before.subscribed:
        return _known_purchase(event, known, before, wanted)
    status = wanted or (before.status if before else "active")
    after = PurchaseState(
        status=status, seats=purchase.seats, plan=purchase.plan, subscribed=status == "active"
    )
    if after == before:
        return Translation(note="nothing changed")
    new = known.with_purchase(purchase.purchase_id, after)
    if status != "active":
        # Cancelled or expired before its subscription was asked for: nothing to make, but
        # kept, so that a late or repeated `purchased` does not make it either.
        return Translation(
            state=new, note=f"purchase {status} before it was active: no subscription"
        )
    command = CreateSubscription(
        crm_id=event.crm_id,
        purchase_id=purchase.purchase_id,
        plan_id=purchase.plan,
        app=purchase.app,
        seats=purchase.seats,
        start=purchase.start,
    )
    return Translation([Command.of(command)], new)


def _known_purchase(
    event: PurchaseEvent,
    known: CompanyState,
    before: PurchaseState,
    wanted: PurchaseStatus | None,
) -> Translation:
    """A purchase whose create_subscription was issued. The changes queue behind it on the
    company's purchases entity, so they run after it even while it still waits for its
    customer: a purchase cancelled before its subscription exists is made, then suspended."""
    purchase = event.purchase
    crm_id, purchase_id = event.crm_id, purchase.purchase_id
    commands: list[Command] = []
    after = before
    if wanted is not None and wanted != before.status:
        status = SUBSCRIPTION_STATUS[wanted]
        change = SetSubscriptionStatus(crm_id=crm_id, purchase_id=purchase_id, status=status)
        commands.append(Command.of(change))
        after = after.model_copy(update={"status": wanted})
    if purchase.seats != before.seats:
        seats = SetSubscriptionSeats(crm_id=crm_id, purchase_id=purchase_id, seats=purchase.seats)
        commands.append(Command.of(seats))
        after = after.model_copy(update={"seats": purchase.seats})
    note = None
    if before.plan is not None and purchase.plan != before.plan:
        note = (
            f"plan {purchase.plan} ignored: the UCaaS API cannot change a subscription's plan "
            f"(it stays {before.plan}); a new plan is a new purchase"
        )
    if not commands:
        return Translation(note=note or "nothing changed")
    return Translation(commands, known.with_purchase(purchase_id, after), note)
