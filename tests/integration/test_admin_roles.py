"""The admin API's roles and audit log, and the answers schemathesis found wrong, over real
HTTP (a real AdminServer on a loopback port, the service on SQLite, the sandbox).

Roles: a reader's token reads and is refused (403, audited) every action; an operator's
acts, and the audit log names it. The gate answers before the body is read: no token is
a 401 whatever the body, a body over 1 MB a 413. Ids are 1..2^63-1 and strict; a tenant
is not empty, and one nobody knows is a 404. Every error is JSON of the documented shape.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from service.app.bootstrap import bootstrap
from service.cli.reconcile import audited_repair as audited
from service.devtools import sample_commands as c
from service.outbox import audit
from service.outbox.audit import Actor
from service.outbox.tables import AUDIT
from service.settings import AdminSettings, AdminToken
from tests.integration.conftest import service_settings
from tests.integration.test_admin_api import (
    TOKEN,
    Admin,
    StartAdmin,
    employee,
    start_admin,  # noqa: F401 - the fixture
)
from tests.support.sandbox_server import SandboxAdmin

READ_TOKEN = "reader-token-0c8e21f4b7"
ANN_TOKEN = "ann-operator-token-77a1d3"
BOB_TOKEN = "bob-reader-token-4e90c2"
MAX_ID = 2**63 - 1
ROLES = AdminSettings(
    host="127.0.0.1",
    port=0,
    token=SecretStr(TOKEN),
    read_token=SecretStr(READ_TOKEN),
    tokens={
        "ann": AdminToken(token=SecretStr(ANN_TOKEN), role="operator"),
        "bob": AdminToken(token=SecretStr(BOB_TOKEN), role="reader"),
    },
)


@pytest.fixture
async def roles(start_admin: StartAdmin) -> Admin:  # noqa: F811 - the fixture above
    return await start_admin(admin=ROLES)


async def dead_commands(admin: Admin, sandbox: SandboxAdmin, *crm_ids: str) -> list[int]:
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    await admin.service.uow.accept(c.event(), [c.create_customer(crm) for crm in crm_ids])
    await admin.service.dispatcher.run_until_idle()
    sandbox.faults(error_rate=0.0)
    return sorted(d["id"] for d in (await admin.get("/api/dead")).json())


async def audit_rows(admin: Admin) -> list[dict[str, Any]]:
    async with admin.service.engine.connect() as conn:
        rows = (await conn.execute(sa.select(AUDIT).order_by(AUDIT.c.id))).all()
    return [dict(r._mapping) for r in rows]


def is_problem(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json", answer.headers
    assert isinstance(answer.json()["detail"], str), answer.text


def is_validation_error(answer: httpx.Response) -> None:
    """The 422 of the OpenAPI document: `detail` is a list of {loc, msg, type}."""
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/json"
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail, answer.text
    assert all({"loc", "msg", "type"} <= set(d) for d in detail), detail


# -- roles ---------------------------------------------------------------------------------------
async def test_a_reader_reads_and_an_operator_acts(roles: Admin, sandbox: SandboxAdmin) -> None:
    first, second, third = await dead_commands(roles, sandbox, "CRM-A", "CRM-B", "CRM-C")
    for token in (READ_TOKEN, BOB_TOKEN, ANN_TOKEN, TOKEN):
        for path in (
            "/api/status",
            "/api/dead",
            "/api/audit",
            "/audit",
            "/metrics",
            "/api/find?q=a",
        ):
            assert (await roles.get(path, token=token)).status_code == 200, (token, path)

    # a reader's token on every action: 403, nothing changes, the refusal is audited
    for token in (READ_TOKEN, BOB_TOKEN):
        for path in (
            f"/api/commands/{first}/retry",
            f"/api/commands/{first}/drop",
            "/api/held/approve?tenant=CRM-A",
            "/api/held/deny?tenant=CRM-A",
        ):
            is_problem(await roles.post(path, token=token), 403)
    assert (await roles.outbox())[first].status == "dead"

    # an operator's: done, and the audit log names the token
    assert (await roles.post(f"/api/commands/{first}/retry", token=ANN_TOKEN)).status_code == 200
    assert (await roles.post(f"/api/commands/{second}/drop", token=TOKEN)).status_code == 200
    is_problem(await roles.post(f"/api/commands/{second}/drop", token=ANN_TOKEN), 409)
    is_problem(await roles.post("/api/commands/424242/retry", token=ANN_TOKEN), 404)
    assert (await roles.outbox())[third].status == "dead"

    shown = (await roles.get("/api/audit", token=BOB_TOKEN)).json()
    assert [(e["actor"], e["role"], e["action"], e["target"], e["result"]) for e in shown[:4]] == [
        ("ann", "operator", "retry", "command 424242", "not_found"),
        ("ann", "operator", "drop", f"command {second}", "conflict"),
        ("admin", "operator", "drop", f"command {second}", "ok"),
        ("ann", "operator", "retry", f"command {first}", "ok"),
    ]
    refusals = [e for e in shown if e["result"] == "refused"]
    assert len(refusals) == 8
    assert {e["actor"] for e in refusals} == {"reader", "bob"}
    assert {e["action"] for e in refusals} == {"retry", "drop", "approve", "deny"}
    assert all(e["role"] == "reader" for e in refusals)
    # filtered by actor, by time, and bounded
    by_ann = (await roles.get("/api/audit?actor=ann")).json()
    assert {e["actor"] for e in by_ann} == {"ann"} and len(by_ann) == 3
    assert len((await roles.get("/api/audit?limit=2")).json()) == 2
    later = (await roles.call("GET", "/api/audit", params={"since": "2999-01-01T00:00:00Z"})).json()
    assert later == []

    # no secret in any audit row
    rows = await audit_rows(roles)
    assert len(rows) == len(shown)
    text = repr(rows)
    for secret in (TOKEN, READ_TOKEN, ANN_TOKEN, BOB_TOKEN):
        assert secret not in text


async def test_approve_and_deny_are_audited_with_their_result(
    roles: Admin,
) -> None:
    await roles.service.intake.take([employee("joined", "E1"), employee("joined", "E2")])
    await roles.service.intake.take([employee("left", "E1"), employee("left", "E2")])
    held = (await roles.get("/api/held")).json()
    assert len(held) >= 2
    one = held[0]["id"]
    denied = await roles.post("/api/held/deny", json={"command_id": one}, token=ANN_TOKEN)
    assert denied.json() == {"changed": 1}
    approved = await roles.post("/api/held/approve", json={"tenant": "CRM-API"})
    assert approved.json() == {"changed": len(held) - 1}
    again = await roles.post("/api/held/approve", json={"tenant": "CRM-API"})
    assert again.json() == {"changed": 0}  # a known tenant with nothing held: no error
    is_problem(await roles.post("/api/held/approve", json={"tenant": "NOBODY"}), 404)
    shown = (await roles.get("/api/audit")).json()
    assert [(e["actor"], e["action"], e["target"], e["result"], e["detail"]) for e in shown] == [
        ("admin", "approve", "tenant NOBODY", "not_found", "changed 0"),
        ("admin", "approve", "tenant CRM-API", "ok", "changed 0"),
        ("admin", "approve", "tenant CRM-API", "ok", f"changed {len(held) - 1}"),
        ("ann", "deny", f"command {one}", "ok", "changed 1"),
    ]


async def test_an_open_loopback_api_audits_anonymous(
    start_admin: StartAdmin,  # noqa: F811 - the fixture above
    sandbox: SandboxAdmin,
) -> None:
    open_admin = await start_admin(admin=AdminSettings(host="127.0.0.1", port=0))
    [dead] = await dead_commands(open_admin, sandbox, "CRM-OPEN")
    assert (await open_admin.post(f"/api/commands/{dead}/drop", token=None)).status_code == 200
    [entry] = (await open_admin.get("/api/audit", token=None)).json()
    assert (entry["actor"], entry["role"], entry["action"]) == ("anonymous", "operator", "drop")


# -- what schemathesis found -----------------------------------------------------------------------
async def test_ids_out_of_range_or_not_integers_are_422(roles: Admin) -> None:
    for bad in (MAX_ID + 1, 2**64, 0, -1):
        for action in ("retry", "drop"):
            is_validation_error(await roles.post(f"/api/commands/{bad}/{action}"))
        for action in ("approve", "deny"):
            is_validation_error(await roles.post(f"/api/held/{action}?command_id={bad}"))
            is_validation_error(await roles.post(f"/api/held/{action}", json={"command_id": bad}))
    is_problem(await roles.post(f"/api/commands/{MAX_ID}/retry"), 404)  # the largest: fine
    # strict: true is not command 1, "1" is not 1, 1.0 is not 1
    for value in (True, "1", 1.5):
        is_validation_error(await roles.post("/api/held/approve", json={"command_id": value}))
    # none or two of command_id, tenant, feed: the same list shape as every other 422
    is_validation_error(await roles.post("/api/held/approve"))
    is_validation_error(await roles.post("/api/held/deny", json={"tenant": "A", "feed": "B"}))
    is_validation_error(await roles.post("/api/held/deny", json={"tenants": "A"}))  # misspelt
    # an empty tenant or feed is no name; an unknown one is a 404, not "changed: 0"
    is_validation_error(await roles.post("/api/held/approve?tenant="))
    is_validation_error(await roles.post("/api/held/approve", json={"tenant": ""}))
    is_validation_error(await roles.post("/api/held/deny?feed="))
    is_problem(await roles.post("/api/held/approve?tenant=NOBODY"), 404)
    is_problem(await roles.post("/api/held/deny", json={"feed": "no-such-feed"}), 404)
    is_validation_error(await roles.post("/api/held/approve", content=b"{not json"))
    # a NUL in a name: PostgreSQL's text cannot hold one (asyncpg raised: a 500)
    for path in (
        "/api/audit?actor=a%00b",
        "/api/commands?status=dead%00",
        "/api/commands?entity=%00",
        "/api/dead-letters?topic=hr%00",
        "/api/history/user:A%00:E1",
    ):
        is_validation_error(await roles.get(path))
    is_validation_error(await roles.post("/api/held/deny?tenant=CRM%00"))
    is_validation_error(await roles.post("/api/held/deny", json={"feed": "f\u0000"}))


async def test_the_token_is_checked_before_the_body_is_read(roles: Admin) -> None:
    # bad JSON without a token: 401, not a parse error
    for token in (None, "wrong"):
        answer = await roles.post("/api/held/approve", token=token, content=b"{not json")
        is_problem(answer, 401)
        assert answer.headers["www-authenticate"].startswith("Bearer")
    # a reader's bad JSON on an action: 403, not a parse error
    is_problem(await roles.post("/api/held/approve", token=READ_TOKEN, content=b"{"), 403)

    big = b"x" * (60 * 1024 * 1024)
    started = time.monotonic()
    is_problem(await roles.post("/api/held/approve", token=None, content=big), 401)
    is_problem(await roles.post("/api/held/approve", content=big), 413)  # said by the length
    assert time.monotonic() - started < 20

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut while reading
        for _ in range(3):
            yield b" " * (512 * 1024)

    answer = await roles.http.post(
        "/api/held/approve", headers={"Authorization": f"Bearer {TOKEN}"}, content=chunks()
    )
    is_problem(answer, 413)
    # just under the cap is read and judged
    small = b" " * 1000 + b'{"tenant": "NOBODY"}'
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    is_problem(await roles.http.post("/api/held/approve", headers=headers, content=small), 404)


async def test_the_openapi_document_lists_every_error_with_its_schema(roles: Admin) -> None:
    document = (await roles.get("/openapi.json")).json()
    assert "Problem" in document["components"]["schemas"]
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            codes = operation["responses"]
            if path in ("/healthz", "/readyz"):
                assert "401" not in codes
                continue
            for code in ("400", "401", "413"):
                assert codes[code]["content"]["application/json"]["schema"] == problem, (
                    path,
                    method,
                    code,
                )
            if method == "post":
                for code in ("403", "404", "422"):
                    assert code in codes, (path, code)
                assert codes["403"]["content"]["application/json"]["schema"] == problem
            if "422" in codes:
                schema = codes["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/HTTPValidationError"}


async def test_actions_and_their_audit_on_both_databases(
    database_url: str, sandbox: SandboxAdmin
) -> None:
    """The same outcomes and rows on SQLite and PostgreSQL, ids at the edge included
    (outbox.id is an INTEGER there: a larger id must be "not found", not a driver error)."""
    service = await bootstrap(service_settings(database_url, sandbox), migrate=True)
    try:
        operator = service.store.operator
        await service.uow.accept(c.event(), [c.create_customer("CRM-DB")])
        ann = Actor("ann", "operator")
        for big in (2**31, MAX_ID):
            assert await operator.retry(big, ann) == "not_found"
        assert await operator.retry(1, ann) == "conflict"  # pending, not dead
        assert await operator.drop(1, ann) == "ok"
        assert await operator.approve(tenant="NOBODY", actor=ann) == (0, "not_found")
        assert await operator.deny(command_id=2**40, actor=ann) == (0, "not_found")
        shown = await audit.entries(service.engine, actor="ann")
        assert [(e.action, e.target, e.result) for e in shown] == [
            ("deny", f"command {2**40}", "not_found"),
            ("approve", "tenant NOBODY", "not_found"),
            ("drop", "command 1", "ok"),
            ("retry", "command 1", "conflict"),
            ("retry", f"command {MAX_ID}", "not_found"),
            ("retry", f"command {2**31}", "not_found"),
        ]
        assert await audit.entries(service.engine, actor="nobody") == []
    finally:
        await service.aclose()


async def test_a_repair_is_audited_once_with_its_outcome(
    sqlite_database: str, sandbox: SandboxAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reconcile --repair` queues in many transactions: one row after it, ok, refused
    (`refused: ...` in its summary) or failed (and the error goes on)."""
    monkeypatch.setenv("USER", "ops-rick")
    monkeypatch.setenv("LOGNAME", "ops-rick")
    service = await bootstrap(service_settings(sqlite_database, sandbox), migrate=True)
    try:
        async with audited(service.engine, "reconcile all tenants") as note:
            note.append("2 drifts, 2 queued")
        async with audited(service.engine, "hr snapshot people.json") as note:
            note.append("refused: the snapshot is empty")
        with pytest.raises(RuntimeError, match="UCaaS away"):
            async with audited(service.engine, "reconcile tenant CRM-1"):
                raise RuntimeError("UCaaS away")
        shown = await audit.entries(service.engine)
        assert [(e.actor, e.action, e.target, e.result, e.detail) for e in shown] == [
            ("cli:ops-rick", "repair", "reconcile tenant CRM-1", "failed", "RuntimeError"),
            (
                "cli:ops-rick",
                "repair",
                "hr snapshot people.json",
                "refused",
                "refused: the snapshot is empty",
            ),
            ("cli:ops-rick", "repair", "reconcile all tenants", "ok", "2 drifts, 2 queued"),
        ]
    finally:
        await service.aclose()
