"""Test set-up through raw API calls (documented payloads, no client code involved)."""

from __future__ import annotations

import itertools
from typing import Any

from tests.support.sandbox_server import SandboxAdmin

_seq = itertools.count(1)


def customer_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    payload: dict[str, Any] = {
        "customer_name": f"Company {n}",
        "customer_legal_name": f"Company {n} Ltd",
        "customer_code": f"CRM-{n:05d}",
        "contact_name": f"Contact {n}",
        "contact_email": f"contact{n}@company{n}.test",
        "office_address": {"address_1": f"{n} Main Street", "city": "Lyon", "country": "FR"},
    }
    payload.update(overrides)
    return payload


def new_customer(sandbox: SandboxAdmin, **overrides: Any) -> dict[str, Any]:
    """Create a customer as the tenant admin; returns the API's answer (with portal_access)."""
    response = sandbox.api("POST", "/customers", customer_payload(**overrides))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def portal_auth(created: dict[str, Any]) -> tuple[str, str]:
    access = created["portal_access"]
    return access["username"], access["password"]
