"""Customers: the client against the sandbox over HTTP."""

from __future__ import annotations

import pytest

from connectors.ucaas import (
    AlreadyExistsError,
    Credentials,
    ForbiddenError,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.models.customers import AddressIn, CustomerChanges, CustomerQuery, NewCustomer
from tests.integration.ucaas.factories import customer_payload, new_customer, portal_auth
from tests.support.sandbox_server import SandboxAdmin


def new(**overrides: object) -> NewCustomer:
    return NewCustomer.model_validate(customer_payload(**overrides))


async def test_add_get_and_portal_login(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    created = await api.customers.add(new(customer_name="Acme", customer_code="CRM-ACME"))
    assert created.customer.customer_name == "Acme"
    assert created.portal_access is not None
    assert created.portal_access.password.get_secret_value() not in repr(created)

    customer = await api.customers.get(created.customer.customer_id)
    assert customer.customer_code == "CRM-ACME"
    assert customer.status == "A"
    assert customer.customer_type == "P"
    assert customer.office_address is not None
    assert customer.office_address.country == "France"
    assert customer.billing_address == customer.office_address  # replicated when omitted

    state = sandbox.state()
    assert [c["customer_code"] for c in state["customers"]].count("CRM-ACME") == 1

    # The portal credentials log in, as a customer admin who cannot see customers.
    username = created.portal_access.username
    password = created.portal_access.password
    async with api.as_account(Credentials(username, password)) as portal:
        with pytest.raises(ForbiddenError) as info:
            await portal.customers.get(created.customer.customer_id)
        assert info.value.status == 403


async def test_edit_changes_fields_and_closes(api: UCaaSClient) -> None:
    created = await api.customers.add(new())
    cid = created.customer.customer_id
    await api.customers.edit(cid, CustomerChanges(customer_name="Renamed", status="C"))
    customer = await api.customers.get(cid)
    assert customer.customer_name == "Renamed"
    assert customer.status == "C"
    assert customer.track is not None and customer.track.closed is not None


async def test_validation_codes(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    response = sandbox.api("POST", "/customers", {"customer_name": 5})
    body = response.json()
    assert response.status_code == 400
    codes = {e["code"] for e in body["errors"]}
    assert {1302, 1305, 1321, 1331, 1341} <= codes
    assert body["code"] == body["errors"][0]["code"]

    with pytest.raises(ValidationError) as info:
        await api.customers.add(
            new(office_address=AddressIn(address_1="x", city="y", country_id="999"))
        )
    assert info.value.code == 1357


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("customer_name", "x" * 101, 1303),
        ("customer_legal_name", 7, 1306),
        ("customer_code", "c" * 51, 1310),
        ("individual", "yes", 1312),
        ("contact_email", "not-an-email", 1335),
        ("contact_email", "a" * 95 + "@x.test", 1332),
        ("contact_name", 3, 1322),
        ("customer_type", "Z", 1308),
    ],
)
def test_field_rules(sandbox: SandboxAdmin, field: str, value: object, code: int) -> None:
    response = sandbox.api("POST", "/customers", customer_payload(**{field: value}))
    assert response.status_code == 400
    assert response.json()["code"] == code


async def test_duplicates_are_conflicts_to_reconcile(api: UCaaSClient) -> None:
    await api.customers.add(new(customer_code="CRM-DUP", contact_email="dup@x.test"))
    with pytest.raises(AlreadyExistsError) as info:
        await api.customers.add(new(customer_code="CRM-DUP"))
    assert info.value.code == 1311
    assert info.value.status == 409
    with pytest.raises(AlreadyExistsError) as info:
        await api.customers.add(new(contact_email="dup@x.test"))
    assert info.value.code == 1333
    found = await api.customers.find_by_code("CRM-DUP")
    assert found is not None and found.customer_code == "CRM-DUP"
    assert await api.customers.find_by_code("CRM-NONE") is None


async def test_not_found(api: UCaaSClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await api.customers.get("0" * 24)
    assert info.value.status == 404


async def test_list_search_order_and_pages(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    for name in ("Delta", "alpha", "Charlie", "bravo", "Echo"):
        new_customer(sandbox, customer_name=name)
    page = await api.customers.list(CustomerQuery(order_by="customer_name", page_length=2))
    assert [c.customer_name for c in page.items] == ["alpha", "bravo"]
    assert page.search["total"] == 5
    desc = await api.customers.list(CustomerQuery(order_by="customer_name", order_qualify="desc"))
    assert desc.items[0].customer_name == "Echo"
    names = [c.customer_name async for c in api.customers.iterate(CustomerQuery(page_length=2))]
    assert sorted(names, key=str.lower) == ["alpha", "bravo", "Charlie", "Delta", "Echo"]
    found = await api.customers.list(CustomerQuery(search_by="customer_name", search_string="ALP"))
    assert [c.customer_name for c in found.items] == ["alpha"]
    today = sandbox.state()["customers"][0]["added"][:10]
    dated = await api.customers.list(CustomerQuery(from_join_dt=today, page_length=100))
    assert len(dated.items) == 5
    future = await api.customers.list(CustomerQuery(from_join_dt="2999-01-01"))
    assert future.items == []


async def test_reseller_sees_only_its_customers(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    reseller = new_customer(sandbox, customer_type="R", customer_name="Reseller")
    other = new_customer(sandbox, customer_name="Direct customer")
    reseller_auth = portal_auth(reseller)
    mine = sandbox.api(
        "POST", "/customers", customer_payload(customer_name="Mine"), auth=reseller_auth
    )
    assert mine.status_code == 200, mine.text
    async with api.as_account(Credentials.of(*reseller_auth), auth_mode="basic") as client:
        listed = [c.customer_name async for c in client.customers.iterate()]
        assert listed == ["Mine"]
        with pytest.raises(NotFoundError):
            await client.customers.get(other["customer"]["customer_id"])
        with pytest.raises(ValidationError) as info:  # a reseller cannot create resellers
            await client.customers.add(new(customer_type="R"))
        assert info.value.code == 1308
