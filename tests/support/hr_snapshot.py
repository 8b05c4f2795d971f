"""HR snapshots for the reconcile tests: SCIM enterprise users shaped as RFC 7643 section
8.2 shows them, in a ListResponse shaped as RFC 7644 section 3.4.2 shows it; and staff
provisioned the way production does it, hr.user.joined events through the intake, then
dispatched."""

from __future__ import annotations

import uuid
from typing import Any

from connectors.hr.scim import CORE, ENTERPRISE
from connectors.hr.snapshot import LIST_RESPONSE
from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from tests.support.kafka import envelope


def enterprise_user(
    employee: str,
    *,
    email: str | None = None,
    active: bool = True,
    tenant: str | None = None,
    given: str = "Barbara",
    family: str | None = None,
    department: str = "Tour Operations",
) -> dict[str, Any]:
    """A full enterprise user as RFC 7643 section 8.2 has it (with its extra attributes,
    which the sync ignores), and our contract's `tenant` when given."""
    email = email or f"{employee.lower()}@example.com"
    user: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE],
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, employee)),
        "externalId": employee,
        "userName": email,
        "name": {
            "formatted": f"Ms. {given} J {family or employee}, III",
            "familyName": family or employee,
            "givenName": given,
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III",
        },
        "displayName": f"{given} {family or employee}",
        "nickName": "Babs",
        "profileUrl": f"https://login.example.com/{employee}",
        "emails": [
            {"value": email, "type": "work", "primary": True},
            {"value": f"home-{employee.lower()}@jensen.org", "type": "home"},
        ],
        "addresses": [
            {
                "type": "work",
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
                "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                "primary": True,
            }
        ],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": active,
        ENTERPRISE: {
            "employeeNumber": employee,
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": department,
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                "displayName": "John Smith",
            },
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": 'W/"3694e05e9dff591"',
            "location": f"https://example.com/v2/Users/{employee}",
        },
    }
    if tenant is not None:
        user["tenant"] = tenant
    return user


def list_response(
    resources: list[Any], *, total: int | None = None, **paging: int
) -> dict[str, Any]:
    """RFC 7644 section 3.4.2: totalResults (all the query matched) and this page's
    Resources; `paging` adds startIndex / itemsPerPage."""
    document: dict[str, Any] = {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources) if total is None else total,
        **paging,
        "Resources": resources,
    }
    return document


async def settle(service: Service) -> None:
    """Dispatch until nothing is left to run (held commands stay held)."""
    for _ in range(20):
        await service.dispatcher.run_until_idle()
        if set(await service.store.counts()) <= {"done", "held"}:
            return
    raise AssertionError(await service.store.counts())


async def provision(service: Service, tenant: str, staff: tuple[str, ...]) -> None:
    """A customer with a subscription, and each of `staff` joined through the intake (a
    UCaaS user with a vc licence), all dispatched."""
    assert await service.uow.accept(
        c.event(), [c.create_customer(tenant), c.create_subscription(tenant)]
    )
    joined = [envelope("hr.user.joined", e, enterprise_user(e, tenant=tenant)) for e in staff]
    taken = await service.intake.take(joined)
    assert [t.outcome for t in taken] == ["accepted"] * len(staff)
    await settle(service)
    assert await service.store.counts() == {"done": 2 + 2 * len(staff)}
