"""CRM events: companies and purchases to domain events, and those to customer and
subscription commands. A company's CRM id is its UCaaS customer_code.

company created    new: create_customer (customer_code = the CRM id); known: changes only
company updated    known: update_customer with the fields that changed; unknown and
                   complete: create_customer; unknown and partial: nothing (recorded)
company closed     close_customer (status C, or S when the policy suspends instead)
purchase           create_subscription once per purchase id (it waits for the customer)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

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
    UpdateCustomer,
)
from service.domain.events import CompanyEvent, CompanyKind, Purchase, PurchaseEvent
from service.domain.translation import DesiredState, Translation
from service.intake.mapping import CUSTOMER_CODE_MAX, entity_id, invalid

CloseStatus = Literal["C", "S"]


class CompanyState(DesiredState):
    """What the accepted events ask of one company: its customer and its purchases."""

    model_config = ConfigDict(frozen=True)
    entity_kind: ClassVar[str] = "company"  # entity_state.kind

    created: bool = False  # create_customer issued (a purchase may come first)
    status: Literal["open", "closed"] = "open"
    profile: dict[str, Any] = Field(default_factory=dict)  # the fields last asked for
    purchases: tuple[str, ...] = ()


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
    return CompanyEvent(kind, crm_id, customer_fields(company))


def purchase_event(envelope: Envelope, data: PurchaseData) -> PurchaseEvent:
    """The domain event of a crm.subscription.purchased CloudEvent."""
    crm_id = entity_id(data.company_id, envelope, CUSTOMER_CODE_MAX)
    purchase = Purchase(data.purchase_id, data.plan, data.app, data.seats, data.start)
    return PurchaseEvent(crm_id, purchase)


def _complete(fields: Mapping[str, Any]) -> bool:
    needed = (
        "customer_name",
        "customer_legal_name",
        "contact_name",
        "contact_email",
        "office_address",
    )
    return all(k in fields for k in needed)


def translate_company(
    event: CompanyEvent, state: CompanyState | None, close_status: CloseStatus = "C"
) -> Translation:
    crm_id = event.crm_id
    if event.kind == "closed":
        if state is not None and state.status == "closed":
            return Translation(note="already closed: nothing to do")
        closed = (state or CompanyState()).model_copy(update={"status": "closed"})
        return Translation([Command.of(CloseCustomer(crm_id=crm_id, status=close_status))], closed)
    fields = dict(event.fields)
    if state is None or not state.created:
        if not _complete(fields):
            return Translation(
                note="update for an unknown company without all its fields: recorded"
            )
        create = CreateCustomer(crm_id=crm_id, profile=CustomerProfile.model_validate(fields))
        made = (state or CompanyState()).model_copy(update={"created": True, "profile": fields})
        return Translation([Command.of(create)], made)
    changes = {k: v for k, v in fields.items() if state.profile.get(k) != v}
    if not changes:
        return Translation(note="nothing changed")
    merged = state.model_copy(update={"profile": {**state.profile, **changes}})
    return Translation([Command.of(UpdateCustomer(crm_id=crm_id, changes=changes))], merged)


def translate_purchase(event: PurchaseEvent, state: CompanyState | None) -> Translation:
    purchase = event.purchase
    known = state or CompanyState()
    if purchase.purchase_id in known.purchases:
        return Translation(note="purchase already taken: nothing to do")
    command = CreateSubscription(
        crm_id=event.crm_id,
        purchase_id=purchase.purchase_id,
        plan_id=purchase.plan,
        app=purchase.app,
        seats=purchase.seats,
        start=purchase.start,
    )
    new = known.model_copy(update={"purchases": (*known.purchases, purchase.purchase_id)})
    return Translation([Command.of(command)], new)
