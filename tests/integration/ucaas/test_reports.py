"""Reports (sessions and CDR): the client against the sandbox over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.ucaas import Credentials, UCaaSClient, ValidationError
from connectors.ucaas.models.reports import CdrQuery, SessionQuery
from tests.integration.ucaas.factories import (
    assign,
    join,
    licensed_user,
    new_user,
    schedule_meeting,
)
from tests.support.sandbox_server import SandboxAdmin

SESSION_KEYS = {
    "session_id", "meeting_id", "room_id", "user_id", "user_name", "trans_date",
    "connect_dt", "disconnect_dt", "duration", "app_type",
}  # fmt: skip


def second_user(sandbox: SandboxAdmin, owner: dict[str, Any]) -> dict[str, Any]:
    """Another licensed user of `owner`'s customer: {user..., access}."""
    user = new_user(sandbox, owner["auth"])
    access = assign(sandbox, owner["auth"], user["user_id"], owner["subscription"])
    return {"user": user, "access": access}


async def test_sessions_list_and_duration(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    room = owner["access"]
    join(sandbox, room["mpin"], "Host", "h")
    join(sandbox, room["ppin"], "Guest", "g")
    sandbox.clock(30 * 60)
    page = await api.reports.sessions()
    (session,) = page.items
    assert session.room_id == room["room_id"]
    assert session.user_id == owner["user"]["user_id"]
    assert session.user_name == owner["user"]["name"]
    assert session.meeting_id is None
    assert session.app_type == "vc"
    assert session.disconnect_dt is None
    assert session.duration == 30  # open: counted up to now
    assert page.search["total"] == 1
    raw = sandbox.api("GET", "/sessions").json()
    assert set(raw["sessions"][0]) >= SESSION_KEYS
    assert {"page", "page_length", "search_by", "search_string", "order_by"} <= set(raw["search"])


async def test_closed_session_duration_is_fixed(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    room = licensed_user(sandbox)["access"]
    first = join(sandbox, room["mpin"])["user"]["session_id"]
    sandbox.clock(90 * 60)  # past the room's 60 minutes: the next join opens a new session
    join(sandbox, room["mpin"])
    sandbox.clock(100 * 60)
    sessions = {s.session_id: s async for s in api.reports.iterate_sessions()}
    assert len(sessions) == 2
    assert sessions[first].duration == 60
    assert sessions[first].disconnect_dt is not None
    (other,) = (s for s in sessions.values() if s.session_id != first)
    assert other.duration == 10


async def test_customer_admin_sees_only_its_customer(
    api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    mine = licensed_user(sandbox)
    theirs = licensed_user(sandbox)
    join(sandbox, mine["access"]["ppin"])
    join(sandbox, theirs["access"]["ppin"])
    everything = [s.room_id async for s in api.reports.iterate_sessions()]
    assert sorted(everything) == sorted([mine["access"]["room_id"], theirs["access"]["room_id"]])
    async with api.as_account(Credentials.of(*mine["auth"])) as portal:
        listed = [s.room_id async for s in portal.reports.iterate_sessions()]
        assert listed == [mine["access"]["room_id"]]
        # Filtering by the other customer's room finds nothing rather than leaking it.
        other = await portal.reports.sessions(
            SessionQuery(search_by="room_id", search_string=theirs["access"]["room_id"])
        )
        assert other.items == []
        cdr = [c.room_id async for c in portal.reports.iterate_cdr()]
        assert cdr == [mine["access"]["room_id"]]
        hidden = await portal.reports.cdr(CdrQuery(room_id=theirs["access"]["room_id"]))
        assert hidden.items == []


async def test_user_sees_only_the_sessions_it_hosted(
    api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    owner = licensed_user(sandbox)
    colleague = second_user(sandbox, owner)
    join(sandbox, owner["access"]["ppin"])
    join(sandbox, colleague["access"]["ppin"])
    credentials = Credentials.of(owner["user"]["email"], owner["user"]["password"])
    async with api.as_account(credentials) as user:
        listed = [s.user_id async for s in user.reports.iterate_sessions()]
        assert listed == [owner["user"]["user_id"]]
        cdr = [c.room_id async for c in user.reports.iterate_cdr()]
        assert cdr == [owner["access"]["room_id"]]
    async with api.as_account(Credentials.of(*owner["auth"])) as admin:
        assert len([s async for s in admin.reports.iterate_sessions()]) == 2


async def test_session_search_dates_and_paging(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    colleague = second_user(sandbox, owner)
    meeting = schedule_meeting(sandbox, owner["auth"], user_id=owner["user"]["user_id"])
    first = join(sandbox, owner["access"]["ppin"])["user"]["session_id"]
    join(sandbox, colleague["access"]["ppin"])
    join(sandbox, meeting["ppin"])
    today = sandbox.state()["today"]

    def query(**kwargs: Any) -> SessionQuery:
        return SessionQuery.model_validate(kwargs)

    by_user = await api.reports.sessions(
        query(search_by="user_id", search_string=colleague["user"]["user_id"])
    )
    assert [s.room_id for s in by_user.items] == [colleague["access"]["room_id"]]
    by_id = await api.reports.sessions(query(search_by="session_id", search_string=first))
    assert [s.session_id for s in by_id.items] == [first]
    by_meeting = await api.reports.sessions(
        query(search_by="meeting_id", search_string=meeting["meeting_id"])
    )
    assert [s.room_id for s in by_meeting.items] == [meeting["room_id"]]

    assert len((await api.reports.sessions(query(from_session_date=today))).items) == 3
    assert (await api.reports.sessions(query(from_session_date="2999-01-01"))).items == []
    assert (await api.reports.sessions(query(to_session_date="2000-01-01 00:00:00"))).items == []
    # The reference lists the date bounds among the search_by fields too.
    as_search = await api.reports.sessions(
        query(search_by="from_session_date", search_string="2999-01-01 00:00:00")
    )
    assert as_search.items == []
    assert as_search.search["search_by"] == "from_session_date"
    with pytest.raises(ValidationError) as info:
        await api.reports.sessions(query(from_session_date="yesterday"))
    assert info.value.code == 2609

    page = await api.reports.sessions(query(page_length=2, order_by="connect_dt"))
    assert len(page.items) == 2
    assert page.search["pages"] == 2
    every = [s.session_id async for s in api.reports.iterate_sessions(query(page_length=1))]
    assert len(every) == len(set(every)) == 3


async def test_cdr_filters_and_precedence(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    colleague = second_user(sandbox, owner)
    room_a, room_b = owner["access"], colleague["access"]
    session_a = join(sandbox, room_a["mpin"], "Ann", "ann")["user"]["session_id"]
    join(sandbox, room_a["ppin"], "Bob", "bob")
    session_b = join(sandbox, room_b["ppin"], "Cy", "cy")["user"]["session_id"]

    page = await api.reports.cdr(CdrQuery(session_id=session_a))
    assert [(c.name, c.role, c.user_ref) for c in page.items] == [
        ("Ann", "moderator", "ann"),
        ("Bob", "participant", "bob"),
    ]
    assert page.search["filters"] == {"session_id": session_a}
    # room_id takes precedence over session_id: the session filter is ignored.
    ruled = await api.reports.cdr(CdrQuery(room_id=room_b["room_id"], session_id=session_a))
    assert [c.session_id for c in ruled.items] == [session_b]
    assert ruled.search["filters"] == {"room_id": room_b["room_id"]}
    # meeting_id comes before session_id: no meeting has this id, so nothing matches.
    nothing = await api.reports.cdr(CdrQuery(meeting_id="0" * 24, session_id=session_a))
    assert nothing.items == []
    assert nothing.search["filters"] == {"meeting_id": "0" * 24}

    everything = await api.reports.cdr()
    assert len(everything.items) == 3
    assert everything.search["filters"] == {}
    assert {c.app_type for c in everything.items} == {"vc"}
    names = [c.name async for c in api.reports.iterate_cdr(CdrQuery(page_length=2))]
    assert names == ["Ann", "Bob", "Cy"]


async def test_cdr_of_a_meeting(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    meeting = schedule_meeting(sandbox, owner["auth"], user_id=owner["user"]["user_id"])
    join(sandbox, meeting["mpin"], "Chair", "chair")
    join(sandbox, owner["access"]["ppin"], "Elsewhere", "x")
    page = await api.reports.cdr(CdrQuery(meeting_id=meeting["meeting_id"]))
    (record,) = page.items
    assert record.name == "Chair"
    assert record.meeting_id == meeting["meeting_id"]
    assert record.room_id == meeting["room_id"]
