"""reopen_customer, set_subscription_status and set_subscription_seats against an in-memory
outbox and a real UCaaSClient over httpx.MockTransport (the scripted API of
test_executors.py): which calls each makes, and what it records."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.ucaas import ValidationError
from service.devtools import sample_commands as c
from service.outbox.outcomes import Dead, Done, MappingKey, WaitForError
from tests.unit import test_executors
from tests.unit.test_executors import CUSTOMER, TENANT, World, missing, refused

SUBSCRIPTION = MappingKey("subscription", TENANT, f"{TENANT}-p1")
CREATED = {"crm_id": TENANT, "purchase_id": f"{TENANT}-p1", "plan_id": "vc-basic", "seats": 10}


world = test_executors.world  # the fixture


@pytest.fixture
def crm(world: World) -> World:
    return world


def with_subscription(world: World) -> None:
    """The customer, and purchase p1 mapped to subscription s-1 as create_subscription
    leaves it (its payload as the state)."""
    world.outbox.put_mapping(CUSTOMER, "c-1", TENANT, {"status": "C"})
    world.outbox.put_mapping(SUBSCRIPTION, "s-1", "vc", dict(CREATED))


def saved(qty: int | None) -> httpx.Response:
    """The answer to PATCH /subscriptions/{id}."""
    ref: dict[str, Any] = {"subscription_id": "s-1", "customer_id": "c-1", "plan_id": "vc-basic"}
    if qty is not None:
        ref["qty"] = qty
    return httpx.Response(200, json={"result": 1, "msg": "updated", "subscription": ref})


# -- reopen_customer ----------------------------------------------------------------------
async def test_reopen_customer_sets_status_a_and_records_it(crm: World) -> None:
    with_subscription(crm)
    answer = {"result": 1, "msg": "updated", "customer": {"customer_id": "c-1"}}
    crm.api.on("PATCH /customers/c-1", httpx.Response(200, json=answer))

    outcome = await crm.run(c.reopen_customer(TENANT))

    assert crm.api.calls == ["PATCH /customers/c-1"]
    assert crm.api.body(0) == {"status": "A"}
    assert isinstance(outcome, Done)
    [mapping] = outcome.mappings
    # reconcile now expects it active (it was closed)
    assert (mapping.key, mapping.ucaas_id, mapping.state) == (CUSTOMER, "c-1", {"status": "A"})


async def test_reopen_customer_waits_for_its_customer(crm: World) -> None:
    with pytest.raises(WaitForError, match="not created yet"):
        await crm.run(c.reopen_customer(TENANT))
    assert crm.api.calls == []


async def test_reopen_customer_gone_from_ucaas_is_dead(crm: World) -> None:
    with_subscription(crm)
    crm.api.on("PATCH /customers/c-1", missing("customer"))
    outcome = await crm.run(c.reopen_customer(TENANT))
    assert isinstance(outcome, Dead)
    assert "nothing to reopen" in outcome.message


# -- set_subscription_status --------------------------------------------------------------
@pytest.mark.parametrize("status", ["S", "X", "A"])
async def test_set_subscription_status_patches_it_and_records_it(crm: World, status: Any) -> None:
    with_subscription(crm)
    crm.api.on("PATCH /subscriptions/s-1", saved(10))

    outcome = await crm.run(c.set_subscription_status(TENANT, status))

    assert crm.api.calls == ["PATCH /subscriptions/s-1"]
    assert crm.api.body(0) == {"subscription": {"status": status}}
    assert isinstance(outcome, Done)
    [mapping] = outcome.mappings
    assert (mapping.key, mapping.ucaas_id) == (SUBSCRIPTION, "s-1")
    assert mapping.state == {**CREATED, "status": status}  # the rest of the state kept


async def test_ending_a_subscription_that_was_never_made_is_done(crm: World) -> None:
    crm.outbox.put_mapping(CUSTOMER, "c-1", TENANT)
    outcome = await crm.run(c.set_subscription_status(TENANT, "S"))
    assert crm.api.calls == []
    assert isinstance(outcome, Done)
    assert outcome.mappings == ()
    assert outcome.note is not None
    assert "nothing to suspend" in outcome.note


async def test_reactivating_a_subscription_that_was_never_made_is_dead(crm: World) -> None:
    outcome = await crm.run(c.set_subscription_status(TENANT, "A"))
    assert crm.api.calls == []
    assert isinstance(outcome, Dead)
    assert outcome.code == "no_subscription"
    assert "nothing to reactivate" in outcome.message


async def test_a_subscription_gone_from_ucaas(crm: World) -> None:
    with_subscription(crm)
    crm.api.on("PATCH /subscriptions/s-1", missing("subscription"))
    ended = await crm.run(c.set_subscription_status(TENANT, "X"))
    assert isinstance(ended, Done)
    assert ended.mappings == ()
    reactivated = await crm.run(c.set_subscription_status(TENANT, "A"))
    assert isinstance(reactivated, Dead)
    assert reactivated.code == "404"


# -- set_subscription_seats ---------------------------------------------------------------
async def test_set_subscription_seats_patches_and_checks_the_answer(crm: World) -> None:
    with_subscription(crm)
    crm.api.on("PATCH /subscriptions/s-1", saved(14))

    outcome = await crm.run(c.set_subscription_seats(TENANT, 14))

    assert crm.api.calls == ["PATCH /subscriptions/s-1"]
    assert crm.api.body(0) == {"subscription": {"no_of_license": 14}}
    assert isinstance(outcome, Done)
    [mapping] = outcome.mappings
    assert mapping.state == {**CREATED, "seats": 14}


async def test_seats_the_api_did_not_take_leave_the_command_dead(crm: World) -> None:
    # An API that ignores the undocumented no_of_license answers success with the old qty.
    with_subscription(crm)
    crm.api.on("PATCH /subscriptions/s-1", saved(10))

    outcome = await crm.run(c.set_subscription_seats(TENANT, 14))

    assert isinstance(outcome, Dead)
    assert outcome.code == "seats_unchanged"
    assert "answered 10 seats, not 14" in outcome.message
    assert "retry" in outcome.message


async def test_seats_missing_from_the_answer_are_read_back(crm: World) -> None:
    with_subscription(crm)
    crm.api.on("PATCH /subscriptions/s-1", saved(None))
    found = {"subscription_id": "s-1", "user_license": {"qty": 10}}
    crm.api.on(
        "GET /subscriptions/s-1", httpx.Response(200, json={"result": 1, "subscription": found})
    )

    outcome = await crm.run(c.set_subscription_seats(TENANT, 14))

    assert crm.api.calls == ["PATCH /subscriptions/s-1", "GET /subscriptions/s-1"]
    assert isinstance(outcome, Dead)
    assert outcome.code == "seats_unchanged"


async def test_fewer_seats_than_licences_in_use_waits_for_revokes(crm: World) -> None:
    with_subscription(crm)
    crm.api.on("PATCH /subscriptions/s-1", refused(1257, "subscription.no_of_license"))
    with pytest.raises(WaitForError, match="1257: more licences assigned than 2 seats"):
        await crm.run(c.set_subscription_seats(TENANT, 2))


async def test_other_refusals_of_a_seat_change_are_left_to_the_failure_rules(crm: World) -> None:
    with_subscription(crm)
    crm.api.on("PATCH /subscriptions/s-1", refused(1254, "subscription.no_of_license"))
    with pytest.raises(ValidationError):  # parked as dead with the API's code (failures.py)
        await crm.run(c.set_subscription_seats(TENANT, 2))


async def test_seats_of_a_subscription_never_made_is_dead(crm: World) -> None:
    outcome = await crm.run(c.set_subscription_seats(TENANT, 2))
    assert crm.api.calls == []
    assert isinstance(outcome, Dead)
    assert outcome.code == "no_subscription"
