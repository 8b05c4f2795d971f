"""create_user for a rehire under a new employee id, and change_email, over
httpx.MockTransport with the sandbox's own answers (see test_executors.py)."""

from __future__ import annotations

import httpx

from service.devtools import sample_commands as c
from service.domain.commands import ChangeEmail, Command, CreateUser, UserProfile
from service.outbox.outcomes import Dead, Done, MappingKey
from tests.unit import test_executors
from tests.unit.test_executors import (
    ANN,
    ANN_EMAIL,
    TENANT,
    World,
    missing,
    refused,
    users_found,
    with_ann,
    with_customer,
)

world = test_executors.world  # the fixture


async def test_a_rehire_adopts_the_leavers_user_without_a_call(world: World) -> None:
    with_ann(world, "u-1")  # E1 left; their user is u-1
    profile = UserProfile(email=ANN_EMAIL, first_name="Emp")
    rehire = CreateUser(tenant=TENANT, employee_id="E2", profile=profile, rehire_of="E1")

    outcome = await world.run(Command.of(rehire))

    assert world.api.calls == []
    assert isinstance(outcome, Done)
    [mapping] = outcome.mappings
    assert (mapping.key, mapping.ucaas_id) == (MappingKey("user", TENANT, "E2"), "u-1")
    assert mapping.natural_key == ANN_EMAIL
    assert outcome.note == "rehire: E1's user adopted"


async def test_a_rehire_whose_leaver_is_not_mapped_creates_or_adopts_by_email(
    world: World,
) -> None:
    with_ann(world, "u-1")
    profile = UserProfile(email="new@acme.example", first_name="Emp")
    rehire = CreateUser(tenant=TENANT, employee_id="E2", profile=profile, rehire_of="E404")
    added = {"result": 1, "msg": "added", "user": {"user_id": "u-2"}}
    world.api.on("POST /users", httpx.Response(200, json=added))

    outcome = await world.run(Command.of(rehire))

    assert world.api.calls == ["POST /users"]
    assert isinstance(outcome, Done)
    assert outcome.mappings[0].ucaas_id == "u-2"


def change(new: str) -> Command:
    return Command.of(
        ChangeEmail(tenant=TENANT, employee_id="E1", old_email=ANN_EMAIL, new_email=new)
    )


def user(email: str) -> httpx.Response:
    body = {"user_id": "u-1", "customer_id": "c-1", "email": email, "status": "A"}
    return httpx.Response(200, json={"result": 1, "user": body})


async def test_change_email_done_once_a_person_changed_it_in_ucaas(world: World) -> None:
    with_ann(world, "u-1")
    world.api.on("GET /users/u-1", user("ann.lee@new.example"))

    outcome = await world.run(change("Ann.Lee@new.example"))

    assert world.api.calls == ["GET /users/u-1"]
    assert isinstance(outcome, Done)
    [mapping] = outcome.mappings
    assert (mapping.key, mapping.natural_key) == (ANN, "Ann.Lee@new.example")


async def test_change_email_not_made_yet_is_parked_saying_what_to_do(world: World) -> None:
    with_ann(world, "u-1")
    world.api.on("GET /users/u-1", user(ANN_EMAIL))

    outcome = await world.run(change("ann.lee@new.example"))

    assert isinstance(outcome, Dead)
    assert outcome.message.startswith(f"UCaaS still has {ANN_EMAIL}: the API cannot change")
    assert "ann.lee@new.example in UCaaS by hand" in outcome.message


async def test_change_email_of_a_user_gone_from_ucaas_is_done(world: World) -> None:
    with_ann(world, "u-1")
    world.api.on("GET /users/u-1", missing("user"))

    outcome = await world.run(change("ann.lee@new.example"))

    assert isinstance(outcome, Done)
    assert outcome.note == "user gone from UCaaS"


async def test_adopting_a_suspended_user_by_email_reactivates_it(world: World) -> None:
    """A rehire's joiner heard before the leaving: the user with the e-mail is a leaver's,
    suspended; made for an active person, it is taken back active."""
    with_customer(world)
    world.api.on("POST /users", refused(1103, "email"))
    suspended = {"user_id": "u-7", "customer_id": "c-1", "email": ANN_EMAIL, "status": "S"}
    world.api.on("GET /users", users_found(suspended))
    world.api.on("PATCH /users/u-7", user(ANN_EMAIL))

    outcome = await world.run(c.create_user(TENANT, "E1"))

    assert world.api.calls == ["POST /users", "GET /users", "PATCH /users/u-7"]
    assert world.api.body(2)["status"] == "A"
    assert isinstance(outcome, Done)
    assert outcome.note == "adopted the existing user, reactivated"
