"""CRM events to customer and subscription commands over the desired company state."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.crm.schema import Company
from connectors.crm.schema import Purchase as PurchaseData
from service.domain.commands import (
    CloseCustomer,
    CreateCustomer,
    CreateSubscription,
    Kind,
    UpdateCustomer,
    customer_entity,
    subscription_entity,
)
from service.domain.events import (
    CompanyEvent,
    CompanyKind,
    Purchase,
    PurchaseEvent,
    PurchaseKind,
)
from service.intake.crm import (
    CompanyState,
    PurchaseState,
    company_status,
    customer_fields,
    translate_company,
    translate_purchase,
)
from service.intake.events import Context, translate
from service.intake.licences import LicencePolicy
from service.settings import IntakeSettings

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
FULL: dict[str, Any] = {
    "name": "Acme Robotics",
    "legal_name": "Acme Robotics SAS",
    "contact": {"name": "Paul Martin", "email": "billing@acme.example"},
    "office_address": {
        "line1": "12 rue de la Paix",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FRA",
    },
}
PROFILE = {
    "customer_name": "Acme Robotics",
    "customer_legal_name": "Acme Robotics SAS",
    "contact_name": "Paul Martin",
    "contact_email": "billing@acme.example",
    "office_address": {
        "address_1": "12 rue de la Paix",
        "city": "Paris",
        "country": "FR",
        "zipcode": "75002",
    },
}


def company(kind: CompanyKind, **fields: Any) -> CompanyEvent:
    """The event the CRM mapping makes of a company with these (CRM) fields."""
    wire = Company.model_validate(fields)
    return CompanyEvent(kind, "CRM-1", customer_fields(wire), company_status(wire))


def purchase(
    purchase_id: str = "P-1", kind: PurchaseKind = "purchased", **changes: Any
) -> PurchaseEvent:
    """The event the CRM mapping makes of a crm.subscription.<kind> with this purchase."""
    data = {
        "purchase_id": purchase_id,
        "plan": "vc-basic",
        "app": "vc",
        "seats": 10,
        "start": "2026-12-01",
        **changes,
    }
    wire = PurchaseData.model_validate(data)
    return PurchaseEvent(
        "CRM-1",
        Purchase(wire.purchase_id, wire.plan, wire.app, wire.seats, wire.start, wire.status),
        kind,
    )


def created() -> CompanyState:
    result = translate_company(company("created", **FULL), None)
    assert isinstance(result.state, CompanyState)
    return result.state


# -- created ------------------------------------------------------------------------------
def test_created_adds_the_customer_with_the_crm_id_as_customer_code() -> None:
    result = translate_company(company("created", **FULL), None)
    [command] = result.commands
    assert command.kind == Kind.CREATE_CUSTOMER
    assert command.entity == customer_entity("CRM-1")
    assert command.tenant == "CRM-1"
    assert isinstance(command.payload, CreateCustomer)
    assert command.payload.crm_id == "CRM-1"
    assert command.payload.profile.model_dump(exclude_none=True) == PROFILE
    assert result.state == CompanyState(created=True, status="open", profile=PROFILE)


def test_created_with_billing_address_and_individual() -> None:
    billing = {"line1": "1 Main St", "line2": "Suite 2", "city": "Boston", "country": "us"}
    result = translate_company(
        company("created", **FULL, billing_address=billing, individual=False), None
    )
    payload = result.commands[0].payload
    assert isinstance(payload, CreateCustomer)
    assert payload.profile.individual is False
    assert payload.profile.billing_address is not None
    assert payload.profile.billing_address.model_dump(exclude_none=True) == {
        "address_1": "1 Main St",
        "address_2": "Suite 2",
        "city": "Boston",
        "country": "US",
    }


def test_created_twice_the_second_does_nothing() -> None:
    state = created()
    again = translate_company(company("created", **FULL), state)
    assert again.commands == []
    assert again.state is None
    assert again.note == "nothing changed"


def test_created_again_with_other_fields_updates() -> None:
    result = translate_company(company("created", **{**FULL, "name": "Acme"}), created())
    assert [c.payload for c in result.commands] == [
        UpdateCustomer(crm_id="CRM-1", changes={"customer_name": "Acme"})
    ]


# -- updated ------------------------------------------------------------------------------
def test_updated_carries_only_the_changes() -> None:
    state = created()
    result = translate_company(
        company(
            "updated",
            name="Acme Robotics",  # unchanged
            legal_name="Acme Robotics Group SAS",
            contact={"name": "Paul Martin", "email": "ap@acme.example"},
        ),
        state,
    )
    assert [c.payload for c in result.commands] == [
        UpdateCustomer(
            crm_id="CRM-1",
            changes={
                "customer_legal_name": "Acme Robotics Group SAS",
                "contact_email": "ap@acme.example",
            },
        )
    ]
    assert result.commands[0].entity == customer_entity("CRM-1")
    assert isinstance(result.state, CompanyState)
    assert result.state.profile["customer_legal_name"] == "Acme Robotics Group SAS"
    assert result.state.profile["customer_name"] == "Acme Robotics"
    assert result.state.profile["contact_name"] == "Paul Martin"
    # the same update again is nothing
    again = translate_company(
        company("updated", legal_name="Acme Robotics Group SAS"), result.state
    )
    assert again.commands == []


def test_updated_address_is_sent_whole() -> None:
    moved = {"line1": "1 Unter den Linden", "city": "Berlin", "country": "DEU"}
    result = translate_company(company("updated", office_address=moved), created())
    [payload] = [c.payload for c in result.commands]
    assert isinstance(payload, UpdateCustomer)
    assert payload.changes == {
        "office_address": {"address_1": "1 Unter den Linden", "city": "Berlin", "country": "DE"}
    }


def test_updated_for_an_unknown_but_complete_company_creates_it() -> None:
    result = translate_company(company("updated", **FULL), None)
    assert [c.kind for c in result.commands] == [Kind.CREATE_CUSTOMER]
    assert isinstance(result.state, CompanyState)
    assert result.state.created


def test_updated_for_an_unknown_partial_company_is_a_note_only() -> None:
    result = translate_company(company("updated", name="Acme"), None)
    assert result.commands == []
    assert result.state is None
    assert result.note is not None
    assert "unknown company" in result.note


# -- closed -------------------------------------------------------------------------------
def test_closed_once_then_nothing() -> None:
    result = translate_company(company("closed"), created())
    assert [c.payload for c in result.commands] == [CloseCustomer(crm_id="CRM-1", status="C")]
    assert isinstance(result.state, CompanyState)
    assert result.state.status == "closed"
    assert result.state.created
    again = translate_company(company("closed"), result.state)
    assert again.commands == []
    assert again.note == "already closed: nothing to do"


def test_close_status_s_from_the_settings() -> None:
    settings_ = IntakeSettings(close_status="S")
    result = translate(company("closed"), created(), Context(LicencePolicy(), settings_, NOW))
    assert [c.payload for c in result.commands] == [CloseCustomer(crm_id="CRM-1", status="S")]
    default = translate(
        company("closed"), created(), Context(LicencePolicy(), IntakeSettings(), NOW)
    )
    assert [c.payload for c in default.commands] == [CloseCustomer(crm_id="CRM-1", status="C")]


# -- purchases ----------------------------------------------------------------------------
def test_purchase_creates_a_subscription_on_its_companys_purchases_entity() -> None:
    result = translate_purchase(purchase(seats=25, app="wb", plan="wb-pro"), created())
    [command] = result.commands
    assert command.kind == Kind.CREATE_SUBSCRIPTION
    # all of a company's purchases are one entity (they adopt after lost answers one at a
    # time), not the customer's (a purchase before its company must not block it)
    assert command.entity == subscription_entity("CRM-1") == "subscriptions:CRM-1"
    assert command.tenant == "CRM-1"
    assert command.payload == CreateSubscription(
        crm_id="CRM-1",
        purchase_id="P-1",
        plan_id="wb-pro",
        app="wb",
        seats=25,
        start=date(2026, 12, 1),
    )
    assert isinstance(result.state, CompanyState)
    assert list(result.state.purchases) == ["P-1"]
    assert result.state.purchases["P-1"] == PurchaseState(status="active", seats=25, plan="wb-pro")
    assert result.state.created  # the company's fields are kept


def test_purchase_twice_once_and_another_purchase_again() -> None:
    first = translate_purchase(purchase(), created())
    again = translate_purchase(purchase(), first.state)  # type: ignore[arg-type]
    assert again.commands == []
    assert again.state is None
    other = translate_purchase(purchase("P-2"), first.state)  # type: ignore[arg-type]
    assert [c.kind for c in other.commands] == [Kind.CREATE_SUBSCRIPTION]
    assert isinstance(other.state, CompanyState)
    assert list(other.state.purchases) == ["P-1", "P-2"]


def test_purchase_before_the_company_then_created_creates_the_customer() -> None:
    early = translate_purchase(purchase(), None)
    assert [c.kind for c in early.commands] == [Kind.CREATE_SUBSCRIPTION]
    assert isinstance(early.state, CompanyState)
    assert not early.state.created
    result = translate_company(company("created", **FULL), early.state)
    assert [c.kind for c in result.commands] == [Kind.CREATE_CUSTOMER]  # not an update
    assert isinstance(result.state, CompanyState)
    assert list(result.state.purchases) == ["P-1"]
    assert result.state.created


def test_purchase_before_the_company_then_a_partial_update_waits() -> None:
    early = translate_purchase(purchase(), None)
    result = translate_company(company("updated", name="Acme"), early.state)  # type: ignore[arg-type]
    assert result.commands == []
    assert result.state is None


# -- properties ---------------------------------------------------------------------------
company_events = st.one_of(
    st.builds(lambda: company("created", **FULL)),
    st.builds(
        lambda name: company("updated", name=name), st.sampled_from(["Acme", "Acme Robotics"])
    ),
    st.builds(lambda: company("closed")),
    st.builds(purchase, st.sampled_from(["P-1", "P-2"])),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(company_events, min_size=1, max_size=10))
def test_any_sequence_creates_once_closes_once_and_subscribes_once_per_purchase(
    sequence: list[CompanyEvent | PurchaseEvent],
) -> None:
    state: CompanyState | None = None
    made: list[Kind] = []
    subscriptions: list[str] = []
    for ev in sequence:
        if isinstance(ev, PurchaseEvent):
            result = translate_purchase(ev, state)
        else:
            result = translate_company(ev, state)
        for command in result.commands:
            made.append(command.kind)
            if isinstance(command.payload, CreateSubscription):
                subscriptions.append(command.payload.purchase_id)
            if command.kind in (Kind.UPDATE_CUSTOMER,):
                assert Kind.CREATE_CUSTOMER in made  # never an update before the create
        if isinstance(result.state, CompanyState):
            state = result.state
        # the same event again is nothing
        if isinstance(ev, PurchaseEvent):
            assert translate_purchase(ev, state).commands == []
        else:
            assert translate_company(ev, state).commands == []
    assert made.count(Kind.CREATE_CUSTOMER) <= 1
    assert made.count(Kind.CLOSE_CUSTOMER) <= 1
    assert len(subscriptions) == len(set(subscriptions))
