"""`ucaas-sandbox` as a newcomer starts it: defaults printed, curl works, --state persists."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.devtools.processes import free_port
from tests.support.processes import start_sandbox, stop

ADMIN = ("admin@sandbox.test", "sandbox-admin")


def test_starts_with_printed_defaults_and_answers_curl_style_calls() -> None:
    port = free_port()
    process = start_sandbox(port)
    try:
        base = f"http://127.0.0.1:{port}/ucaas/v1"
        login = httpx.post(
            f"{base}/login",
            json={"email": ADMIN[0], "password": ADMIN[1]},
            headers={"X-Api-Id": "sandbox-app"},
        )
        assert login.status_code == 200
        token = login.json()["token"]
        listed = httpx.get(f"{base}/customers", headers={"Authorization": f"Token {token}"})
        assert listed.json()["result"] == 1
        basic = httpx.get(f"{base}/customers", auth=ADMIN)
        assert basic.status_code == 200
    finally:
        output = stop(process)
    assert f"http://127.0.0.1:{port}/ucaas/v1" in output
    assert "sandbox-app" in output
    assert "admin@sandbox.test / sandbox-admin" in output


def test_state_file_keeps_objects_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    port = free_port()
    process = start_sandbox(port, "--state", str(state))
    payload = {
        "customer_name": "Persisted",
        "customer_legal_name": "Persisted Ltd",
        "customer_code": "CRM-P",
        "contact_name": "P",
        "contact_email": "p@persisted.test",
        "office_address": {"address_1": "1 Way", "city": "Oslo", "country": "NO"},
    }
    try:
        created = httpx.post(
            f"http://127.0.0.1:{port}/ucaas/v1/customers", json=payload, auth=ADMIN
        )
        assert created.status_code == 200, created.text
        portal = created.json()["portal_access"]
    finally:
        stop(process)
    assert state.exists()

    process = start_sandbox(port, "--state", str(state))
    try:
        base = f"http://127.0.0.1:{port}/ucaas/v1"
        found = httpx.get(
            f"{base}/customers",
            params={"search_by": "customer_code", "search_string": "CRM-P"},
            auth=ADMIN,
        ).json()["customers"]
        assert [c["customer_name"] for c in found] == ["Persisted"]
        # the portal login made before the restart still works after it
        again = httpx.get(f"{base}/subscriptions", auth=(portal["username"], portal["password"]))
        assert again.status_code == 200
        assert (
            "password_hash"
            not in httpx.get(f"http://127.0.0.1:{port}/_sandbox/state", auth=ADMIN).text
        )
    finally:
        stop(process)
