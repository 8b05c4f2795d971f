"""Test set-up through raw API calls (documented payloads, no client code involved)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sandbox import datapool
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


def today(sandbox: SandboxAdmin) -> str:
    """Sandbox's date (it may be shifted with /_sandbox/clock)."""
    return str(sandbox.state()["today"])


def new_subscription(
    sandbox: SandboxAdmin, customer_id: str, plan_id: str = "vc-basic", seats: int = 10
) -> dict[str, Any]:
    response = sandbox.api(
        "POST",
        "/subscriptions",
        {
            "customer_id": customer_id,
            "plan_id": plan_id,
            "room_type": "standard",
            "subscription": {"no_of_license": seats, "subsxn_date": today(sandbox)},
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["subscription"]  # type: ignore[no-any-return]


def new_user(sandbox: SandboxAdmin, auth: tuple[str, str], **overrides: Any) -> dict[str, Any]:
    """Create a user (user_type AP) as `auth` (a customer admin's portal login)."""
    n = next(_seq)
    payload: dict[str, Any] = {
        "user_type": "AP",
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
        "email": f"user{n}@example.test",
        "password": f"pass-{n}-word",
    }
    payload.update(overrides)
    response = sandbox.api("POST", "/users", payload, auth=auth)
    assert response.status_code == 200, response.text
    return {**response.json()["user"], "email": payload["email"], "password": payload["password"]}


def assign(
    sandbox: SandboxAdmin, auth: tuple[str, str], user_id: str, subscription: dict[str, Any]
) -> dict[str, Any]:
    app = "vc" if subscription["plan_id"].startswith("vc") else "wb"
    response = sandbox.api(
        "PATCH",
        f"/users/{user_id}",
        {"app": app, "subscription_id": subscription["subscription_id"]},
        auth=auth,
        headers={"X-License": "assign"},
    )
    assert response.status_code == 200, response.text
    return response.json()["user"]["access"]  # type: ignore[no-any-return]


def licensed_user(sandbox: SandboxAdmin, plan_id: str = "vc-basic") -> dict[str, Any]:
    """A customer with a subscription and one user holding its licence.

    Returns {"customer": ..., "auth": (portal user, password), "subscription": ...,
    "user": {user_id, name, email, password}, "access": {app, url, ppin, mpin, room_id}}.
    """
    created = new_customer(sandbox)
    customer_id = created["customer"]["customer_id"]
    auth = portal_auth(created)
    subscription = new_subscription(sandbox, customer_id, plan_id)
    user = new_user(sandbox, auth)
    access = assign(sandbox, auth, user["user_id"], subscription)
    return {
        "customer": created["customer"],
        "auth": auth,
        "subscription": subscription,
        "user": user,
        "access": access,
    }


def app_user(sandbox: SandboxAdmin) -> dict[str, Any]:
    """A new customer's AP user (no licence needed for contacts): {user_id, email, password,
    auth: (email, password)}."""
    user = new_user(sandbox, portal_auth(new_customer(sandbox)))
    return {**user, "auth": (user["email"], user["password"])}


def contact_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    payload: dict[str, Any] = {
        "name": f"Contact {n}",
        "email": f"contact{n}@partner.test",
        "company": f"Partner {n} Inc",
        "designation": "Buyer",
    }
    payload.update(overrides)
    return payload


def new_contact(sandbox: SandboxAdmin, auth: tuple[str, str], **overrides: Any) -> dict[str, Any]:
    """Add a contact as `auth`; returns {contact_id, name}."""
    response = sandbox.api("POST", "/contacts", contact_payload(**overrides), auth=auth)
    assert response.status_code == 200, response.text
    return response.json()["contact"]  # type: ignore[no-any-return]


def new_group(sandbox: SandboxAdmin, auth: tuple[str, str], group_name: str) -> dict[str, Any]:
    """Add a contact group as `auth`; returns {group_id, group_name}."""
    response = sandbox.api("POST", "/contact-groups", {"group_name": group_name}, auth=auth)
    assert response.status_code == 200, response.text
    return response.json()["group"]  # type: ignore[no-any-return]


def join(
    sandbox: SandboxAdmin, pin: str, name: str = "Guest", user_ref: str = "guest"
) -> dict[str, Any]:
    """Join a session by PIN (a public route); returns the API's answer."""
    body = {"pin": pin, "name": name, "user_ref": user_ref}
    response = sandbox.api("POST", "/sessions/join", body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# -- meetings -------------------------------------------------------------------------


def sandbox_now(sandbox: SandboxAdmin) -> datetime:
    """Sandbox time (UTC, aware); it moves with /_sandbox/clock."""
    return datetime.fromisoformat(sandbox.state()["now"])


PARIS = datapool.timezone_id("Europe/Paris")


def meeting_payload(start: datetime, **overrides: Any) -> dict[str, Any]:
    """A valid schedule body starting at `start` (UTC); a None override drops the key."""
    payload: dict[str, Any] = {
        "room_name": f"Meeting {next(_seq)}",
        "desc": "Weekly review",
        "start_time": start.strftime("%Y-%m-%d %H:%M:%S"),
        "timezone_id": PARIS,
        "duration": 30,
        "moderators": 1,
        "participants": 5,
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def schedule_meeting(
    sandbox: SandboxAdmin,
    auth: tuple[str, str],
    *,
    in_minutes: int = 60,
    app: str = "vc",
    **overrides: Any,
) -> dict[str, Any]:
    """Schedule a meeting as `auth`, `in_minutes` from sandbox now; returns the meeting."""
    start = sandbox_now(sandbox) + timedelta(minutes=in_minutes)
    response = sandbox.api(
        "POST",
        "/meetings",
        meeting_payload(start, **overrides),
        auth=auth,
        headers={"X-App-Type": app},
    )
    assert response.status_code == 200, response.text
    return response.json()["meeting"]  # type: ignore[no-any-return]


def user_auth(licensed: dict[str, Any]) -> tuple[str, str]:
    """The (email, password) of a `licensed_user`'s user."""
    return licensed["user"]["email"], licensed["user"]["password"]
