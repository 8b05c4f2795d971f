"""Permanent rooms: the client against the sandbox over HTTP (get, update, reset PINs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.ucaas import Credentials, NotFoundError, UCaaSClient, ValidationError
from connectors.ucaas.models.meetings import RoomChanges
from tests.integration.ucaas.factories import licensed_user, new_user, user_auth
from tests.support.sandbox_server import SandboxAdmin

DOCUMENTED_KEYS = {
    "room_id",
    "user_id",
    "room_name",
    "desc",
    "mpin",
    "ppin",
    "direct_url",
    "moderators",
    "participants",
    "duration",
    "wait_for_moderator",
    "knock",
    "auto_recording",
}


@pytest.fixture
def owner(sandbox: SandboxAdmin) -> dict[str, Any]:
    return licensed_user(sandbox)


@pytest.fixture
async def user_api(api: UCaaSClient, owner: dict[str, Any]) -> AsyncIterator[UCaaSClient]:
    async with api.as_account(Credentials.of(*user_auth(owner))) as client:
        yield client


def room_row(sandbox: SandboxAdmin, room_id: str) -> dict[str, Any]:
    return next(r for r in sandbox.state()["rooms"] if r["room_id"] == room_id)


def join(sandbox: SandboxAdmin, pin: str) -> int:
    """The API code of a session join with `pin` (0 when it succeeds)."""
    response = sandbox.api("POST", "/sessions/join", {"pin": pin, "name": "G", "user_ref": "g"})
    return 0 if response.status_code == 200 else int(response.json()["code"])


async def test_get_own_and_users_room(
    api: UCaaSClient, user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    access = owner["access"]
    room = await user_api.meetings.get_permanent_room("vc")
    assert (room.room_id, room.mpin, room.ppin) == (
        access["room_id"],
        access["mpin"],
        access["ppin"],
    )
    assert room.user_id == owner["user"]["user_id"]
    assert room.app_type == "vc"
    assert room.direct_url == access["url"]
    assert room.active is True
    raw = sandbox.api("GET", "/meetings/permanent", auth=user_auth(owner)).json()
    assert set(raw["permanent_room"]) >= DOCUMENTED_KEYS

    user_id = owner["user"]["user_id"]
    same = await user_api.meetings.get_permanent_room("vc", user_id)
    assert same.room_id == room.room_id
    async with api.as_account(Credentials.of(*owner["auth"])) as admin:
        assert (await admin.meetings.get_permanent_room("vc", user_id)).room_id == room.room_id
        with pytest.raises(NotFoundError):  # the customer admin has no room of its own
            await admin.meetings.get_permanent_room("vc")
    assert (await api.meetings.get_permanent_room("vc", user_id)).room_id == room.room_id
    with pytest.raises(NotFoundError):  # no webinar licence, no webinar room
        await user_api.meetings.get_permanent_room("wb")


async def test_rooms_of_others_are_not_found(
    api: UCaaSClient, user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    colleague = new_user(sandbox, owner["auth"])
    with pytest.raises(NotFoundError):  # an AP user sees only itself
        await user_api.meetings.get_permanent_room("vc", colleague["user_id"])
    stranger = licensed_user(sandbox)
    async with api.as_account(Credentials.of(*owner["auth"])) as admin:
        with pytest.raises(NotFoundError):
            await admin.meetings.get_permanent_room("vc", stranger["user"]["user_id"])
        with pytest.raises(NotFoundError):
            await admin.meetings.update_permanent_room(
                stranger["access"]["room_id"], RoomChanges(desc="mine now"), "vc"
            )
        with pytest.raises(NotFoundError):
            await admin.meetings.reset_pins(
                stranger["access"]["room_id"], mpin=True, ppin=True, app="vc"
            )
    assert room_row(sandbox, stranger["access"]["room_id"])["desc"] == ""
    with pytest.raises(NotFoundError):  # a vc room is not a webinar room
        await user_api.meetings.update_permanent_room(
            owner["access"]["room_id"], RoomChanges(desc="x"), "wb"
        )


async def test_update(user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]) -> None:
    room_id = owner["access"]["room_id"]
    room = await user_api.meetings.update_permanent_room(
        room_id,
        RoomChanges(
            room_name="Team room",
            desc="Daily stand-up",
            moderators=3,
            participants=50,
            wait_for_moderator=True,
            knock=True,
        ),
        "vc",
    )
    assert (room.room_name, room.desc, room.moderators, room.participants) == (
        "Team room",
        "Daily stand-up",
        3,
        50,
    )
    assert (room.wait_for_moderator, room.knock, room.auto_recording) == (True, True, False)
    assert room.mpin == owner["access"]["mpin"]  # PINs stay
    row = room_row(sandbox, room_id)
    assert (row["room_name"], row["participants"], row["knock"]) == ("Team room", 50, True)

    again = await user_api.meetings.update_permanent_room(
        room_id, RoomChanges(auto_recording=True), "vc"
    )
    assert again.room_name == "Team room"  # untouched fields stay
    assert again.auto_recording is True


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("room_name", "ab", 1612),
        ("room_name", "x" * 51, 1613),
        ("room_name", 7, 1671),
        ("desc", "", 1621),
        ("moderators", 0, 1642),
        ("moderators", 101, 1643),  # vc-basic rooms hold 100
        ("moderators", "two", 1644),
        ("participants", -1, 1652),
        ("participants", 101, 1653),
        ("participants", "many", 1654),
        ("auto_recording", "yes", 1672),
        ("wait_for_moderator", 1, 1693),
        ("knock", "no", 1694),
    ],
)
def test_update_field_rules(
    sandbox: SandboxAdmin, owner: dict[str, Any], field: str, value: object, code: int
) -> None:
    room_id = owner["access"]["room_id"]
    before = room_row(sandbox, room_id)
    body = {"desc": "a valid change that must not land", field: value}
    response = sandbox.api("PATCH", f"/meetings/permanent/{room_id}", body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert room_row(sandbox, room_id) == before  # nothing of a refused change lands


async def test_reset_pins(
    user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    room_id = owner["access"]["room_id"]
    old_mpin, old_ppin = owner["access"]["mpin"], owner["access"]["ppin"]
    assert join(sandbox, old_mpin) == 0

    room = await user_api.meetings.reset_pins(room_id, mpin=True, ppin=False, app="vc")
    assert room.mpin != old_mpin
    assert room.ppin == old_ppin
    assert room_row(sandbox, room_id)["mpin"] == room.mpin
    assert room.mpin is not None
    assert join(sandbox, old_mpin) == 2108  # the old PIN no longer opens the room
    assert join(sandbox, room.mpin) == 0

    both = await user_api.meetings.reset_pins(room_id, mpin=True, ppin=True, app="vc")
    assert both.mpin != room.mpin
    assert both.ppin != old_ppin
    assert join(sandbox, old_ppin) == 2108
    assert (
        sandbox.calls()["calls"]["PATCH /meetings/permanent/{room_id} [X-Action: reset-pins]"] == 2
    )

    with pytest.raises(ValidationError) as info:
        await user_api.meetings.reset_pins(room_id, mpin=False, ppin=False, app="vc")
    assert info.value.code == 1903
    assert room_row(sandbox, room_id)["mpin"] == both.mpin


@pytest.mark.parametrize(
    ("body", "code"),
    [({}, 1903), ({"reset_mpin": "yes"}, 1901), ({"reset_ppin": 1}, 1902)],
)
def test_reset_pin_rules(
    sandbox: SandboxAdmin, owner: dict[str, Any], body: dict[str, Any], code: int
) -> None:
    room_id = owner["access"]["room_id"]
    response = sandbox.api(
        "PATCH", f"/meetings/permanent/{room_id}", body, headers={"X-Action": "reset-pins"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert room_row(sandbox, room_id)["mpin"] == owner["access"]["mpin"]


def test_unknown_action_is_refused(sandbox: SandboxAdmin, owner: dict[str, Any]) -> None:
    room_id = owner["access"]["room_id"]
    response = sandbox.api(
        "PATCH",
        f"/meetings/permanent/{room_id}",
        {"reset_mpin": True},
        headers={"X-Action": "rotate"},
    )
    assert (response.status_code, response.json()["code"]) == (400, 4000)
    assert room_row(sandbox, room_id)["mpin"] == owner["access"]["mpin"]


async def test_revoked_licence_leaves_a_read_only_room(
    user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    response = sandbox.api(
        "PATCH",
        f"/users/{owner['user']['user_id']}",
        {"app": "vc"},
        auth=owner["auth"],
        headers={"X-License": "revoke"},
    )
    assert response.status_code == 200, response.text
    room = await user_api.meetings.get_permanent_room("vc")
    assert room.active is False
    with pytest.raises(ValidationError) as info:
        await user_api.meetings.update_permanent_room(room.room_id, RoomChanges(desc="x"), "vc")
    assert info.value.code == 1000
    with pytest.raises(ValidationError) as info:
        await user_api.meetings.reset_pins(room.room_id, mpin=True, ppin=True, app="vc")
    assert info.value.code == 1000
