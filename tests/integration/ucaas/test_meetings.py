"""Meetings: the client against the sandbox over HTTP (schedule, edit, get, list, cancel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.ucaas import (
    Credentials,
    MissingPrerequisiteError,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.models.meetings import (
    Invitees,
    MeetingChanges,
    MeetingQuery,
    NewMeeting,
    Stage,
)
from tests.integration.ucaas.factories import (
    PARIS,
    licensed_user,
    meeting_payload,
    new_user,
    sandbox_now,
    schedule_meeting,
    user_auth,
)
from tests.support.sandbox_server import SandboxAdmin

DOCUMENTED_KEYS = {
    "meeting_id",
    "room_id",
    "user_id",
    "room_name",
    "app_type",
    "desc",
    "start_time",
    "timezone",
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
    """The client logged in as the licensed user (role AP)."""
    async with api.as_account(Credentials.of(*user_auth(owner))) as client:
        yield client


def new_meeting(sandbox: SandboxAdmin, minutes: int = 60, **overrides: Any) -> NewMeeting:
    start = sandbox_now(sandbox) + timedelta(minutes=minutes)
    return NewMeeting.model_validate({**meeting_payload(start), **overrides})


def meeting_row(sandbox: SandboxAdmin, meeting_id: str) -> dict[str, Any]:
    return next(m for m in sandbox.state()["meetings"] if m["meeting_id"] == meeting_id)


async def test_schedule_and_get(
    user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    start = sandbox_now(sandbox) + timedelta(hours=2)
    meeting = await user_api.meetings.schedule(
        NewMeeting(
            room_name="Quarterly review",
            desc="Numbers",
            start_time=start,
            timezone_id=PARIS,
            duration=45,
            moderators=2,
            participants=20,
            knock=True,
            send_mail=True,
            invitees=Invitees(emails=["guest@partner.test"]),
        ),
        "vc",
    )
    user_id = owner["user"]["user_id"]
    assert meeting.user_id == user_id
    assert meeting.app_type == "vc"
    assert meeting.start_time == start
    assert meeting.timezone is not None
    assert meeting.timezone.zone_name == "Europe/Paris"
    assert meeting.room_id != owner["access"]["room_id"]  # a room of its own
    assert meeting.mpin
    assert meeting.ppin
    assert meeting.mpin != meeting.ppin
    assert meeting.mpin != owner["access"]["mpin"]
    assert meeting.direct_url
    assert meeting.meeting_id in meeting.direct_url
    assert (meeting.duration, meeting.moderators, meeting.participants) == (45, 2, 20)
    assert meeting.knock is True
    assert meeting.auto_recording is False
    assert meeting.stage == "upcoming"

    fetched = await user_api.meetings.get(meeting.meeting_id, "vc")
    assert fetched.model_dump() == meeting.model_dump()
    raw = sandbox.api(
        "GET",
        f"/meetings/{meeting.meeting_id}",
        auth=user_auth(owner),
        headers={"X-App-Type": "vc"},
    ).json()["meeting"]
    assert set(raw) >= DOCUMENTED_KEYS
    assert raw["start_time"] == start.strftime("%Y-%m-%d %H:%M:%S")
    assert raw["invitees"]["emails"] == ["guest@partner.test"]

    state = sandbox.state()
    row = meeting_row(sandbox, meeting.meeting_id)
    assert row["customer_id"] == owner["customer"]["customer_id"]
    assert row["room_name"] == "Quarterly review"
    assert row["cancelled_at"] is None
    invitations = [m for m in state["mails"] if m["kind"] == "invitation"]
    assert [m["to"] for m in invitations] == ["guest@partner.test"]
    assert invitations[0]["data"]["meeting_id"] == meeting.meeting_id


async def test_pins_join_the_meeting_until_cancelled(
    user_api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    meeting = await user_api.meetings.schedule(new_meeting(sandbox), "vc")
    join = {"pin": meeting.ppin, "name": "Guest", "user_ref": "g-1"}
    joined = sandbox.api("POST", "/sessions/join", join)
    assert joined.status_code == 200, joined.text
    assert joined.json()["user"]["meeting_id"] == meeting.meeting_id

    await user_api.meetings.cancel(meeting.meeting_id, "vc")
    refused = sandbox.api("POST", "/sessions/join", join)
    assert refused.status_code == 400
    assert refused.json()["code"] == 2108


async def test_customer_admin_schedules_for_its_user(
    api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    user_id = owner["user"]["user_id"]
    async with api.as_account(Credentials.of(*owner["auth"])) as admin:
        meeting = await admin.meetings.schedule(new_meeting(sandbox, user_id=user_id), "vc")
        assert meeting.user_id == user_id
        # The customer admin holds no licence of its own.
        with pytest.raises(MissingPrerequisiteError) as info:
            await admin.meetings.schedule(new_meeting(sandbox), "vc")
        assert info.value.code == 1617


async def test_user_without_licence_cannot_schedule(
    api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    colleague = new_user(sandbox, owner["auth"])
    async with api.as_account(Credentials.of(colleague["email"], colleague["password"])) as client:
        with pytest.raises(MissingPrerequisiteError) as info:
            await client.meetings.schedule(new_meeting(sandbox), "vc")
    assert info.value.code == 1617
    assert sandbox.state()["meetings"] == []


async def test_suspended_subscription_blocks_scheduling(
    user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    subscription_id = owner["subscription"]["subscription_id"]
    response = sandbox.api(
        "PATCH", f"/subscriptions/{subscription_id}", {"subscription": {"status": "S"}}
    )
    assert response.status_code == 200, response.text
    with pytest.raises(MissingPrerequisiteError) as info:
        await user_api.meetings.schedule(new_meeting(sandbox), "vc")
    assert info.value.code == 1615


async def test_app_type_selects_the_application(
    user_api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    with pytest.raises(MissingPrerequisiteError) as info:  # a vc licence only
        await user_api.meetings.schedule(new_meeting(sandbox), "wb")
    assert info.value.code == 1618

    webinar = licensed_user(sandbox, "wb-basic")
    meeting = schedule_meeting(sandbox, user_auth(webinar), app="wb", participants=400)
    assert meeting["app_type"] == "wb"
    wb_headers = {"X-App-Type": "wb"}
    got = sandbox.api("GET", f"/meetings/{meeting['meeting_id']}", headers=wb_headers)
    assert got.status_code == 200
    # The same meeting does not exist for the meeting (vc) application, the default.
    assert sandbox.api("GET", f"/meetings/{meeting['meeting_id']}").status_code == 404
    bad = sandbox.api("GET", "/meetings", headers={"X-App-Type": "xx"})
    assert (bad.status_code, bad.json()["code"]) == (400, 1699)


MISSING = None  # meeting_payload drops keys overridden with None


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("room_name", MISSING, 1611),
        ("room_name", "ab", 1612),
        ("room_name", "x" * 51, 1613),
        ("room_name", 12345, 1671),
        ("desc", MISSING, 1621),
        ("desc", "  ", 1621),
        ("start_time", MISSING, 1603),
        ("start_time", "next tuesday", 1602),
        ("start_time", "2020-01-01 10:00:00", 1601),
        ("duration", MISSING, 1631),
        ("duration", 5, 1632),
        ("duration", 241, 1633),  # vc-basic allows 240 minutes
        ("duration", "an hour", 1634),
        ("moderators", MISSING, 1641),
        ("moderators", 0, 1642),
        ("moderators", 101, 1643),  # vc-basic rooms hold 100
        ("moderators", "two", 1644),
        ("participants", MISSING, 1651),
        ("participants", -1, 1652),
        ("participants", 101, 1653),
        ("participants", 2.5, 1654),
        ("timezone_id", MISSING, 1681),
        ("timezone_id", "Mars/Olympus", 1684),
        ("auto_recording", "yes", 1672),
        ("send_mail", 1, 1692),
        ("wait_for_moderator", "no", 1693),
        ("knock", "on", 1694),
        ("invitees", ["a@b.test"], 1695),
        ("invitees", {"emails": "a@b.test"}, 1696),
        ("invitees", {"contact_ids": "c1"}, 1697),
        ("invitees", {"group_ids": 7}, 1698),
        ("invitees", {"emails": ["not-an-email"]}, 2210),
    ],
)
def test_schedule_field_rules(
    sandbox: SandboxAdmin, owner: dict[str, Any], field: str, value: object, code: int
) -> None:
    start = sandbox_now(sandbox) + timedelta(hours=1)
    body = meeting_payload(start, **{field: value})
    response = sandbox.api("POST", "/meetings", body, auth=user_auth(owner))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert sandbox.state()["meetings"] == []


def test_schedule_collects_every_error_and_accepts_the_spaced_key(
    sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    response = sandbox.api("POST", "/meetings", {"room_name": "x"}, auth=user_auth(owner))
    codes = {e["code"] for e in response.json()["errors"]}
    assert {1612, 1621, 1603, 1631, 1641, 1651, 1681} <= codes
    # The reference's example spells the key "start_time " (trailing space).
    start = sandbox_now(sandbox) + timedelta(hours=1)
    body = meeting_payload(start)
    body["start_time "] = body.pop("start_time")
    response = sandbox.api("POST", "/meetings", body, auth=user_auth(owner))
    assert response.status_code == 200, response.text
    assert response.json()["meeting"]["start_time"] == start.strftime("%Y-%m-%d %H:%M:%S")


async def test_edit(user_api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    meeting = await user_api.meetings.schedule(new_meeting(sandbox), "vc")
    later = sandbox_now(sandbox) + timedelta(days=1)
    edited = await user_api.meetings.edit(
        meeting.meeting_id,
        MeetingChanges(room_name="Renamed", start_time=later, duration=90, auto_recording=True),
        "vc",
    )
    assert (edited.room_name, edited.start_time, edited.duration) == ("Renamed", later, 90)
    assert edited.auto_recording is True
    assert edited.desc == meeting.desc  # untouched fields stay
    assert (edited.mpin, edited.ppin) == (meeting.mpin, meeting.ppin)
    row = meeting_row(sandbox, meeting.meeting_id)
    assert row["room_name"] == "Renamed"
    assert row["duration"] == 90

    with pytest.raises(ValidationError) as info:
        await user_api.meetings.edit(
            meeting.meeting_id,
            MeetingChanges(start_time=datetime(2020, 1, 1, tzinfo=UTC), duration=5),
            "vc",
        )
    assert info.value.codes == {1601, 1632}
    assert meeting_row(sandbox, meeting.meeting_id)["duration"] == 90


async def test_stages_follow_the_clock(user_api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    first = await user_api.meetings.schedule(new_meeting(sandbox, 60, duration=30), "vc")
    second = await user_api.meetings.schedule(new_meeting(sandbox, 600), "vc")

    async def staged(stage: Stage) -> list[str]:
        page = await user_api.meetings.list(MeetingQuery(stage=stage), "vc")
        return [m.meeting_id for m in page.items]

    assert await staged("upcoming") == [first.meeting_id, second.meeting_id]
    assert await staged("current") == []

    sandbox.clock(75 * 60)
    assert (await user_api.meetings.get(first.meeting_id, "vc")).stage == "current"
    assert await staged("current") == [first.meeting_id]
    assert await staged("upcoming") == [second.meeting_id]
    with pytest.raises(ValidationError) as info:
        await user_api.meetings.edit(first.meeting_id, MeetingChanges(desc="late"), "vc")
    assert info.value.code == 1604

    sandbox.clock(95 * 60)
    assert (await user_api.meetings.get(first.meeting_id, "vc")).stage == "past"
    assert await staged("past") == [first.meeting_id]
    assert await staged("current") == []
    with pytest.raises(ValidationError) as info:
        await user_api.meetings.cancel(first.meeting_id, "vc")
    assert info.value.code == 1604
    assert meeting_row(sandbox, first.meeting_id)["cancelled_at"] is None

    bad = sandbox.api("GET", "/meetings", params={"stage": "someday"})
    assert (bad.status_code, bad.json()["code"]) == (400, 2605)


async def test_a_running_meeting_can_be_cancelled(
    user_api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    meeting = await user_api.meetings.schedule(new_meeting(sandbox, 60), "vc")
    sandbox.clock(61 * 60)
    event = await user_api.meetings.cancel(meeting.meeting_id, "vc")
    assert event.meeting_id == meeting.meeting_id
    assert meeting_row(sandbox, meeting.meeting_id)["cancelled_at"] is not None


async def test_cancel_is_final(user_api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    meeting = await user_api.meetings.schedule(new_meeting(sandbox), "vc")
    event = await user_api.meetings.cancel(meeting.meeting_id, "vc")
    assert (event.meeting_id, event.room_id, event.room_name) == (
        meeting.meeting_id,
        meeting.room_id,
        meeting.room_name,
    )
    assert meeting_row(sandbox, meeting.meeting_id)["cancelled_at"] is not None
    with pytest.raises(NotFoundError) as info:
        await user_api.meetings.get(meeting.meeting_id, "vc")
    assert (info.value.status, info.value.code) == (404, 4040)
    with pytest.raises(NotFoundError):
        await user_api.meetings.edit(meeting.meeting_id, MeetingChanges(desc="x"), "vc")
    with pytest.raises(NotFoundError):
        await user_api.meetings.cancel(meeting.meeting_id, "vc")
    assert (await user_api.meetings.list(None, "vc")).items == []


async def test_roles_scope_meetings(
    api: UCaaSClient, user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    mine = await user_api.meetings.schedule(new_meeting(sandbox, 120), "vc")
    # A colleague in the same customer, with a licence of the same subscription.
    colleague = new_user(sandbox, owner["auth"])
    response = sandbox.api(
        "PATCH",
        f"/users/{colleague['user_id']}",
        {"app": "vc", "subscription_id": owner["subscription"]["subscription_id"]},
        auth=owner["auth"],
        headers={"X-License": "assign"},
    )
    assert response.status_code == 200, response.text
    theirs = schedule_meeting(sandbox, (colleague["email"], colleague["password"]))
    stranger = licensed_user(sandbox)
    foreign = schedule_meeting(sandbox, user_auth(stranger))

    listed = [m.meeting_id async for m in user_api.meetings.iterate(None, "vc")]
    assert listed == [mine.meeting_id]  # an AP user sees its own meetings only
    with pytest.raises(NotFoundError):
        await user_api.meetings.get(theirs["meeting_id"], "vc")
    with pytest.raises(NotFoundError):  # nor may it schedule for a colleague
        await user_api.meetings.schedule(new_meeting(sandbox, user_id=colleague["user_id"]), "vc")

    async with api.as_account(Credentials.of(*owner["auth"])) as admin:
        ids = {m.meeting_id async for m in admin.meetings.iterate(None, "vc")}
        assert ids == {mine.meeting_id, theirs["meeting_id"]}
        with pytest.raises(NotFoundError):
            await admin.meetings.get(foreign["meeting_id"], "vc")
        with pytest.raises(NotFoundError):
            await admin.meetings.edit(foreign["meeting_id"], MeetingChanges(desc="x"), "vc")
        with pytest.raises(NotFoundError):
            await admin.meetings.cancel(foreign["meeting_id"], "vc")
    assert meeting_row(sandbox, foreign["meeting_id"])["cancelled_at"] is None

    everything = {m.meeting_id async for m in api.meetings.iterate(None, "vc")}
    assert everything == {mine.meeting_id, theirs["meeting_id"], foreign["meeting_id"]}


async def test_list_search_order_and_pages(
    api: UCaaSClient, user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    made = [
        await user_api.meetings.schedule(new_meeting(sandbox, minutes, room_name=name), "vc")
        for minutes, name in ((300, "Charlie"), (100, "Alpha"), (200, "Bravo"))
    ]
    other = schedule_meeting(sandbox, user_auth(licensed_user(sandbox)), in_minutes=400)

    by_start = await api.meetings.list(MeetingQuery(page_length=2), "vc")
    assert [m.room_name for m in by_start.items] == ["Alpha", "Bravo"]
    assert by_start.search["total"] == 4
    by_name = await api.meetings.list(
        MeetingQuery(order_by="room_name", order_qualify="desc"), "vc"
    )
    assert by_name.items[0].meeting_id == other["meeting_id"]  # "Meeting n" sorts last

    pin = made[2].mpin
    assert pin is not None
    found = await api.meetings.list(MeetingQuery(search_by="mpin", search_string=pin), "vc")
    assert [m.meeting_id for m in found.items] == [made[2].meeting_id]
    ppin = made[0].ppin
    assert ppin is not None
    found = await api.meetings.list(MeetingQuery(search_by="ppin", search_string=ppin), "vc")
    assert [m.meeting_id for m in found.items] == [made[0].meeting_id]
    user_id = owner["user"]["user_id"]
    query = MeetingQuery(search_by="user_id", search_string=user_id, page_length=1)
    names = [m.room_name async for m in api.meetings.iterate(query, "vc")]
    assert names == ["Alpha", "Bravo", "Charlie"]
    assert all(m.stage == "upcoming" for m in by_start.items)


async def test_find_by_natural_key(
    user_api: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    start = (sandbox_now(sandbox) + timedelta(hours=3)).replace(tzinfo=None)  # naive = UTC
    meeting = await user_api.meetings.schedule(
        new_meeting(sandbox, room_name="Board", start_time=start), "vc"
    )
    await user_api.meetings.schedule(new_meeting(sandbox, room_name="Board"), "vc")
    user_id = owner["user"]["user_id"]
    found = await user_api.meetings.find(user_id, "Board", start.replace(tzinfo=UTC), "vc")
    assert found is not None
    assert found.meeting_id == meeting.meeting_id
    later = start + timedelta(minutes=1)
    assert await user_api.meetings.find(user_id, "Board", later, "vc") is None
    assert await user_api.meetings.find(user_id, "Bored", start, "vc") is None
    assert await user_api.meetings.find(user_id, "Board", start, "wb") is None


def test_meeting_alias_routes(sandbox: SandboxAdmin, owner: dict[str, Any]) -> None:
    auth = user_auth(owner)
    start = sandbox_now(sandbox) + timedelta(hours=1)
    created = sandbox.api("POST", "/meeting", meeting_payload(start), auth=auth)
    assert created.status_code == 200, created.text
    meeting_id = created.json()["meeting"]["meeting_id"]
    got = sandbox.api("GET", f"/meeting/{meeting_id}", auth=auth)
    assert got.json()["meeting"]["meeting_id"] == meeting_id
    room = sandbox.api("GET", "/meeting/permanent", auth=auth)
    assert room.json()["permanent_room"]["room_id"] == owner["access"]["room_id"]
    assert sandbox.api("DELETE", f"/meeting/{meeting_id}", auth=auth).status_code == 200
    assert sandbox.api("GET", f"/meetings/{meeting_id}", auth=auth).status_code == 404
    calls = sandbox.calls()["calls"]
    assert calls["POST /meetings"] == 1
    assert calls["GET /meetings/{meeting_id}"] == 2
    assert calls["GET /meetings/permanent"] == 1
