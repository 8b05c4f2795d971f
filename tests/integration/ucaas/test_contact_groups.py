"""Contact groups: the client against the sandbox over HTTP, as an application user."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from connectors.ucaas import (
    AlreadyExistsError,
    Credentials,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.models.contacts import GroupChanges, GroupQuery, NewGroup
from tests.integration.ucaas.factories import app_user, new_contact, new_group
from tests.support.sandbox_server import SandboxAdmin


@pytest.fixture
def owner(sandbox: SandboxAdmin) -> dict[str, Any]:
    return app_user(sandbox)


@pytest.fixture
async def client(api: UCaaSClient, owner: dict[str, Any]) -> AsyncIterator[UCaaSClient]:
    async with api.as_account(Credentials.of(owner["email"], owner["password"])) as user_api:
        yield user_api


def state_groups(sandbox: SandboxAdmin) -> dict[str, dict[str, Any]]:
    return {g["group_id"]: g for g in sandbox.state()["groups"]}


async def test_add_get_edit_delete(
    client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    created = await client.contact_groups.add(NewGroup(group_name="Customers"))
    gid = created.group.group_id
    assert created.group.group_name == "Customers"
    assert created.msg is not None
    assert "Customers" in created.msg
    stored = state_groups(sandbox)[gid]
    assert (stored["owner_id"], stored["group_name"], stored["contacts"]) == (
        owner["user_id"],
        "Customers",
        {},
    )

    raw = sandbox.api("GET", f"/contact-groups/{gid}", auth=owner["auth"]).json()["group"]
    assert {"group_id", "group_name", "contacts"} <= raw.keys()
    group = await client.contact_groups.get(gid)
    assert (group.group_id, group.group_name, group.contacts) == (gid, "Customers", [])

    edited = await client.contact_groups.edit(gid, GroupChanges(group_name="Key customers"))
    assert (edited.group.group_id, edited.group.group_name) == (gid, "Key customers")
    assert edited.group.updated_at is not None
    assert state_groups(sandbox)[gid]["group_name"] == "Key customers"
    # The old name is free again.
    await client.contact_groups.add(NewGroup(group_name="Customers"))

    member = new_contact(sandbox, owner["auth"])
    await client.contact_groups.add_contacts(gid, [member["contact_id"]])
    deleted = await client.contact_groups.delete(gid)
    assert (deleted.group.group_id, deleted.group.group_name) == (gid, "Key customers")
    assert gid not in state_groups(sandbox)
    # Deleting a group keeps its contacts.
    assert [c["contact_id"] for c in sandbox.state()["contacts"]] == [member["contact_id"]]
    with pytest.raises(NotFoundError) as info:
        await client.contact_groups.get(gid)
    assert (info.value.status, info.value.code) == (404, 1818)
    with pytest.raises(NotFoundError):
        await client.contact_groups.delete(gid)


def test_edit_answers_under_group_and_the_documented_key(
    sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    group = new_group(sandbox, owner["auth"], "Team")
    body = sandbox.api(
        "PATCH", f"/contact-groups/{group['group_id']}", {"group_name": "Crew"}, auth=owner["auth"]
    ).json()
    for key in ("group", "contact"):  # the reference's example says "contact"
        assert body[key]["group_name"] == "Crew"
        assert {"group_id", "created_at", "updated_at"} <= body[key].keys()


async def test_members_add_is_idempotent_and_delete_removes(
    client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    gid = new_group(sandbox, owner["auth"], "Partners")["group_id"]
    ann = new_contact(sandbox, owner["auth"], name="Ann")["contact_id"]
    bob = new_contact(sandbox, owner["auth"], name="Bob")["contact_id"]

    first = await client.contact_groups.add_contacts(gid, [ann, bob, ann])
    assert first.msg is not None
    assert first.msg.startswith("2 ")
    assert [(m.contact_id, m.name) for m in first.group.contacts] == [(ann, "Ann"), (bob, "Bob")]
    added_at = state_groups(sandbox)[gid]["contacts"]
    assert set(added_at) == {ann, bob}

    sandbox.clock(120)  # a re-add must not move added_at
    again = await client.contact_groups.add_contacts(gid, [ann])
    assert again.msg is not None
    assert again.msg.startswith("0 ")
    assert [m.contact_id for m in again.group.contacts] == [ann, bob]
    assert state_groups(sandbox)[gid]["contacts"] == added_at

    removed = await client.contact_groups.delete_contacts(gid, [ann])
    assert [m.contact_id for m in removed.group.contacts] == [bob]
    assert list(state_groups(sandbox)[gid]["contacts"]) == [bob]
    # Removing a non-member (or a deleted contact) is a no-op, so retries are harmless.
    noop = await client.contact_groups.delete_contacts(gid, [ann, "0" * 24])
    assert noop.msg is not None
    assert noop.msg.startswith("0 ")
    assert [m.contact_id for m in (await client.contact_groups.get(gid)).contacts] == [bob]
    calls = sandbox.calls()["calls"]
    assert calls["PATCH /contact-groups/{group_id} [X-License: add-contact]"] == 2
    assert calls["PATCH /contact-groups/{group_id} [X-License: delete-contact]"] == 2


def test_x_action_header_is_accepted_and_unknown_action_refused(
    sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    gid = new_group(sandbox, owner["auth"], "Friends")["group_id"]
    cid = new_contact(sandbox, owner["auth"])["contact_id"]
    path = f"/contact-groups/{gid}"
    body = {"contact_ids": [cid]}
    added = sandbox.api(
        "PATCH", path, body, auth=owner["auth"], headers={"X-Action": "add-contact"}
    )
    assert added.status_code == 200, added.text
    assert list(state_groups(sandbox)[gid]["contacts"]) == [cid]
    unknown = sandbox.api("PATCH", path, body, auth=owner["auth"], headers={"X-License": "merge"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, 4000)
    removed = sandbox.api(
        "PATCH", path, body, auth=owner["auth"], headers={"X-Action": "Delete-Contact"}
    )
    assert removed.status_code == 200, removed.text
    assert state_groups(sandbox)[gid]["contacts"] == {}
    assert state_groups(sandbox)[gid]["group_name"] == "Friends"


async def test_duplicate_names_are_conflicts(
    api: UCaaSClient, client: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    first = await client.contact_groups.add(NewGroup(group_name="Vendors"))
    with pytest.raises(AlreadyExistsError) as info:
        await client.contact_groups.add(NewGroup(group_name="VENDORS"))
    assert (info.value.status, info.value.code) == (409, 1805)
    found = await client.contact_groups.find_by_name("vendors")
    assert found is not None
    assert found.group_id == first.group.group_id
    assert await client.contact_groups.find_by_name("Vend") is None

    second = await client.contact_groups.add(NewGroup(group_name="Suppliers"))
    with pytest.raises(AlreadyExistsError) as info:
        await client.contact_groups.edit(second.group.group_id, GroupChanges(group_name="Vendors"))
    assert (info.value.status, info.value.code) == (409, 1810)
    # Renaming to one's own name (in another case) is no conflict.
    await client.contact_groups.edit(first.group.group_id, GroupChanges(group_name="vendors"))
    # Names are unique per account only.
    await api.contact_groups.add(NewGroup(group_name="Vendors"))
    assert len(sandbox.state()["groups"]) == 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 1801),
        ({"group_name": " "}, 1801),
        ({"group_name": "ab"}, 1802),
        ({"group_name": "g" * 101}, 1803),
        ({"group_name": 12}, 1804),
    ],
)
def test_name_validation_codes(
    sandbox: SandboxAdmin, owner: dict[str, Any], body: dict[str, Any], code: int
) -> None:
    added = sandbox.api("POST", "/contact-groups", body, auth=owner["auth"])
    assert (added.status_code, added.json()["code"]) == (400, code)
    assert sandbox.state()["groups"] == []
    gid = new_group(sandbox, owner["auth"], "Original")["group_id"]
    edited = sandbox.api("PATCH", f"/contact-groups/{gid}", body, auth=owner["auth"])
    assert (edited.status_code, edited.json()["code"]) == (400, code)
    assert state_groups(sandbox)[gid]["group_name"] == "Original"


@pytest.mark.parametrize("header", ["add-contact", "delete-contact"])
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 1811),
        ({"contact_ids": []}, 1811),
        ({"contact_ids": "abc"}, 1812),
        ({"contact_ids": [{"id": 1}]}, 1813),
    ],
)
def test_member_validation_codes(
    sandbox: SandboxAdmin, owner: dict[str, Any], header: str, body: dict[str, Any], code: int
) -> None:
    gid = new_group(sandbox, owner["auth"], "Members")["group_id"]
    response = sandbox.api(
        "PATCH", f"/contact-groups/{gid}", body, auth=owner["auth"], headers={"X-License": header}
    )
    assert (response.status_code, response.json()["code"]) == (400, code)


async def test_unknown_or_foreign_contact_cannot_be_added(
    client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    gid = new_group(sandbox, owner["auth"], "Mine")["group_id"]
    own = new_contact(sandbox, owner["auth"])["contact_id"]
    foreign = new_contact(sandbox, app_user(sandbox)["auth"])["contact_id"]
    for ids in ([own, foreign], [own, "0" * 24]):
        with pytest.raises(ValidationError) as info:
            await client.contact_groups.add_contacts(gid, ids)
        assert info.value.code == 1813
    assert state_groups(sandbox)[gid]["contacts"] == {}  # all or nothing


async def test_isolation_between_accounts(
    api: UCaaSClient, client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    stranger = app_user(sandbox)
    foreign = new_group(sandbox, stranger["auth"], "Theirs")["group_id"]
    own_contact = new_contact(sandbox, owner["auth"])["contact_id"]
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: client.contact_groups.get(foreign),
        lambda: client.contact_groups.edit(foreign, GroupChanges(group_name="Mine now")),
        lambda: client.contact_groups.add_contacts(foreign, [own_contact]),
        lambda: client.contact_groups.delete_contacts(foreign, [own_contact]),
        lambda: client.contact_groups.delete(foreign),
        lambda: api.contact_groups.get(foreign),  # even for the tenant admin
    ]
    for attempt in attempts:
        with pytest.raises(NotFoundError) as info:
            await attempt()
        assert (info.value.status, info.value.code) == (404, 1818)
    stored = state_groups(sandbox)[foreign]
    assert (stored["group_name"], stored["contacts"]) == ("Theirs", {})
    assert [g.group_id async for g in client.contact_groups.iterate()] == []


async def test_list_pages_and_search(
    client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    for name in ("Delta team", "alpha team", "Charlie crew", "bravo team", "Echo crew"):
        new_group(sandbox, owner["auth"], name)
    new_group(sandbox, app_user(sandbox)["auth"], "alpha outsiders")

    page = await client.contact_groups.list(GroupQuery(order_by="group_name", page_length=2))
    assert [g.group_name for g in page.items] == ["alpha team", "bravo team"]
    assert (page.search["total"], page.search["pages"]) == (5, 3)
    assert all(g.group_id and g.created_at for g in page.items)
    desc = await client.contact_groups.list(
        GroupQuery(order_by="group_name", order_qualify="desc", page=2, page_length=2)
    )
    assert [g.group_name for g in desc.items] == ["Charlie crew", "bravo team"]
    names = [g.group_name async for g in client.contact_groups.iterate(GroupQuery(page_length=2))]
    assert len(names) == 5
    assert "alpha outsiders" not in names

    found = await client.contact_groups.list(
        GroupQuery(search_by="group_name", search_string="CREW", order_by="group_name")
    )
    assert [g.group_name for g in found.items] == ["Charlie crew", "Echo crew"]
    bad = sandbox.api(
        "GET",
        "/contact-groups",
        auth=owner["auth"],
        params={"search_by": "name", "search_string": "x"},
    )
    assert (bad.status_code, bad.json()["code"]) == (400, 2605)
