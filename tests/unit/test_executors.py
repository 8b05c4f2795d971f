"""The executors against an in-memory outbox and a real UCaaSClient over httpx.MockTransport.

No database, no server: the API's answers are scripted per route, with the sandbox's
own error bodies and statuses (sandbox/errors.py), and every request is kept, so each
test says which calls an executor made as well as what it returned.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.ucaas import Credentials, NotFoundError, UCaaSClient
from sandbox.errors import ApiError as SandboxError
from sandbox.errors import not_found
from service.devtools import sample_commands as c
from service.domain.commands import Command
from service.executors import REGISTRY, Executors
from service.executors.base import Accounts
from service.outbox.outcomes import CapturedLogin, Dead, Done, MappingKey, Outcome, WaitForError
from tests.support.memory_outbox import MemoryOutbox, claim_for

BASE = "http://ucaas.test/ucaas/v1"
TENANT = "T1"
CUSTOMER = MappingKey("customer", "", TENANT)
ANN = MappingKey("user", TENANT, "E1")
ANN_EMAIL = c.email_of(TENANT, "E1")


def refused(code: int, field: str) -> httpx.Response:
    """The sandbox's answer for an API error code (409 for conflicts, else 400)."""
    error = SandboxError(code, field)
    return httpx.Response(error.status, json=error.body())


def missing(what: str) -> httpx.Response:
    error = not_found(what)
    return httpx.Response(error.status, json=error.body())


def users_found(*users: dict[str, Any]) -> httpx.Response:
    """GET /users: one page with these users."""
    search = {"page": 1, "page_length": 100, "total": len(users), "pages": 1}
    return httpx.Response(200, json={"result": 1, "search": search, "users": list(users)})


def ann(user_id: str, customer_id: str = "c-1") -> dict[str, Any]:
    return {"user_id": user_id, "customer_id": customer_id, "email": ANN_EMAIL, "status": "A"}


