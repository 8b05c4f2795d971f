"""CRM lifecycle: a closed company reopened, a purchase cancelled, expired, reactivated or
resized. Level-triggered: the status the data states wins over the event's name."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.commands import (
    CloseCustomer,
    Command,
    CreateSubscription,
    Kind,
    ReopenCustomer,
    SetSubscriptionSeats,
    SetSubscriptionStatus,
    UpdateCustomer,
    subscription_entity,
)
from service.domain.events import CompanyEvent, PurchaseEvent
from service.domain.translation import Translation
from service.entrypoints import asyncapi
from service.intake.crm import (
    SUBSCRIPTION_STATUS,
    CloseStatus,
    CompanyState,
    PurchaseState,
    translate_company,
    translate_purchase,
)
from service.intake.events import to_domain
from tests.unit.test_domain_events import COMPANY, PURCHASE, envelope
from tests.unit.test_translate_crm import FULL, company, created, purchase


def state_of(result: Translation) -> CompanyState:
    assert isinstance(result.state, CompanyState)
    return result.state


def closed(close_status: CloseStatus = "C") -> CompanyState:
    return state_of(translate_company(company("closed"), created(), close_status))


def bought(seats: int = 10) -> CompanyState:
    """A company with purchase P-1 taken (its create_subscription issued)."""
    return state_of(translate_purchase(purchase(seats=seats), created()))


def payloads(result: Translation) -> list[Any]:
    return [c.payload for c in result.commands]


# -- the CloudEvents ----------------------------------------------------------------------
def test_reopened_and_the_stated_status_map_to_the_domain_event() -> None:
    reopened = to_domain(envelope("crm.company.reopened", {}, "CRM-1001"))
    assert isinstance(reopened, CompanyEvent)
    assert (reopened.kind, reopened.status) == ("reopened", None)
    stated = to_domain(envelope("crm.company.updated", {"status": "active"}, "CRM-1001"))
    assert isinstance(stated, CompanyEvent)
    assert (stated.kind, stated.status) == ("updated", "open")
    gone = to_domain(envelope("crm.company.created", {**COMPANY, "status": "closed"}, "CRM-1001"))
    assert isinstance(gone, CompanyEvent)
    assert gone.status == "closed"


@pytest.mark.parametrize("kind", ["purchased", "updated", "cancelled"])
def test_every_purchase_type_carries_the_whole_purchase(kind: str) -> None:
    event = to_domain(envelope(f"crm.subscription.{kind}", PURCHASE, "CRM-1001"))
    assert isinstance(event, PurchaseEvent)
    assert event.kind == kind
    assert (event.purchase.seats, event.purchase.status) == (25, None)
    stated = to_domain(
        envelope(f"crm.subscription.{kind}", {**PURCHASE, "status": "expired"}, "CRM-1001")
    )
    assert isinstance(stated, PurchaseEvent)
    assert stated.purchase.status == "expired"


def test_the_asyncapi_document_names_the_new_types() -> None:
    described = {
        model.__name__: model.model_json_schema()["properties"]["type"]["enum"]
        for model in asyncapi.payloads("crm")
    }
    assert described["CompanyEventEnvelope"][-1] == "crm.company.reopened"
    assert described["PurchaseEventEnvelope"] == [
        "crm.subscription.purchased",
        "crm.subscription.updated",
        "crm.subscription.cancelled",
    ]


# -- companies: closed and reopened -------------------------------------------------------
def test_reopened_asks_for_the_closed_customer_back_once() -> None:
    result = translate_company(company("reopened"), closed())
    [command] = result.commands
    assert command.payload == ReopenCustomer(crm_id="CRM-1")
    assert command.entity == "customer:CRM-1"  # behind the close, on the customer's entity
    assert state_of(result).status == "open"
    again = translate_company(company("reopened"), state_of(result))
    assert (again.commands, again.state, again.note) == ([], None, "already open: nothing to do")


def test_reopened_after_a_suspension_reopens_too() -> None:
    result = translate_company(company("reopened"), closed("S"))
    assert payloads(result) == [ReopenCustomer(crm_id="CRM-1")]


def test_reopened_on_an_open_company_is_nothing() -> None:
    result = translate_company(company("reopened", **FULL), created())
    assert (result.commands, result.state) == ([], None)


def test_reopened_with_changed_fields_updates_then_reopens() -> None:
    result = translate_company(company("reopened", name="Acme Again"), closed())
    assert payloads(result) == [
        UpdateCustomer(crm_id="CRM-1", changes={"customer_name": "Acme Again"}),
        ReopenCustomer(crm_id="CRM-1"),
    ]


def test_reopened_for_an_unknown_complete_company_creates_it_open() -> None:
    result = translate_company(company("reopened", **FULL), None)
    assert [c.kind for c in result.commands] == [Kind.CREATE_CUSTOMER]
    assert state_of(result).status == "open"


def test_a_closed_company_stays_closed_on_created_or_updated_without_a_status() -> None:
    # an old `created` replayed must not reopen it
    replayed = translate_company(company("created", **FULL), closed())
    assert replayed.commands == []
    renamed = translate_company(company("updated", name="Acme Closed"), closed())
    assert payloads(renamed) == [
        UpdateCustomer(crm_id="CRM-1", changes={"customer_name": "Acme Closed"})
    ]
    assert state_of(renamed).status == "closed"


def test_the_stated_status_wins_over_the_name() -> None:
    reopened = translate_company(company("updated", status="active"), closed())
    assert payloads(reopened) == [ReopenCustomer(crm_id="CRM-1")]
    shut = translate_company(company("updated", status="closed"), created(), "S")
    assert payloads(shut) == [CloseCustomer(crm_id="CRM-1", status="S")]
    # a `closed` whose data says active: the data is the truth
    kept = translate_company(company("closed", status="active"), closed())
    assert payloads(kept) == [ReopenCustomer(crm_id="CRM-1")]


def test_a_company_created_closed_is_created_then_closed() -> None:
    result = translate_company(company("created", **FULL, status="closed"), None)
    assert [c.kind for c in result.commands] == [Kind.CREATE_CUSTOMER, Kind.CLOSE_CUSTOMER]
    state = state_of(result)
    assert (state.created, state.status) == (True, "closed")


# -- purchases: status --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "data", "status", "api"),
    [
        ("cancelled", {}, "cancelled", "S"),
        ("updated", {"status": "cancelled"}, "cancelled", "S"),
        ("updated", {"status": "expired"}, "expired", "X"),
        ("purchased", {"status": "expired"}, "expired", "X"),
        ("cancelled", {"status": "expired"}, "expired", "X"),  # the data wins
    ],
)
def test_a_cancelled_or_expired_purchase_ends_its_subscription(
    kind: Any, data: dict[str, Any], status: str, api: str
) -> None:
    result = translate_purchase(purchase(kind=kind, **data), bought())
    [command] = result.commands
    assert command.payload == SetSubscriptionStatus(crm_id="CRM-1", purchase_id="P-1", status=api)
    # after its create_subscription, on the company's purchases entity
    assert (command.entity, command.tenant) == (subscription_entity("CRM-1"), "CRM-1")
    assert state_of(result).purchases["P-1"] == PurchaseState(
        status=status, seats=10, plan="vc-basic"
    )
    again = translate_purchase(purchase(kind=kind, **data), state_of(result))
    assert (again.commands, again.state) == ([], None)


def test_an_ended_purchase_active_again_reactivates_its_subscription() -> None:
    ended = state_of(translate_purchase(purchase(kind="cancelled"), bought()))
    # neither a repeated `purchased` nor an `updated` without a status brings it back
    assert translate_purchase(purchase(), ended).commands == []
    assert translate_purchase(purchase(kind="updated"), ended).commands == []
    result = translate_purchase(purchase(kind="updated", status="active"), ended)
    assert payloads(result) == [
        SetSubscriptionStatus(crm_id="CRM-1", purchase_id="P-1", status="A")
    ]
    assert state_of(result).purchases["P-1"].status == "active"


def test_a_cancel_before_the_subscription_is_made_queues_behind_its_creation() -> None:
    # purchased and cancelled in one batch: the create has not run; the suspension is on
    # the same FIFO entity after it, so the subscription is made and then suspended
    made = translate_purchase(purchase(), None)
    cancelled = translate_purchase(purchase(kind="cancelled"), state_of(made))
    [create] = made.commands
    [suspend] = cancelled.commands
    assert isinstance(create.payload, CreateSubscription)
    assert isinstance(suspend.payload, SetSubscriptionStatus)
    assert create.entity == suspend.entity == subscription_entity("CRM-1")


def test_a_purchase_cancelled_before_it_was_ever_active_makes_nothing() -> None:
    result = translate_purchase(purchase(kind="cancelled"), created())
    assert result.commands == []
    assert result.note == "purchase cancelled before it was active: no subscription"
    state = state_of(result)
    assert state.purchases["P-1"] == PurchaseState(
        status="cancelled", seats=10, plan="vc-basic", subscribed=False
    )
    # a late `purchased` (no status) does not make it either
    late = translate_purchase(purchase(), state)
    assert (late.commands, late.state) == ([], None)
    # the CRM saying it is active makes it, with the purchase's latest terms
    active = translate_purchase(purchase(kind="updated", status="active", seats=4), state)
    assert payloads(active) == [
        CreateSubscription(
            crm_id="CRM-1",
            purchase_id="P-1",
            plan_id="vc-basic",
            app="vc",
            seats=4,
            start=purchase().purchase.start,
        )
    ]
    assert state_of(active).purchases["P-1"] == PurchaseState(seats=4, plan="vc-basic")


def test_updated_for_an_unknown_active_purchase_creates_it() -> None:
    result = translate_purchase(purchase("P-9", kind="updated"), created())
    assert [c.kind for c in result.commands] == [Kind.CREATE_SUBSCRIPTION]


# -- purchases: seats and plan ------------------------------------------------------------
def test_a_seat_change_sets_the_seats() -> None:
    result = translate_purchase(purchase(kind="updated", seats=14), bought())
    [command] = result.commands
    assert command.payload == SetSubscriptionSeats(crm_id="CRM-1", purchase_id="P-1", seats=14)
    assert command.entity == subscription_entity("CRM-1")
    assert state_of(result).purchases["P-1"].seats == 14
    # a `purchased` carrying the new count again is nothing
    assert translate_purchase(purchase(seats=14), state_of(result)).commands == []


def test_status_and_seats_together_are_two_commands_status_first() -> None:
    ended = state_of(translate_purchase(purchase(kind="cancelled"), bought()))
    result = translate_purchase(purchase(kind="updated", status="active", seats=3), ended)
    assert payloads(result) == [
        SetSubscriptionStatus(crm_id="CRM-1", purchase_id="P-1", status="A"),
        SetSubscriptionSeats(crm_id="CRM-1", purchase_id="P-1", seats=3),
    ]


def test_a_plan_change_is_refused_with_a_note() -> None:
    result = translate_purchase(purchase(kind="updated", plan="vc-pro"), bought())
    assert (result.commands, result.state) == ([], None)
    assert result.note is not None
    assert "cannot change a subscription's plan" in result.note
    assert "vc-basic" in result.note
    # what can change still does
    both = translate_purchase(purchase(kind="updated", plan="vc-pro", seats=12), bought())
    assert [c.kind for c in both.commands] == [Kind.SET_SUBSCRIPTION_SEATS]
    assert state_of(both).purchases["P-1"].plan == "vc-basic"
    assert both.note == result.note


# -- the state of an older version ----------------------------------------------------------
def test_a_stored_list_of_purchase_ids_still_loads() -> None:
    old = {"created": True, "status": "open", "profile": {}, "purchases": ["P-1", "P-2"]}
    state = CompanyState.model_validate(old)
    assert state.purchases == {
        "P-1": PurchaseState(status="active", seats=None, plan=None, subscribed=True),
        "P-2": PurchaseState(status="active", seats=None, plan=None, subscribed=True),
    }
    # the new form round-trips through JSON (entity_state.state)
    assert CompanyState.model_validate(state.model_dump(mode="json")) == state
    # an old purchase can be cancelled; its seats, unknown, are set when a purchase says them
    cancelled = translate_purchase(purchase(kind="cancelled"), state)
    assert [c.kind for c in cancelled.commands] == [
        Kind.SET_SUBSCRIPTION_STATUS,
        Kind.SET_SUBSCRIPTION_SEATS,
    ]
    # and is not bought a second time
    assert [c.kind for c in translate_purchase(purchase("P-2"), state).commands] == [
        Kind.SET_SUBSCRIPTION_SEATS
    ]


# -- properties ---------------------------------------------------------------------------
lifecycle_events = st.one_of(
    st.builds(lambda: company("created", **FULL)),
    st.builds(lambda: company("closed")),
    st.builds(lambda: company("reopened")),
    st.builds(lambda s: company("updated", status=s), st.sampled_from(["active", "closed"])),
    st.builds(
        lambda pid, kind, status, seats: purchase(pid, kind, seats=seats, status=status),
        st.sampled_from(["P-1", "P-2"]),
        st.sampled_from(["purchased", "updated", "cancelled"]),
        st.sampled_from([None, "active", "cancelled", "expired"]),
        st.sampled_from([5, 10]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(lifecycle_events, min_size=1, max_size=12))
def test_any_sequence_converges_on_the_last_stated_status_and_seats(
    sequence: list[CompanyEvent | PurchaseEvent],
) -> None:
    state: CompanyState | None = None
    made: list[Command] = []
    for ev in sequence:
        if isinstance(ev, PurchaseEvent):
            result = translate_purchase(ev, state)
        else:
            result = translate_company(ev, state)
        made.extend(result.commands)
        state = state_of(result) if result.state is not None else state
        # the same event again is nothing
        if isinstance(ev, PurchaseEvent):
            assert translate_purchase(ev, state).commands == []
        else:
            assert translate_company(ev, state).commands == []
    customer = [c.kind for c in made if c.kind in (Kind.CLOSE_CUSTOMER, Kind.REOPEN_CUSTOMER)]
    # close and reopen alternate, starting with a close
    assert customer == [Kind.CLOSE_CUSTOMER, Kind.REOPEN_CUSTOMER] * (len(customer) // 2) + [
        Kind.CLOSE_CUSTOMER
    ] * (len(customer) % 2)
    expected = "closed" if customer and customer[-1] is Kind.CLOSE_CUSTOMER else "open"
    assert (state or CompanyState()).status == expected
    for pid in ("P-1", "P-2"):
        mine = [c.payload for c in made if getattr(c.payload, "purchase_id", None) == pid]
        creates = [p for p in mine if isinstance(p, CreateSubscription)]
        assert len(creates) <= 1
        if not creates:  # nothing to change without a subscription
            assert mine == []
            continue
        assert mine[0] is creates[0]  # changes only after it
        # replaying the commands gives what the state asks for
        status, seats = "A", creates[0].seats
        for p in mine[1:]:
            if isinstance(p, SetSubscriptionStatus):
                status = p.status
            if isinstance(p, SetSubscriptionSeats):
                seats = p.seats
        assert state is not None
        wanted = state.purchases[pid]
        assert (status, seats) == (SUBSCRIPTION_STATUS[wanted.status], wanted.seats)
