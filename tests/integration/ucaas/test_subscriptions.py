"""Subscriptions: the client against the sandbox over HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from connectors.ucaas import (
    Credentials,
    ForbiddenError,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.models.subscriptions import (
    NewSubscription,
    NewSubscriptionTerms,
    SubscriptionChanges,
    SubscriptionQuery,
    SubscriptionTermChanges,
)
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


def _today(sandbox: SandboxAdmin) -> date:
    return date.fromisoformat(today(sandbox))


def _new(
    customer_id: str, start: date, plan_id: str = "vc-basic", seats: int = 5
) -> NewSubscription:
    return NewSubscription(
        customer_id=customer_id,
        plan_id=plan_id,
        room_type="standard",
        subscription=NewSubscriptionTerms(subsxn_date=start, no_of_license=seats),
    )


def _stored(sandbox: SandboxAdmin, subscription_id: str) -> dict[str, Any]:
    return next(
        s for s in sandbox.state()["subscriptions"] if s["subscription_id"] == subscription_id
    )


async def test_add_and_get(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    customer = new_customer(sandbox, customer_name="Acme")["customer"]
    start = _today(sandbox)
    body = _new(customer["customer_id"], start, "wb-pro", seats=3)
    body.title = "Webinars 2025"
    body.subscription.unit_price = 12.5
    body.subscription.payment_mode = "O"
    saved = await api.subscriptions.add(body)
    ref = saved.subscription
    assert (ref.customer_id, ref.customer_name) == (customer["customer_id"], "Acme")
    assert (ref.plan_id, ref.plan_name, ref.qty) == ("wb-pro", "Webinar Pro", 3)
    assert saved.msg == "Acme has subscribed to plan: Webinar Pro (For wb). User license: 3."

    sub = await api.subscriptions.get(ref.subscription_id)
    assert (sub.app_const, sub.plan_id, sub.title, sub.room_type) == (
        "wb",
        "wb-pro",
        "Webinars 2025",
        "standard",
    )
    assert sub.settings is not None
    assert sub.settings.participants == 1000
    assert sub.subscription is not None
    assert sub.subscription.status == "A"
    assert sub.subscription.status_ex == "Active"
    assert sub.subscription.subsxn_date == start.isoformat()
    assert sub.subscription.expiry_date == (start + timedelta(days=365)).isoformat()
    assert (sub.subscription.base, sub.subscription.prepaid, sub.subscription.postpaid) == (
        "UL",
        False,
        True,
    )
    assert sub.features is not None
    assert sub.features.livestreaming is True
    assert sub.user_license is not None
    assert (sub.user_license.qty, sub.user_license.used) == (3, 0)
    assert sub.user_license.unit_price == {"USD": 12.5}
    assert sub.user_license.total_price == {"USD": 37.5}
    for usage in (sub.connect, sub.records, sub.download, sub.storage):
        assert usage is not None
        assert usage.price is not None
        assert "USD" in usage.price

    stored = _stored(sandbox, ref.subscription_id)
    assert (stored["qty"], stored["payment_mode"], stored["seats_used"]) == (3, "O", 0)


def test_add_accepts_the_table_spelling_of_the_date(sandbox: SandboxAdmin) -> None:
    customer_id = new_customer(sandbox)["customer"]["customer_id"]
    start = (_today(sandbox) + timedelta(days=3)).isoformat()
    response = sandbox.api(
        "POST",
        "/subscriptions",
        {
            "customer_id": customer_id,
            "plan_id": "vc-pro",
            "room_type": "standard",
            "subscription": {"no_of_license": 2, "subxn_date": start},
        },
    )
    assert response.status_code == 200, response.text
    stored = _stored(sandbox, response.json()["subscription"]["subscription_id"])
    assert stored["subsxn_date"] == start


async def test_update_status_and_seats(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    created = new_customer(sandbox, customer_name="Beta")
    sub = new_subscription(sandbox, created["customer"]["customer_id"], seats=2)
    sid = sub["subscription_id"]
    saved = await api.subscriptions.update(
        sid, SubscriptionChanges(subscription=SubscriptionTermChanges(status="S"))
    )
    assert (
        saved.msg
        == "Subscription information for Beta is updated for plan: Meeting Basic (For vc)."
    )
    assert _stored(sandbox, sid)["status"] == "S"
    got = await api.subscriptions.get(sid)
    assert got.subscription is not None
    assert got.subscription.status_ex == "Suspended"

    changes = SubscriptionChanges(subscription=SubscriptionTermChanges(status="A", no_of_license=4))
    saved = await api.subscriptions.update(sid, changes)
    assert saved.subscription.qty == 4
    assert (_stored(sandbox, sid)["status"], _stored(sandbox, sid)["qty"]) == ("A", 4)

    # Seats cannot go below the licences in use.
    auth = portal_auth(created)
    for _ in range(2):
        assign(sandbox, auth, new_user(sandbox, auth)["user_id"], sub)
    with pytest.raises(ValidationError) as info:
        await api.subscriptions.update(
            sid, SubscriptionChanges(subscription=SubscriptionTermChanges(no_of_license=1))
        )
    assert info.value.code == 1257
    assert _stored(sandbox, sid)["qty"] == 4


def _add_body(customer_id: str, start: str, changes: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "plan_id": "vc-basic",
        "room_type": "standard",
        "subscription": {"no_of_license": 5, "subsxn_date": start},
    }
    for key, value in changes.items():
        target = body
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target[parent]
        if value is ...:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return body


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"customer_id": ...}, 1201),
        ({"customer_id": 5}, 1202),
        ({"customer_id": "0" * 24}, 1234),
        ({"plan_id": ...}, 1211),
        ({"plan_id": 5}, 1212),
        ({"plan_id": "vc-gold"}, 1325),
        ({"room_type": ...}, 1326),
        ({"subscription": ...}, 1221),
        ({"subscription": "five seats"}, 1229),
        ({"subscription.no_of_license": "many"}, 1254),
        ({"subscription.no_of_license": ...}, 1255),
        ({"subscription.no_of_license": 0}, 1255),
        ({"subscription.unit_price": 0.5}, 1256),
        ({"subscription.unit_price": 100001}, 1256),
        ({"subscription.allow_meeting_overlap": "yes"}, 1228),
        ({"subscription.prepaid": "yes"}, 1232),
        ({"subscription.subsxn_date": ...}, 1327),
        ({"subscription.subsxn_date": "01/02/2030"}, 1328),
        ({"subscription.subsxn_date": "2000-01-01"}, 1329),
        ({"title": 5}, 4000),
        ({"subscription.payment_mode": "cash"}, 4000),
    ],
)
def test_add_validation_codes(sandbox: SandboxAdmin, changes: dict[str, Any], code: int) -> None:
    customer_id = new_customer(sandbox)["customer"]["customer_id"]
    response = sandbox.api(
        "POST", "/subscriptions", _add_body(customer_id, today(sandbox), changes)
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == code
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["msg"]
    assert sandbox.state()["subscriptions"] == []


def test_add_reports_every_problem(sandbox: SandboxAdmin) -> None:
    response = sandbox.api("POST", "/subscriptions", {"plan_id": "nope", "title": ["x"]})
    assert response.status_code == 400
    codes = [e["code"] for e in response.json()["errors"]]
    assert set(codes) == {1201, 1325, 1326, 1221, 4000}
    title = next(e for e in response.json()["errors"] if e["field"] == "title")
    assert "title" in title["msg"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"subscription": {"status": "Q"}}, 1231),
        ({"subscription": {"status": 1}}, 1230),
        ({"subscription": {"no_of_license": "two"}}, 1254),
        ({"subscription": {"no_of_license": 0}}, 1255),
        ({"subscription": []}, 1229),
    ],
)
def test_update_validation_codes(sandbox: SandboxAdmin, body: dict[str, Any], code: int) -> None:
    sub = new_subscription(sandbox, new_customer(sandbox)["customer"]["customer_id"], seats=3)
    response = sandbox.api("PATCH", f"/subscriptions/{sub['subscription_id']}", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    stored = _stored(sandbox, sub["subscription_id"])
    assert (stored["status"], stored["qty"]) == ("A", 3)


async def test_unknown_subscription_is_404_1220(api: UCaaSClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await api.subscriptions.get("0" * 24)
    assert (info.value.status, info.value.code) == (404, 1220)
    with pytest.raises(NotFoundError):
        await api.subscriptions.update(
            "0" * 24, SubscriptionChanges(subscription=SubscriptionTermChanges(status="S"))
        )


async def test_customer_admin_reads_only_its_own(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    mine = new_customer(sandbox)
    mine_id = mine["customer"]["customer_id"]
    other_id = new_customer(sandbox)["customer"]["customer_id"]
    own = new_subscription(sandbox, mine_id)
    theirs = new_subscription(sandbox, other_id, "wb-basic")
    async with api.as_account(Credentials.of(*portal_auth(mine))) as client:
        listed = [s.subscription_id async for s in client.subscriptions.iterate()]
        assert listed == [own["subscription_id"]]
        # Asking for another customer's subscriptions finds nothing rather than failing.
        query = SubscriptionQuery(search_by="customer_id", search_string=other_id)
        assert (await client.subscriptions.list(query)).items == []
        assert (await client.subscriptions.get(own["subscription_id"])).customer_id == mine_id
        with pytest.raises(NotFoundError) as info:
            await client.subscriptions.get(theirs["subscription_id"])
        assert info.value.code == 1220
        with pytest.raises(ForbiddenError) as forbidden:
            await client.subscriptions.add(_new(mine_id, _today(sandbox)))
        assert (forbidden.value.status, forbidden.value.code) == (403, 4030)
        with pytest.raises(ForbiddenError):
            await client.subscriptions.update(
                own["subscription_id"],
                SubscriptionChanges(subscription=SubscriptionTermChanges(no_of_license=99)),
            )
    assert len(sandbox.state()["subscriptions"]) == 2
    assert _stored(sandbox, own["subscription_id"])["qty"] == 10


async def test_reseller_reads_its_customers_and_users_read_none(
    api: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    reseller = new_customer(sandbox, customer_type="R")
    reseller_auth = portal_auth(reseller)
    child = sandbox.api("POST", "/customers", customer_payload(), auth=reseller_auth)
    assert child.status_code == 200, child.text
    child_id = child.json()["customer"]["customer_id"]
    under = new_subscription(sandbox, child_id)
    direct = new_customer(sandbox)
    new_subscription(sandbox, direct["customer"]["customer_id"])
    async with api.as_account(Credentials.of(*reseller_auth)) as client:
        assert [s.customer_id async for s in client.subscriptions.iterate()] == [child_id]
        assert (await client.subscriptions.get(under["subscription_id"])).plan_id == "vc-basic"
        with pytest.raises(ForbiddenError):  # only the tenant admin writes subscriptions
            await client.subscriptions.add(_new(child_id, _today(sandbox)))

    user = new_user(sandbox, portal_auth(direct))
    async with api.as_account(Credentials.of(user["email"], user["password"])) as client:
        with pytest.raises(ForbiddenError):
            await client.subscriptions.list()
        with pytest.raises(ForbiddenError):
            await client.subscriptions.get(under["subscription_id"])


async def test_list_filters_order_and_pages(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    first = new_customer(sandbox)["customer"]["customer_id"]
    second = new_customer(sandbox)["customer"]["customer_id"]
    start = _today(sandbox)
    plans = [(first, "vc-basic", 0), (first, "wb-basic", 30), (second, "vc-pro", 60)]
    ids = {}
    for customer_id, plan_id, days in plans:
        saved = await api.subscriptions.add(
            _new(customer_id, start + timedelta(days=days), plan_id)
        )
        ids[plan_id] = saved.subscription.subscription_id
    await api.subscriptions.update(
        ids["vc-pro"], SubscriptionChanges(subscription=SubscriptionTermChanges(status="S"))
    )

    async def plan_ids(**query: Any) -> list[str | None]:
        page = await api.subscriptions.list(SubscriptionQuery(page_length=100, **query))
        return [s.plan_id for s in page.items]

    assert await plan_ids(order_by="subsxn_date", order_qualify="desc") == [
        "vc-pro",
        "wb-basic",
        "vc-basic",
    ]
    assert await plan_ids(search_by="customer_id", search_string=first) == ["vc-basic", "wb-basic"]
    assert await plan_ids(search_by="app", search_string="vc") == ["vc-basic", "vc-pro"]
    assert await plan_ids(search_by="plan_id", search_string="wb-basic") == ["wb-basic"]
    assert await plan_ids(search_by="status", search_string="S") == ["vc-pro"]
    assert await plan_ids(search_by="base", search_string="UB") == []

    day = timedelta(days=1)
    assert await plan_ids(from_subxn_dt=start + 30 * day) == ["wb-basic", "vc-pro"]
    assert await plan_ids(to_subxn_dt=start + 30 * day) == ["vc-basic", "wb-basic"]
    assert await plan_ids(from_subxn_dt=start + day, to_subxn_dt=start + 59 * day) == ["wb-basic"]
    expiry_of_last = start + 60 * day + 365 * day
    assert await plan_ids(from_expiry_dt=expiry_of_last) == ["vc-pro"]
    assert await plan_ids(to_expiry_dt=expiry_of_last - day) == ["vc-basic", "wb-basic"]

    page = await api.subscriptions.list(
        SubscriptionQuery(page=2, page_length=2, order_by="subsxn_date")
    )
    assert [s.plan_id for s in page.items] == ["vc-pro"]
    assert (page.search["total"], page.search["pages"]) == (3, 2)
    assert page.search["from_subxn_dt"] is None
    walked = [
        s.subscription_id async for s in api.subscriptions.iterate(SubscriptionQuery(page_length=1))
    ]
    assert sorted(walked) == sorted(ids.values())


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from_expiry_dt": "next week"}, 2609),
        ({"search_by": "title", "search_string": "x"}, 2605),
        ({"order_by": "price"}, 2603),
    ],
)
def test_list_query_errors(sandbox: SandboxAdmin, params: dict[str, Any], code: int) -> None:
    response = sandbox.api("GET", "/subscriptions", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == code