@dataclass
class ScriptedApi:
    """Answers each "METHOD /route" with its scripted answers in turn (the last repeats);
    a route with no script answers 404, as an unknown route does."""

    script: dict[str, list[httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, route: str, *answers: httpx.Response) -> None:
        self.script[route] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.script.get(_route(request))
        if not answers:
            return missing("route")
        return answers.pop(0) if len(answers) > 1 else answers[0]

    @property
    def calls(self) -> list[str]:
        return [_route(r) for r in self.requests]

    def body(self, n: int) -> Any:
        """The JSON body of the n-th request."""
        return json.loads(self.requests[n].content)


def _route(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path.removeprefix('/ucaas/v1')}"


@dataclass
class World:
    outbox: MemoryOutbox
    api: ScriptedApi
    executors: Executors

    async def run(self, command: Command, *, in_doubt: bool = False) -> Outcome:
        """One attempt, as the dispatcher makes it: validate the payload, execute."""
        claim = claim_for(command, in_doubt=in_doubt)
        model = self.executors.payload_model(claim.kind)
        assert model is not None
        return await self.executors.execute(claim, model.model_validate(claim.payload))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    outbox, api = MemoryOutbox(), ScriptedApi()
    client = UCaaSClient(
        BASE,
        api_id="app",
        credentials=Credentials.of("admin@platform.test", "admin-password"),
        auth_mode="basic",
        transport=httpx.MockTransport(api),
    )
    async with client:
        yield World(outbox, api, Executors(Accounts(client, outbox), REGISTRY))


def with_customer(world: World) -> None:
    world.outbox.put_mapping(CUSTOMER, "c-1", TENANT)


def with_ann(world: World, user_id: str = "u-1") -> None:
    """The tenant's customer, and Ann mapped to `user_id` (active)."""
    with_customer(world)
    world.outbox.put_mapping(ANN, user_id, ANN_EMAIL, {"status": "A"})


# -- create_user --------------------------------------------------------------------------
async def test_create_user_first_attempt_adds_without_looking_up(world: World) -> None:
    with_customer(world)
    added = {"result": 1, "msg": "User Emp E1 has been added.", "user": {"user_id": "u-1"}}
    world.api.on("POST /users", httpx.Response(200, json=added))

    outcome = await world.run(c.create_user(TENANT, "E1"))

    assert world.api.calls == ["POST /users"]
    # The platform account acts for a tenant without a login: it names the customer.
    assert world.api.body(0)["customer_id"] == "c-1"
    assert isinstance(outcome, Done)
    [mapping] = outcome.mappings
    assert (mapping.key, mapping.ucaas_id, mapping.natural_key) == (ANN, "u-1", ANN_EMAIL)
    assert outcome.note is None


async def test_create_user_in_doubt_looks_up_first_and_adopts(world: World) -> None:
    with_customer(world)
    world.api.on("GET /users", users_found(ann("u-7")))

    outcome = await world.run(c.create_user(TENANT, "E1"), in_doubt=True)

    assert world.api.calls == ["GET /users"]
    assert world.api.requests[0].url.params["search_string"] == ANN_EMAIL
    assert isinstance(outcome, Done)
    assert outcome.mappings[0].ucaas_id == "u-7"
    assert outcome.note == "adopted the existing user"


async def test_create_user_already_exists_adopts_after_a_lookup(world: World) -> None:
    with_customer(world)
    world.api.on("POST /users", refused(1103, "email"))
    world.api.on("GET /users", users_found(ann("u-7")))

    outcome = await world.run(c.create_user(TENANT, "E1"))

    assert world.api.calls == ["POST /users", "GET /users"]
    assert isinstance(outcome, Done)
    assert outcome.mappings[0].ucaas_id == "u-7"
    assert outcome.note == "adopted the existing user"


async def test_create_user_whose_email_is_another_customers_is_dead(world: World) -> None:
    with_customer(world)
    world.api.on("POST /users", refused(1103, "email"))
    world.api.on("GET /users", users_found(ann("u-9", customer_id="c-other")))

    outcome = await world.run(c.create_user(TENANT, "E1"))

    assert isinstance(outcome, Dead)
    assert outcome.code == "1103"
    assert "in another customer" in outcome.message
    assert world.api.calls == ["POST /users", "GET /users"]  # no second attempt


async def test_create_user_waits_for_its_customer(world: World) -> None:
    with pytest.raises(WaitForError, match="no UCaaS customer yet"):
        await world.run(c.create_user(TENANT, "E1"))
    assert world.api.calls == []


# -- licences -----------------------------------------------------------------------------
async def test_assign_licence_waits_without_a_subscription(world: World) -> None:
    with_ann(world)

    with pytest.raises(WaitForError, match="has no vc subscription yet"):
        await world.run(c.assign(TENANT, "E1"))
    assert world.api.calls == []


async def test_revoke_licence_not_assigned_is_done(world: World) -> None:
    with_ann(world)
    world.api.on("PATCH /users/u-1", refused(1260, "app"))

    outcome = await world.run(c.revoke(TENANT, "E1"))

    assert world.api.requests[0].headers["X-License"] == "revoke"
    assert isinstance(outcome, Done)
    assert outcome.note == "not assigned"
    assert outcome.forget == (MappingKey("licence", TENANT, "E1:vc"),)


# -- meetings -----------------------------------------------------------------------------
MEETING = MappingKey("meeting", TENANT, "feed:uid:1")


async def test_cancel_meeting_not_found_is_already_cancelled(world: World) -> None:
    with_customer(world)
    world.outbox.put_mapping(MEETING, "m-1", "u-1")
    world.api.on("DELETE /meetings/m-1", missing("meeting"))

    outcome = await world.run(c.cancel(TENANT, MEETING.external_id, ANN_EMAIL))

    assert isinstance(outcome, Done)
    assert outcome.note == "already cancelled"
    assert outcome.forget == (MEETING,)


async def test_update_of_a_started_meeting_is_left_alone(world: World) -> None:
    with_customer(world)
    world.outbox.put_mapping(MEETING, "m-1", "u-1", {"room_name": "Weekly sync"})
    zones = [{"timezone_id": "tz-paris", "zone_name": "Europe/Paris"}]
    world.api.on("GET /timezones", httpx.Response(200, json={"result": 1, "timezones": zones}))
    world.api.on("PATCH /meetings/m-1", refused(1604, "start_time"))
    spec = c.meeting_spec(name="Weekly sync, moved")

    outcome = await world.run(c.update_meeting(TENANT, MEETING.external_id, ANN_EMAIL, spec))

    assert world.api.calls == ["GET /timezones", "PATCH /meetings/m-1"]
    assert world.api.body(1)["timezone_id"] == "tz-paris"
    assert outcome == Done(note="already started: left as it is")  # the mapping stays


# -- customers ----------------------------------------------------------------------------
async def test_create_customer_captures_the_portal_login(world: World) -> None:
    added = {
        "result": 1,
        "msg": "Company T1 has been added.",
        "customer": {"customer_id": "c-1", "customer_name": "Company T1"},
        "portal_access": {
            "url": "http://ucaas.test/portal",
            "username": "admin-c-1@portal.sandbox.test",
            "password": "p0rtal-secret",
        },
    }
    world.api.on("POST /customers", httpx.Response(200, json=added))

    outcome = await world.run(c.create_customer(TENANT))

    assert world.api.calls == ["POST /customers"]
    assert world.api.body(0)["customer_code"] == TENANT
    assert isinstance(outcome, Done)
    assert outcome.login == CapturedLogin(
        TENANT, "admin-c-1@portal.sandbox.test", SecretStr("p0rtal-secret")
    )
    assert outcome.login.password.get_secret_value() == "p0rtal-secret"
    [mapping] = outcome.mappings
    assert (mapping.key, mapping.ucaas_id, mapping.natural_key) == (CUSTOMER, "c-1", TENANT)


# -- healing: ids replaced in the database behind this process's copies ------------------
SUBSCRIPTION = MappingKey("subscription", TENANT, "T1-p1")


async def user_replaced_by_reconcile(world: World) -> None:
    """Ann's user u-old is gone; reconcile (in another process) mapped her to u-new, but
    this process still keeps its copy of u-old. u-old answers 404."""
    with_ann(world, "u-old")
    world.outbox.put_mapping(SUBSCRIPTION, "s-1", "vc")
    assert await world.outbox.mapping(ANN)  # the copy is kept
    world.outbox.put_mapping(ANN, "u-new", ANN_EMAIL, {"status": "A"})
    world.api.on("PATCH /users/u-old", missing("user"))


async def test_a_404_after_reconcile_replaced_the_user_runs_once_more(world: World) -> None:
    await user_replaced_by_reconcile(world)
    updated = {"result": 1, "msg": "User Emp E1 has been updated", "user": {"user_id": "u-new"}}
    world.api.on("PATCH /users/u-new", httpx.Response(200, json=updated))

    outcome = await world.run(c.suspend(TENANT, "E1"))

    assert world.api.calls == ["PATCH /users/u-old", "PATCH /users/u-new"]
    assert isinstance(outcome, Done)
    [mapping] = outcome.mappings
    assert (mapping.ucaas_id, mapping.state) == ("u-new", {"status": "S"})
    copy = await world.outbox.mapping(ANN)
    assert copy is not None
    assert copy.ucaas_id == "u-new"  # the copy in memory is mended too


async def test_a_404_with_nothing_replaced_means_the_user_is_gone(world: World) -> None:
    with_ann(world)
    world.api.on("PATCH /users/u-1", missing("user"))

    outcome = await world.run(c.suspend(TENANT, "E1"))

    assert world.api.calls == ["PATCH /users/u-1"]
    assert outcome == Done(note="user gone from UCaaS")


async def test_an_error_the_executor_lets_through_is_healed_too(world: World) -> None:
    """assign_licence does not catch a 404: `healing` sees it, finds the user replaced in
    the database, and runs the executor once more from there."""
    await user_replaced_by_reconcile(world)
    assigned = {
        "result": 1,
        "msg": "The user Emp E1 has been provided access to the meeting application.",
        "user": {
            "user_id": "u-new",
            "name": "Emp E1",
            "access": {"app": "vc", "url": f"{BASE}/room/r-1", "ppin": "1234", "mpin": "5678"},
        },
    }
    world.api.on("PATCH /users/u-new", httpx.Response(200, json=assigned))

    outcome = await world.run(c.assign(TENANT, "E1"))

    assert world.api.calls == ["PATCH /users/u-old", "PATCH /users/u-new"]
    assert world.api.body(1) == {"app": "vc", "subscription_id": "s-1"}
    assert isinstance(outcome, Done)
    assert outcome.mappings[0].key == MappingKey("licence", TENANT, "E1:vc")


async def test_a_404_nothing_explains_is_not_healed(world: World) -> None:
    with_ann(world)
    world.outbox.put_mapping(SUBSCRIPTION, "s-1", "vc")
    world.api.on("PATCH /users/u-1", missing("user"))

    with pytest.raises(NotFoundError):
        await world.run(c.assign(TENANT, "E1"))
    assert world.api.calls == ["PATCH /users/u-1"]
