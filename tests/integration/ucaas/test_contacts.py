"""Contacts: the client against the sandbox over HTTP, as an application user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.ucaas import (
    AlreadyExistsError,
    Credentials,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.models.contacts import ContactChanges, ContactQuery, NewContact
from tests.integration.ucaas.factories import (
    app_user,
    contact_payload,
    new_contact,
    new_group,
)
from tests.support.sandbox_server import SandboxAdmin

DETAIL_KEYS = {"contact_id", "name", "email", "company", "designation", "created_at", "updated_at"}


@pytest.fixture
def owner(sandbox: SandboxAdmin) -> dict[str, Any]:
    return app_user(sandbox)


@pytest.fixture
async def client(api: UCaaSClient, owner: dict[str, Any]) -> AsyncIterator[UCaaSClient]:
    async with api.as_account(Credentials.of(owner["email"], owner["password"])) as user_api:
        yield user_api


def state_contacts(sandbox: SandboxAdmin) -> dict[str, dict[str, Any]]:
    return {c["contact_id"]: c for c in sandbox.state()["contacts"]}


def state_groups(sandbox: SandboxAdmin) -> dict[str, dict[str, Any]]:
    return {g["group_id"]: g for g in sandbox.state()["groups"]}


async def test_add_get_edit_delete(
    client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    created = await client.contacts.add(
        NewContact(name="Ada Lovelace", email="Ada@Engine.test", company="Analytical Ltd")
    )
    cid = created.contact.contact_id
    assert created.contact.name == "Ada Lovelace"
    assert created.msg is not None
    assert "Ada Lovelace" in created.msg
    stored = state_contacts(sandbox)[cid]
    assert stored["owner_id"] == owner["user_id"]
    assert stored["email"] == "Ada@Engine.test"
    assert stored["shared"] is False

    raw = sandbox.api("GET", f"/contacts/{cid}", auth=owner["auth"]).json()["contact"]
    assert raw.keys() >= DETAIL_KEYS
    contact = await client.contacts.get(cid)
    assert (contact.name, contact.email, contact.company) == (
        "Ada Lovelace",
        "Ada@Engine.test",
        "Analytical Ltd",
    )
    assert contact.designation is None
    assert contact.created_at is not None
    assert contact.created_at == contact.updated_at

    edited = await client.contacts.edit(
        cid, ContactChanges(name="Ada King", designation="Countess", shared=True)
    )
    assert edited.contact.contact_id == cid
    assert edited.contact.name == "Ada King"
    stored = state_contacts(sandbox)[cid]
    assert (stored["name"], stored["designation"], stored["shared"]) == (
        "Ada King",
        "Countess",
        True,
    )
    assert stored["email"] == "Ada@Engine.test"  # untouched by a partial edit
    assert stored["company"] == "Analytical Ltd"

    deleted = await client.contacts.delete(cid)
    assert deleted.contact.contact_id == cid
    assert deleted.contact.name == "Ada King"
    assert cid not in state_contacts(sandbox)
    with pytest.raises(NotFoundError) as info:
        await client.contacts.get(cid)
    assert (info.value.status, info.value.code) == (404, 4040)
    with pytest.raises(NotFoundError):
        await client.contacts.delete(cid)


async def test_every_role_keeps_its_own_contacts(
    api: UCaaSClient, client: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    mine = await client.contacts.add(NewContact(name="Same Person", email="same@x.test"))
    # The tenant admin may keep contacts too, the same e-mail included: scope is the owner.
    theirs = await api.contacts.add(NewContact(name="Same Person", email="same@x.test"))
    assert theirs.contact.contact_id != mine.contact.contact_id
    assert len(sandbox.state()["contacts"]) == 2
    assert [c.contact_id async for c in api.contacts.iterate()] == [theirs.contact.contact_id]


async def test_isolation_between_accounts(
    api: UCaaSClient, client: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    stranger = app_user(sandbox)
    foreign = new_contact(sandbox, stranger["auth"], name="Foreign")
    own = await client.contacts.add(NewContact.model_validate(contact_payload()))
    with pytest.raises(NotFoundError) as info:
        await client.contacts.get(foreign["contact_id"])
    assert info.value.code == 4040
    with pytest.raises(NotFoundError):
        await client.contacts.edit(foreign["contact_id"], ContactChanges(name="Hijacked"))
    with pytest.raises(NotFoundError):
        await client.contacts.delete(foreign["contact_id"])
    # The tenant admin is no exception: contacts are private to the account.
    with pytest.raises(NotFoundError):
        await api.contacts.get(own.contact.contact_id)
    listed = [c.contact_id async for c in client.contacts.iterate()]
    assert listed == [own.contact.contact_id]
    assert state_contacts(sandbox)[foreign["contact_id"]]["name"] == "Foreign"


async def test_duplicate_email_is_a_conflict_to_reconcile(client: UCaaSClient) -> None:
    first = await client.contacts.add(NewContact(name="Grace", email="grace@navy.test"))
    with pytest.raises(AlreadyExistsError) as info:
        await client.contacts.add(NewContact(name="Grace H", email="GRACE@navy.test"))
    assert (info.value.status, info.value.code) == (409, 1721)
    found = await client.contacts.find_by_email("Grace@Navy.test")
    assert found is not None
    assert found.contact_id == first.contact.contact_id
    assert await client.contacts.find_by_email("nobody@navy.test") is None

    other = await client.contacts.add(NewContact(name="Other", email="other@navy.test"))
    with pytest.raises(AlreadyExistsError) as info:
        await client.contacts.edit(
            other.contact.contact_id, ContactChanges(email="grace@navy.test")
        )
    assert info.value.code == 1721
    # Re-sending one's own e-mail (in another case) is no conflict; the old address is
    # free again once changed.
    await client.contacts.edit(first.contact.contact_id, ContactChanges(email="GRACE@navy.test"))
    await client.contacts.edit(first.contact.contact_id, ContactChanges(email="hopper@navy.test"))
    await client.contacts.add(NewContact(name="New Grace", email="grace@navy.test"))


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"name": None}, 1711),
        ({"name": "  "}, 1711),
        ({"name": "Al"}, 1712),
        ({"name": "n" * 51}, 1713),
        ({"name": 42}, 1714),
        ({"shared": "yes"}, 1715),
        ({"email": "not-an-email"}, 1722),
        ({"email": ["a@b.test"]}, 1723),
        ({"email": None}, 1724),
        ({"email": "a" * 95 + "@x.test"}, 1725),
        ({"company": 5}, 1731),
        ({"company": "c" * 101}, 1732),
        ({"company": "Acme"}, 1733),
        ({"designation": True}, 1741),
        ({"designation": "d" * 101}, 1742),
        ({"designation": "CEO"}, 1743),
        ({"group_ids": "abc"}, 1701),
        ({"group_ids": []}, 1702),
        ({"group_ids": ["0" * 24]}, 1818),
        ({"group_ids": [7]}, 1818),
    ],
)
def test_add_validation_codes(
    sandbox: SandboxAdmin, owner: dict[str, Any], overrides: dict[str, Any], code: int
) -> None:
    payload = {k: v for k, v in contact_payload(**overrides).items() if v is not None}
    response = sandbox.api("POST", "/contacts", payload, auth=owner["auth"])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert sandbox.state()["contacts"] == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"name": ""}, 1712),
        ({"name": "n" * 51}, 1713),
        ({"email": ""}, 1722),
        ({"email": 3}, 1723),
        ({"company": "Co"}, 1733),
        ({"designation": "d" * 101}, 1742),
        ({"shared": 1}, 1715),
    ],
)
def test_edit_validation_codes(
    sandbox: SandboxAdmin, owner: dict[str, Any], changes: dict[str, Any], code: int
) -> None:
    contact = new_contact(sandbox, owner["auth"], name="Unchanged")
    response = sandbox.api(
        "PATCH", f"/contacts/{contact['contact_id']}", changes, auth=owner["auth"]
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert state_contacts(sandbox)[contact["contact_id"]]["name"] == "Unchanged"


async def test_all_problems_are_listed(client: UCaaSClient) -> None:
    with pytest.raises(ValidationError) as info:
        await client.contacts.add(NewContact(name="X", email="bad", company="Co"))
    assert info.value.code == 1712
    assert info.value.codes == {1712, 1722, 1733}


async def test_group_ids_link_and_delete_unlinks(
    client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    sales = new_group(sandbox, owner["auth"], "Sales")
    board = new_group(sandbox, owner["auth"], "Board")
    created = await client.contacts.add(
        NewContact(
            name="Linked",
            email="linked@x.test",
            group_ids=[sales["group_id"], board["group_id"], sales["group_id"]],
        )
    )
    cid = created.contact.contact_id
    groups = state_groups(sandbox)
    assert list(groups[sales["group_id"]]["contacts"]) == [cid]
    assert list(groups[board["group_id"]]["contacts"]) == [cid]
    members = (await client.contact_groups.get(sales["group_id"])).contacts
    assert [(m.contact_id, m.name) for m in members] == [(cid, "Linked")]

    await client.contacts.delete(cid)
    groups = state_groups(sandbox)
    assert groups[sales["group_id"]]["contacts"] == {}
    assert groups[board["group_id"]]["contacts"] == {}
    assert (await client.contact_groups.get(board["group_id"])).contacts == []


async def test_another_accounts_group_is_not_linkable(
    client: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    stranger = app_user(sandbox)
    foreign = new_group(sandbox, stranger["auth"], "Theirs")
    with pytest.raises(ValidationError) as info:
        await client.contacts.add(
            NewContact(name="Sneaky", email="sneaky@x.test", group_ids=[foreign["group_id"]])
        )
    assert (info.value.status, info.value.code) == (400, 1818)
    assert sandbox.state()["contacts"] == []
    assert state_groups(sandbox)[foreign["group_id"]]["contacts"] == {}


def test_singular_alias_for_get_and_delete(sandbox: SandboxAdmin, owner: dict[str, Any]) -> None:
    contact = new_contact(sandbox, owner["auth"], name="Aliased")
    got = sandbox.api("GET", f"/contact/{contact['contact_id']}", auth=owner["auth"])
    assert got.status_code == 200, got.text
    assert got.json()["contact"]["name"] == "Aliased"
    gone = sandbox.api("DELETE", f"/contact/{contact['contact_id']}", auth=owner["auth"])
    assert gone.status_code == 200, gone.text
    assert gone.json()["contact"]["contact_id"] == contact["contact_id"]
    assert sandbox.state()["contacts"] == []
    again = sandbox.api("GET", f"/contact/{contact['contact_id']}", auth=owner["auth"])
    assert (again.status_code, again.json()["code"]) == (404, 4040)


async def test_list_pages_search_and_order(
    client: UCaaSClient, sandbox: SandboxAdmin, owner: dict[str, Any]
) -> None:
    rows = [
        ("Delta Dawn", "delta@a.test", "Acme Rockets", "Engineer"),
        ("alpha Ames", "alpha@b.test", "Bolt Works", "Sales Lead"),
        ("Charlie Chu", "charlie@a.test", "Acme Rockets", "Designer"),
        ("bravo Bell", "bravo@c.test", "Cogs and Co", "Sales Rep"),
        ("Echo Eze", "echo@a.test", None, None),
    ]
    for name, email, company, designation in rows:
        new_contact(
            sandbox, owner["auth"], name=name, email=email, company=company, designation=designation
        )
    new_contact(sandbox, app_user(sandbox)["auth"], name="alpha Stranger")

    page = await client.contacts.list(ContactQuery(order_by="name", page_length=2))
    assert [c.name for c in page.items] == ["alpha Ames", "bravo Bell"]
    assert (page.search["total"], page.search["pages"]) == (5, 3)
    last = await client.contacts.list(ContactQuery(order_by="name", page_length=2, page=3))
    assert [c.name for c in last.items] == ["Echo Eze"]
    assert set(last.items[0].model_dump(exclude_none=True)) >= {"contact_id", "name", "email"}
    desc = await client.contacts.list(ContactQuery(order_by="name", order_qualify="desc"))
    assert desc.items[0].name == "Echo Eze"
    everything = [c.name async for c in client.contacts.iterate(ContactQuery(page_length=2))]
    assert sorted(str(name) for name in everything) == sorted(r[0] for r in rows)

    async def names(search_by: Any, search_string: str) -> list[str | None]:
        query = ContactQuery(search_by=search_by, search_string=search_string, order_by="name")
        return [c.name for c in (await client.contacts.list(query)).items]

    assert await names("name", "ALPHA") == ["alpha Ames"]  # the stranger's stays hidden
    assert await names("email", "CHARLIE@a.test") == ["Charlie Chu"]
    assert await names("email", "charlie@a") == []  # e-mail matches exactly
    assert await names("company", "acme") == ["Charlie Chu", "Delta Dawn"]
    assert await names("designation", "sales") == ["alpha Ames", "bravo Bell"]

    bad = sandbox.api(
        "GET", "/contacts", auth=owner["auth"], params={"search_by": "phone", "search_string": "1"}
    )
    assert (bad.status_code, bad.json()["code"]) == (400, 2605)
