"""Users and licences: the client against the sandbox over HTTP."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from connectors.ucaas import (
    AlreadyAssignedError,
    AlreadyExistsError,
    Credentials,
    ForbiddenError,
    MissingPrerequisiteError,
    NotAssignedError,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.models.users import NewUser, UserChanges, UserQuery
from tests.integration.ucaas.factories import (
    assign,
    customer_payload,
    new_customer,
    new_subscription,
    new_user,
    portal_auth,
    today,
)
from tests.support.sandbox_server import SandboxAdmin


def _customer(sandbox: SandboxAdmin, **overrides: Any) -> tuple[str, tuple[str, str]]:
    """A new customer's id and its customer-admin (portal) login."""
    created = new_customer(sandbox, **overrides)
    return created["customer"]["customer_id"], portal_auth(created)


def _stored(sandbox: SandboxAdmin, table: str, key: str, value: str) -> dict[str, Any]:
    return next(row for row in sandbox.state()[table] if row[key] == value)


async def test_add_get_and_log_in(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    customer_id, _ = _customer(sandbox)
    saved = await api.users.add(
        NewUser(
            user_type="AP",
            first_name="Ada",
            middle_name="King",
            last_name="Lovelace",
            email="ada@example.test",
            password="analytical-engine",
            department="R&D",
            designation="Engineer",
            customer_id=customer_id,
            send_welcome_mail=True,
        )
    )
    assert saved.user.name == "Ada King Lovelace"
    user = await api.users.get(saved.user.user_id)
    assert (user.customer_id, user.user_type, user.status) == (customer_id, "AP", "A")
    assert (user.email, user.department, user.designation) == (
        "ada@example.test",
        "R&D",
        "Engineer",
    )
    assert user.created_at is not None
    assert user.activated_at is not None
    assert user.suspended_at is None
    assert user.vc is not None
    assert user.wb is not None
    assert (user.vc.access, user.wb.access) == (False, False)

    stored = _stored(sandbox, "users", "user_id", user.user_id)
    assert stored["customer_id"] == customer_id
    assert "password_hash" not in stored
    mails = [m for m in sandbox.state()["mails"] if m["to"] == "ada@example.test"]
    assert [m["kind"] for m in mails] == ["welcome"]

    async with api.as_account(Credentials.of("ada@example.test", "analytical-engine")) as ada:
        assert await ada.datapool.countries()


def test_password_is_masked_in_requests() -> None:
    user = NewUser(user_type="AP", first_name="A", email="a@x.test", password="s3cret-pass")
    assert "s3cret-pass" not in repr(user)
    assert user.payload()["password"] == "s3cret-pass"


async def test_customer_admin_adds_into_its_own_customer(
    api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    customer_id, auth = _customer(sandbox)
    other_id, _ = _customer(sandbox)
    async with api.as_account(Credentials.of(*auth)) as client:
        saved = await client.users.add(NewUser(user_type="AP", first_name="Bo", email="bo@x.test"))
        named = await client.users.add(
            NewUser(user_type="CA", first_name="Cy", email="cy@x.test", customer_id=customer_id)
        )
        with pytest.raises(ValidationError) as info:
            await client.users.add(
                NewUser(user_type="AP", first_name="Di", email="di@x.test", customer_id=other_id)
            )
        assert info.value.code == 1234
    for ref in (saved.user, named.user):
        assert _stored(sandbox, "users", "user_id", ref.user_id)["customer_id"] == customer_id
    assert "di@x.test" not in {u["email"] for u in sandbox.state()["users"]}


async def test_edit_suspend_and_reactivate(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    _, auth = _customer(sandbox)
    user = new_user(sandbox, auth)
    uid = user["user_id"]
    saved = await api.users.edit(
        uid, UserChanges(first_name="Grace", last_name="Hopper", department="Navy")
    )
    assert saved.user.name == "Grace Hopper"
    assert saved.msg == "User Grace Hopper has been updated"
    stored = _stored(sandbox, "users", "user_id", uid)
    assert (stored["first_name"], stored["department"]) == ("Grace", "Navy")

    await api.users.edit(uid, UserChanges(status="S"))
    got = await api.users.get(uid)
    assert got.status == "S"
    assert got.suspended_at is not None
    # A suspended user cannot log in.
    async with api.as_account(Credentials.of(user["email"], user["password"])) as client:
        with pytest.raises(ForbiddenError) as info:
            await client.datapool.countries()
        assert info.value.code == 4014
        await api.users.edit(uid, UserChanges(status="A"))
        assert await client.datapool.countries()
    assert _stored(sandbox, "users", "user_id", uid)["status"] == "A"


async def test_find_by_email(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    _, auth = _customer(sandbox)
    user = new_user(sandbox, auth, email="Mixed.Case@Example.test")
    new_user(sandbox, auth)
    found = await api.users.find_by_email("mixed.case@example.test")
    assert found is not None
    assert found.user_id == user["user_id"]
    assert await api.users.find_by_email("nobody@example.test") is None


async def test_duplicate_email_is_a_conflict(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    _, auth = _customer(sandbox)
    user = new_user(sandbox, auth)
    with pytest.raises(AlreadyExistsError) as info:
        await api.users.add(NewUser(user_type="AP", first_name="X", email=user["email"].upper()))
    assert (info.value.status, info.value.code) == (409, 1103)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("email", None, 1101),
        ("email", "not-an-email", 1105),
        ("email", "a" * 95 + "@x.test", 1107),
        ("first_name", None, 1111),
        ("first_name", 5, 1112),
        ("first_name", "f" * 51, 1113),
        ("middle_name", 5, 1115),
        ("middle_name", "m" * 51, 1116),
        ("last_name", 5, 1119),
        ("last_name", "l" * 51, 1120),
        ("password", 12345678, 1121),
        ("password", "short", 1122),
        ("status", 1, 1131),
        ("status", "X", 1191),
        ("department", 5, 1141),
        ("department", "d" * 101, 1142),
        ("designation", 5, 1145),
        ("designation", "d" * 101, 1146),
        ("user_type", None, 1151),
        ("user_type", 5, 1152),
        ("user_type", "TA", 1153),
        ("send_welcome_mail", "yes", 1161),
        ("customer_id", 5, 1202),
        ("customer_id", "0" * 24, 1234),
    ],
)
def test_add_validation_codes(sandbox: SandboxAdmin, field: str, value: Any, code: int) -> None:
    before = len(sandbox.state()["users"])
    body: dict[str, Any] = {"user_type": "AP", "first_name": "F", "email": "new@x.test"}
    body[field] = value
    response = sandbox.api("POST", "/users", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert len(sandbox.state()["users"]) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"first_name": "f" * 51}, 1113),
        ({"first_name": "  "}, 1111),
        ({"status": "D"}, 1191),
        ({"user_type": "RA"}, 1153),
        ({"designation": 1}, 1145),
    ],
)
def test_edit_validation_codes(sandbox: SandboxAdmin, body: dict[str, Any], code: int) -> None:
    _, auth = _customer(sandbox)
    user = new_user(sandbox, auth)
    response = sandbox.api("PATCH", f"/users/{user['user_id']}", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    stored = _stored(sandbox, "users", "user_id", user["user_id"])
    assert (stored["status"], stored["user_type"]) == ("A", "AP")


def test_admin_logins_keep_their_role(sandbox: SandboxAdmin) -> None:
    # Only AP and CA can be set, so a reseller admin (RA) cannot be turned into either.
    _, auth = _customer(sandbox, customer_type="R")
    admin = _stored(sandbox, "users", "email", auth[0])
    response = sandbox.api("PATCH", f"/users/{admin['user_id']}", {"user_type": "CA"})
    assert response.json()["code"] == 1153
    assert _stored(sandbox, "users", "email", auth[0])["user_type"] == "RA"


async def test_roles_and_scope(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    _, auth = _customer(sandbox)
    _, other_auth = _customer(sandbox)
    mine = [new_user(sandbox, auth)["user_id"] for _ in range(2)]
    theirs = new_user(sandbox, other_auth)
    async with api.as_account(Credentials.of(*auth)) as client:
        assert sorted([u.user_id async for u in client.users.iterate()]) == sorted(mine)
        assert await client.users.find_by_email(theirs["email"]) is None
        uid = theirs["user_id"]
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: client.users.get(uid),
            lambda: client.users.edit(uid, UserChanges(first_name="Hacked")),
            lambda: client.users.revoke_licence(uid, "vc"),
        ]
        for call in calls:
            with pytest.raises(NotFoundError) as info:
                await call()
            assert info.value.status == 404
    assert _stored(sandbox, "users", "user_id", theirs["user_id"])["first_name"] != "Hacked"

    async with api.as_account(Credentials.of(theirs["email"], theirs["password"])) as client:
        with pytest.raises(ForbiddenError):
            await client.users.list()
        with pytest.raises(ForbiddenError) as forbidden:
            await client.users.get(theirs["user_id"])
        assert (forbidden.value.status, forbidden.value.code) == (403, 4030)
        with pytest.raises(ForbiddenError):
            await client.users.add(NewUser(user_type="AP", first_name="X", email="x@x.test"))


async def test_reseller_manages_users_of_its_customers(
    api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    _, reseller_auth = _customer(sandbox, customer_type="R")
    child = sandbox.api("POST", "/customers", customer_payload(), auth=reseller_auth)
    child_id = child.json()["customer"]["customer_id"]
    _, direct_auth = _customer(sandbox)
    stranger = new_user(sandbox, direct_auth)
    async with api.as_account(Credentials.of(*reseller_auth)) as client:
        saved = await client.users.add(
            NewUser(user_type="AP", first_name="Kid", email="kid@x.test", customer_id=child_id)
        )
        listed = {u.email async for u in client.users.iterate()}
        assert "kid@x.test" in listed
        assert stranger["email"] not in listed
        with pytest.raises(ValidationError) as info:  # a customer it does not manage
            await client.users.add(
                NewUser(
                    user_type="AP",
                    first_name="No",
                    email="no@x.test",
                    customer_id=_stored(sandbox, "users", "user_id", stranger["user_id"])[
                        "customer_id"
                    ],
                )
            )
        assert info.value.code == 1234
    assert _stored(sandbox, "users", "user_id", saved.user.user_id)["customer_id"] == child_id


# -- licences ------------------------------------------------------------------------------


async def test_assign_makes_the_room_and_takes_a_seat(
    api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    customer_id, auth = _customer(sandbox)
    sub = new_subscription(sandbox, customer_id, seats=2)
    user = new_user(sandbox, auth)
    async with api.as_account(Credentials.of(*auth)) as client:
        assigned = await client.users.assign_licence(
            user["user_id"], app="vc", subscription_id=sub["subscription_id"], send_access_mail=True
        )
    access = assigned.user.access
    assert access.app == "vc"
    assert re.fullmatch(r"\d{8}", access.ppin)
    assert re.fullmatch(r"\d{8}", access.mpin)
    assert access.ppin != access.mpin
    assert access.room_id is not None
    assert access.url.startswith(sandbox.root)
    assert access.room_id in access.url
    assert assigned.msg is not None
    assert "meeting application" in assigned.msg

    room = _stored(sandbox, "rooms", "room_id", access.room_id)
    assert (room["user_id"], room["app"], room["active"]) == (user["user_id"], "vc", True)
    assert (room["ppin"], room["mpin"]) == (access.ppin, access.mpin)
    assert (
        _stored(sandbox, "subscriptions", "subscription_id", sub["subscription_id"])["seats_used"]
        == 1
    )
    mails = [m for m in sandbox.state()["mails"] if m["kind"] == "access"]
    assert [m["to"] for m in mails] == [user["email"]]

    got = await api.users.get(user["user_id"])
    assert got.vc is not None
    assert (got.vc.access, got.vc.status) == (True, "A")
    assert got.vc.subscription_id == sub["subscription_id"]
    assert got.vc.wef is not None
    subscription = await api.subscriptions.get(sub["subscription_id"])
    assert subscription.user_license is not None
    assert subscription.user_license.used == 1

    with pytest.raises(AlreadyAssignedError) as info:
        await api.users.assign_licence(
            user["user_id"], app="vc", subscription_id=sub["subscription_id"]
        )
    assert (info.value.status, info.value.code) == (409, 1261)
    assert (
        _stored(sandbox, "subscriptions", "subscription_id", sub["subscription_id"])["seats_used"]
        == 1
    )


async def test_seats_run_out_and_revoke_frees_one(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    customer_id, auth = _customer(sandbox)
    sub = new_subscription(sandbox, customer_id, "wb-basic", seats=1)
    sid = sub["subscription_id"]
    first, second = new_user(sandbox, auth), new_user(sandbox, auth)
    room_id = assign(sandbox, auth, first["user_id"], sub)["room_id"]

    with pytest.raises(MissingPrerequisiteError) as info:
        await api.users.assign_licence(second["user_id"], app="wb", subscription_id=sid)
    assert (info.value.status, info.value.code) == (409, 1262)
    assert _stored(sandbox, "users", "user_id", second["user_id"])["apps"] == {}

    revoked = await api.users.revoke_licence(first["user_id"], "wb")
    assert revoked.user.access is not None
    assert revoked.user.access.app == "wb"
    assert revoked.msg is not None
    assert "revoked" in revoked.msg
    assert _stored(sandbox, "subscriptions", "subscription_id", sid)["seats_used"] == 0
    assert _stored(sandbox, "rooms", "room_id", room_id)["active"] is False
    got = await api.users.get(first["user_id"])
    assert got.wb is not None
    assert (got.wb.access, got.wb.status) == (False, "R")

    await api.users.assign_licence(second["user_id"], app="wb", subscription_id=sid)
    assert _stored(sandbox, "subscriptions", "subscription_id", sid)["seats_used"] == 1

    with pytest.raises(NotAssignedError) as not_assigned:
        await api.users.revoke_licence(first["user_id"], "wb")
    assert (not_assigned.value.status, not_assigned.value.code) == (409, 1260)
    with pytest.raises(NotAssignedError):
        await api.users.revoke_licence(second["user_id"], "vc")


async def test_reassigning_reopens_the_same_room(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    customer_id, auth = _customer(sandbox)
    sub = new_subscription(sandbox, customer_id)
    user = new_user(sandbox, auth)
    before = assign(sandbox, auth, user["user_id"], sub)
    await api.users.revoke_licence(user["user_id"], "vc")
    after = await api.users.assign_licence(
        user["user_id"], app="vc", subscription_id=sub["subscription_id"]
    )
    assert (after.user.access.room_id, after.user.access.mpin) == (
        before["room_id"],
        before["mpin"],
    )
    assert _stored(sandbox, "rooms", "room_id", before["room_id"])["active"] is True
    assert len(sandbox.state()["rooms"]) == 1


@pytest.mark.parametrize(
    ("plan_id", "app", "code"), [("vc-pro", "vc", 1615), ("wb-pro", "wb", 1616)]
)
async def test_assign_needs_an_active_subscription(
    api: UCaaSClient, sandbox: SandboxAdmin, plan_id: str, app: Any, code: int
) -> None:
    customer_id, auth = _customer(sandbox)
    sub = new_subscription(sandbox, customer_id, plan_id)
    suspended = sandbox.api(
        "PATCH", f"/subscriptions/{sub['subscription_id']}", {"subscription": {"status": "S"}}
    )
    assert suspended.status_code == 200
    user = new_user(sandbox, auth)
    with pytest.raises(MissingPrerequisiteError) as info:
        await api.users.assign_licence(
            user["user_id"], app=app, subscription_id=sub["subscription_id"]
        )
    assert info.value.code == code
    assert sandbox.state()["rooms"] == []


async def test_assign_checks_the_subscription(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    customer_id, auth = _customer(sandbox)
    other_id, _ = _customer(sandbox)
    own = new_subscription(sandbox, customer_id, "vc-basic")
    foreign = new_subscription(sandbox, other_id, "vc-basic")
    user = new_user(sandbox, auth)
    with pytest.raises(ValidationError) as wrong_app:
        await api.users.assign_licence(
            user["user_id"], app="wb", subscription_id=own["subscription_id"]
        )
    assert wrong_app.value.code == 1173
    with pytest.raises(ValidationError) as not_theirs:
        await api.users.assign_licence(
            user["user_id"], app="vc", subscription_id=foreign["subscription_id"]
        )
    assert not_theirs.value.code == 1220
    assert all(s["seats_used"] == 0 for s in sandbox.state()["subscriptions"])


@pytest.mark.parametrize(
    ("action", "body", "code"),
    [
        ("assign", {"subscription_id": "x"}, 1171),
        ("assign", {"app": "vx", "subscription_id": "x"}, 1172),
        ("assign", {"app": "vc"}, 1404),
        ("assign", {"app": "vc", "subscription_id": 7}, 1405),
        ("assign", {"app": "vc", "subscription_id": "x", "send_access_mail": "y"}, 1408),
        ("revoke", {}, 1171),
        ("revoke", {"app": "meeting"}, 1172),
        ("grant", {"app": "vc"}, 4000),
    ],
)
def test_licence_validation_codes(
    sandbox: SandboxAdmin, action: str, body: dict[str, Any], code: int
) -> None:
    _, auth = _customer(sandbox)
    user = new_user(sandbox, auth)
    response = sandbox.api(
        "PATCH", f"/users/{user['user_id']}", body, headers={"X-License": action}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert _stored(sandbox, "users", "user_id", user["user_id"])["apps"] == {}


def test_licence_header_picks_the_operation(sandbox: SandboxAdmin) -> None:
    customer_id, auth = _customer(sandbox)
    sub = new_subscription(sandbox, customer_id)
    user = new_user(sandbox, auth)
    assign(sandbox, auth, user["user_id"], sub)
    sandbox.api("PATCH", f"/users/{user['user_id']}", {"first_name": "Edited"})
    counted = sandbox.calls()["calls"]
    assert counted["PATCH /users/{user_id} [X-License: assign]"] == 1
    assert counted["PATCH /users/{user_id}"] == 1


# -- lists ---------------------------------------------------------------------------------


async def test_list_search_order_pages_and_dates(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    customer_id, auth = _customer(sandbox)
    sub = new_subscription(sandbox, customer_id)
    for name in ("delta", "Alpha", "charlie", "Bravo", "echo"):
        new_user(sandbox, auth, first_name=name)
    bravo = next(u for u in sandbox.state()["users"] if u["first_name"] == "Bravo")
    assign(sandbox, auth, bravo["user_id"], sub)
    await api.users.edit(bravo["user_id"], UserChanges(status="S"))

    async with api.as_account(Credentials.of(*auth)) as client:

        async def names(**query: Any) -> list[str | None]:
            page = await client.users.list(UserQuery(**query))
            return [u.first_name for u in page.items]

        assert await names(order_by="first_name", page_length=2) == ["Alpha", "Bravo"]
        assert await names(order_by="first_name", page_length=2, page=3) == ["echo"]
        assert await names(order_by="first_name", order_qualify="desc", page_length=1) == ["echo"]
        assert await names(search_by="first_name", search_string="HAR") == ["charlie"]
        assert await names(search_by="status", search_string="S") == ["Bravo"]
        assert await names(search_by="vc", search_string="true") == ["Bravo"]
        assert await names(search_by="wb", search_string="true") == []
        assert await names(search_by="user_type", search_string="CA") == []
        page = await client.users.list(UserQuery(page_length=2))
        assert (page.search["total"], page.search["pages"]) == (5, 3)
        walked = [u.first_name or "" async for u in client.users.iterate(UserQuery(page_length=2))]
        assert sorted(walked, key=str.lower) == ["Alpha", "Bravo", "charlie", "delta", "echo"]

        day = today(sandbox)
        assert len(await names(from_create_dt=day, to_create_dt=day)) == 5
        assert await names(from_create_dt="2999-01-01") == []
        assert await names(to_create_dt="2000-01-01") == []

        with pytest.raises(ValidationError) as info:
            await client.users.list(UserQuery(order_by="salary"))
        assert info.value.code == 2603


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"page_length": "ten"}, 2501),
        ({"page_length": 0}, 2502),
        ({"page_length": 101}, 2502),
        ({"order_by": "password"}, 2603),
        ({"order_by": "first_name", "order_qualify": "up"}, 2604),
        ({"search_by": "phone", "search_string": "1"}, 2605),
        ({"search_by": "email"}, 2606),
        ({"search_string": "ada"}, 2607),
        ({"page": "two"}, 2608),
        ({"page": 0}, 2608),
        ({"from_create_dt": "yesterday"}, 2609),
    ],
)
def test_list_query_errors(sandbox: SandboxAdmin, params: dict[str, Any], code: int) -> None:
    response = sandbox.api("GET", "/users", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["errors"][0]["code"] == code
