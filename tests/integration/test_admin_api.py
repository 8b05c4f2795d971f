"""The admin HTTP API over real HTTP: a real AdminServer on a free loopback port, the
service bootstrapped on SQLite against the sandbox, httpx as the operator's client.

Auth on everything but health, the refusal to serve an open API on the network,
readiness naming what is missing, metrics in the Prometheus format, the operator's
actions changing rows, one entity's history, the OpenAPI document, and no secret in any
answer."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from connectors.events.cloudevents import Envelope
from connectors.hr.scim import ENTERPRISE
from sandbox.seed import DEFAULT_ADMIN_PASSWORD
from service.app.bootstrap import Service, bootstrap
from service.app.runner import Parts, Running, serve
from service.devtools import sample_commands as c
from service.entrypoints.admin import AdminServer
from service.entrypoints.admin_host import AdminRefusedError
from service.outbox.tables import OUTBOX, RESULTS
from service.settings import AdminSettings, IntakeSettings, Settings, TenantLogin
from tests.integration.conftest import TEST_SECRET_KEY, service_settings
from tests.support.kafka import envelope as parsed
from tests.support.sandbox_server import SandboxAdmin

TOKEN = "admin-token-5f3b9c0e7d1a"
TENANT_PASSWORD = "tenant-pass-8c2d41"
TENANT = "CRM-API"
_ids = itertools.count(1)

GETS = [
    "/metrics",
    "/openapi.json",
    "/asyncapi.json",
    "/api/status",
    "/api/commands",
    "/api/commands?status=dead&limit=5",
    "/api/dead",
    "/api/dead-letters",
    "/api/history/user:CRM-API:E1",
    "/api/find?q=e1",
    "/api/held",
    "/api/feeds",
    "/api/throughput",
    "/api/calls",
    "/api/failures",
    "/api/audit",
    "/api/audit?actor=admin&limit=5",
]
POSTS = [
    "/api/commands/1/retry",
    "/api/commands/1/drop",
    "/api/held/approve?tenant=nobody",
    "/api/held/deny?tenant=nobody",
]
METRIC_FAMILIES = {
    "ucaas_sync_events",
    "ucaas_sync_dead_letters",
    "ucaas_sync_commands",
    "ucaas_sync_ucaas_calls",
    "ucaas_sync_ucaas_call_seconds",
    "ucaas_sync_feed_polls",
    "ucaas_sync_outbox_depth",
    "ucaas_sync_outbox_oldest_age_seconds",
    "ucaas_sync_consumer_lag",
    "ucaas_sync_consumer_lag_total",
    "ucaas_sync_held_commands",
    "ucaas_sync_dead_commands",
}


@dataclass
class Admin:
    """A running AdminServer and an httpx client that remembers every answer it got."""

    service: Service
    running: Running
    server: AdminServer
    http: httpx.AsyncClient
    seen: list[httpx.Response] = field(default_factory=list)

    async def get(self, path: str, *, token: str | None = TOKEN) -> httpx.Response:
        return await self.call("GET", path, token=token)

    async def post(self, path: str, *, token: str | None = TOKEN, **kw: Any) -> httpx.Response:
        return await self.call("POST", path, token=token, **kw)

    async def call(
        self, method: str, path: str, *, token: str | None = TOKEN, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        answer = await self.http.request(method, path, headers=headers, **kw)
        self.seen.append(answer)
        return answer

    async def outbox(self) -> dict[int, sa.Row[Any]]:
        async with self.service.engine.connect() as conn:
            rows = (await conn.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id))).all()
        return {r.id: r for r in rows}


def settings_for(sandbox: SandboxAdmin, database_url: str, **changes: Any) -> Settings:
    settings = service_settings(database_url, sandbox)
    base: dict[str, Any] = {
        "admin": AdminSettings(host="127.0.0.1", port=0, token=SecretStr(TOKEN)),
        "tenant_logins": {
            "CRM-OTHER": TenantLogin(
                username="ops@other.example", password=SecretStr(TENANT_PASSWORD)
            )
        },
        "intake": IntakeSettings(guard_threshold=0),  # every deprovisioning waits for approval
    }
    return settings.model_copy(update={**base, **changes})


StartAdmin = Callable[..., Awaitable[Admin]]


@pytest.fixture
async def start_admin(sandbox: SandboxAdmin, sqlite_database: str) -> AsyncIterator[StartAdmin]:
    started: list[Admin] = []

    async def start(*, parts: Parts | None = None, **changes: Any) -> Admin:
        service = await bootstrap(settings_for(sandbox, sqlite_database, **changes), migrate=True)
        running = Running(service, parts or Parts(consumers=False, dispatcher=False, poller=False))
        server = AdminServer(running)
        await server.start()
        running.admin = server
        admin = Admin(service, running, server, httpx.AsyncClient(base_url=server.url, timeout=15))
        started.append(admin)
        return admin

    yield start
    for admin in started:
        await admin.http.aclose()
        await admin.server.stop()
        await admin.service.aclose()


@pytest.fixture
async def admin(start_admin: StartAdmin) -> Admin:
    return await start_admin()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- events, as the consumers would hand them over ---------------------------------------------
def envelope(type_: str, subject: str, data: dict[str, Any]) -> Envelope:
    return parsed(type_, subject, data, event_id=f"admin-ev-{next(_ids)}", source="/tests/admin")


def company(crm_id: str) -> Envelope:
    return envelope(
        "crm.company.created",
        crm_id,
        {
            "name": "Acme Robotics",
            "legal_name": "Acme Robotics SAS",
            "contact": {"name": "Paul Martin", "email": "billing@acme.example"},
            "office_address": {"line1": "12 rue de la Paix", "city": "Paris", "country": "FR"},
        },
    )


def purchase(crm_id: str) -> Envelope:
    bought = {
        "purchase_id": "P-1",
        "plan": "vc-basic",
        "app": "vc",
        "seats": 5,
        "start": datetime.now(UTC).date().isoformat(),
    }
    return envelope("crm.subscription.purchased", crm_id, bought)


def employee(kind: str, employee_id: str, tenant: str = TENANT) -> Envelope:
    data = {
        "userName": f"{employee_id.lower()}@{tenant.lower()}.example",
        "name": {"givenName": "Ann", "familyName": f"Lee {employee_id}"},
        ENTERPRISE: {"employeeNumber": employee_id, "department": "Sales"},
        "tenant": tenant,
    }
    return envelope(f"hr.user.{kind}", employee_id, data)


# -- auth --------------------------------------------------------------------------------------
async def test_health_is_open_and_everything_else_needs_the_token(admin: Admin) -> None:
    assert (await admin.get("/healthz", token=None)).json() == {"status": "ok"}
    assert (await admin.get("/readyz", token=None)).status_code == 200
    for method, paths in (("GET", GETS), ("POST", POSTS)):
        for path in paths:
            for token in (None, "wrong-token", TOKEN[:-1]):
                answer = await admin.call(method, path, token=token)
                assert answer.status_code == 401, (method, path, token, answer.text)
                assert answer.headers["www-authenticate"].startswith("Bearer")
                assert "wrong-token" not in answer.text
            answer = await admin.call(method, path)
            assert answer.status_code in (200, 404, 409), (method, path, answer.text)
            if method == "GET":
                assert answer.status_code == 200, (path, answer.text)
    # another scheme with the right value is not a bearer token
    basic = await admin.http.get("/api/status", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    # the page shells hold no data and are open; they say how the token is kept
    page = await admin.get("/", token=None)
    assert page.status_code == 200
    assert 'data-testid="token-prompt"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/chart.js", "/static/style.css", "/docs"):
        assert (await admin.get(asset, token=None)).status_code == 200, asset
    # Swagger UI comes from this server (no CDN: the machines may be offline)
    docs = await admin.get("/docs", token=None)
    assert "cdn." not in docs.text
    for asset in ("/swagger-ui/swagger-ui-bundle.js", "/swagger-ui/swagger-ui.css"):
        answer = await admin.get(asset, token=None)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 10_000, asset


async def test_without_a_token_the_api_is_open_on_loopback_only(
    start_admin: StartAdmin, sandbox: SandboxAdmin, sqlite_database: str
) -> None:
    open_admin = await start_admin(admin=AdminSettings(host="127.0.0.1", port=0, token=None))
    assert (await open_admin.get("/api/status", token=None)).status_code == 200

    for host in ("0.0.0.0", "::", "admin.example"):  # noqa: S104 - the point of the test
        settings = settings_for(
            sandbox, sqlite_database, admin=AdminSettings(host=host, port=0, token=None)
        )
        service = await bootstrap(settings, migrate=True)
        try:
            running = Running(service, Parts(consumers=False, dispatcher=False, poller=False))
            with pytest.raises(AdminRefusedError, match="needs a token"):
                await AdminServer(running).start()
        finally:
            await service.aclose()
    # the runner refuses before starting anything
    service = await bootstrap(
        settings_for(
            sandbox,
            sqlite_database,
            admin=AdminSettings(host="0.0.0.0", port=0, token=None),  # noqa: S104
        ),
        migrate=True,
    )
    with pytest.raises(AdminRefusedError):
        await serve(
            service, Parts(consumers=False, dispatcher=False, poller=False), asyncio.Event()
        )


# -- health ------------------------------------------------------------------------------------
async def test_readyz_names_what_is_missing(
    start_admin: StartAdmin, admin: Admin, sandbox: SandboxAdmin
) -> None:
    ready = await admin.get("/readyz", token=None)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] is True
    assert {k: v["ok"] for k, v in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "ucaas": True,
    }
    assert "skipped" in body["checks"]["broker"]  # no consumers in this process

    nowhere = await start_admin(ucaas_base_url=f"http://127.0.0.1:{closed_port()}/ucaas/v1")
    answer = await nowhere.get("/readyz", token=None)
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["ucaas"]["ok"] is False
    assert checks["ucaas"]["error"]  # says what went wrong

    # the consumers part runs here but has not joined its group: the broker is named
    consuming = await start_admin(parts=Parts(consumers=True, dispatcher=False, poller=False))
    answer = await consuming.get("/readyz", token=None)
    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"] == {
        "ok": False,
        "error": "the consumers have not joined the group yet",
    }
    consuming.running.consumer_started.set()
    assert (await consuming.get("/readyz", token=None)).status_code == 200


async def test_metrics_parse_and_carry_the_outbox(admin: Admin, sandbox: SandboxAdmin) -> None:
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    await admin.service.uow.accept(
        c.event(), [c.create_customer("CRM-M1"), c.create_customer("CRM-M2")]
    )
    await admin.service.uow.accept(c.event(), [c.create_customer("CRM-M3")])
    await admin.service.dispatcher.run_until_idle()
    sandbox.faults(error_rate=0.0)

    answer = await admin.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert set(families) >= METRIC_FAMILIES, METRIC_FAMILIES - set(families)
    depth = {s.labels["status"]: s.value for s in families["ucaas_sync_outbox_depth"].samples}
    assert depth["dead"] == 3
    assert depth["pending"] == 0
    [dead] = families["ucaas_sync_dead_commands"].samples
    assert dead.value == 3


# -- the operator's actions --------------------------------------------------------------------
async def test_retry_and_drop_change_the_rows(admin: Admin, sandbox: SandboxAdmin) -> None:
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    batch = [
        c.create_customer("CRM-R1"),
        c.update_customer("CRM-R1", customer_name="New"),
        c.create_customer("CRM-R2"),
    ]
    await admin.service.uow.accept(c.event(), batch)
    await admin.service.dispatcher.run_until_idle()
    sandbox.faults(error_rate=0.0)
    rows = await admin.outbox()
    first, follower, second = sorted(rows)
    assert (rows[first].status, rows[follower].status, rows[second].status) == (
        "dead",
        "held",
        "dead",
    )

    dead = (await admin.get("/api/dead")).json()
    assert {d["id"] for d in dead} == {first, second}
    assert all("HTTP 403" in d["last_error"] for d in dead)
    failures = (await admin.get("/api/failures")).json()
    assert {f["what"] for f in failures} == {"command"}
    assert any("HTTP 403" in f["reason"] for f in failures)

    answer = await admin.post(f"/api/commands/{first}/retry")
    assert answer.json() == {"id": first, "status": "pending"}
    rows = await admin.outbox()
    assert (rows[first].status, rows[first].attempts) == ("pending", 0)
    # no longer blocked by it: queued behind it until it is done
    assert (rows[follower].status, rows[follower].hold_reason) == (
        "held",
        f"queued behind #{first}",
    )
    assert (await admin.post(f"/api/commands/{first}/retry")).status_code == 409  # not dead now

    assert (await admin.post(f"/api/commands/{second}/drop")).json()["status"] == "dropped"
    assert (await admin.outbox())[second].status == "dropped"
    assert (await admin.post(f"/api/commands/{second}/drop")).status_code == 409
    assert (await admin.post("/api/commands/99999/retry")).status_code == 404  # no such id

    await admin.service.dispatcher.run_until_idle()
    statuses = {i: r.status for i, r in (await admin.outbox()).items()}
    assert statuses == {first: "done", follower: "done", second: "dropped"}
    listed = (await admin.get("/api/commands?status=done")).json()
    assert [x["id"] for x in listed] == [follower, first]  # newest first


async def test_approve_and_deny_release_held_deprovisioning(admin: Admin) -> None:
    taken = await admin.service.intake.take(
        [employee("joined", "E1"), employee("joined", "E2"), employee("joined", "E3", "CRM-B")]
    )
    assert {t.outcome for t in taken} == {"accepted"}
    await admin.service.intake.take([employee("left", "E1"), employee("left", "E2")])
    await admin.service.intake.take([employee("left", "E3", "CRM-B")])
    held = (await admin.get("/api/held")).json()
    assert held and {h["status"] for h in held} == {"held"}
    assert all(h["hold_reason"].startswith("approval: ") for h in held)
    of_e1 = [h["id"] for h in held if h["entity"] == f"user:{TENANT}:E1"]

    # none, or more than one, of command_id, tenant and feed: refused
    assert (await admin.post("/api/held/approve")).status_code == 422
    assert (
        await admin.post("/api/held/approve", json={"command_id": 1, "tenant": "x"})
    ).status_code == 422
    assert (await admin.post("/api/held/deny?tenant=x&feed=y")).status_code == 422
    # a feed, a tenant or a command nobody knows: 404, not the `changed: 0` of success
    for unknown in ("feed=team-cal", "tenant=NOBODY", "command_id=999999"):
        answer = await admin.post(f"/api/held/approve?{unknown}")
        assert answer.status_code == 404, (unknown, answer.text)
        assert answer.json()["detail"].startswith("no ")
    # a known tenant with nothing held: nothing changed, and that is no error
    assert (await admin.post("/api/held/deny?tenant=CRM-B&feed=")).status_code == 422

    denied = await admin.post("/api/held/deny", json={"command_id": of_e1[0]})
    assert denied.json() == {"changed": 1}
    approved = await admin.post(f"/api/held/approve?tenant={TENANT}")
    assert approved.json() == {"changed": len([h for h in held if h["tenant"] == TENANT]) - 1}
    rows = await admin.outbox()
    assert rows[of_e1[0]].status == "dropped"
    assert {
        rows[h["id"]].status for h in held if h["tenant"] == TENANT and h["id"] != of_e1[0]
    } == {"pending"}
    left = [h["id"] for h in (await admin.get("/api/held")).json()]
    assert left and all(rows[i].tenant == "CRM-B" for i in left)
    assert (await admin.post("/api/held/approve", json={"tenant": "CRM-B"})).json() == {
        "changed": len(left)
    }
    assert (await admin.get("/api/held")).json() == []


async def test_history_lists_an_entitys_events_commands_and_calls(admin: Admin) -> None:
    await admin.service.intake.take([company(TENANT), purchase(TENANT), employee("joined", "E1")])
    await admin.service.dispatcher.run_until_idle()
    entity = f"user:{TENANT}:E1"
    story = (await admin.get(f"/api/history/{entity}")).json()
    assert story["entity"] == entity
    assert [e["type"] for e in story["events"]] == ["hr.user.joined"]
    assert [(x["kind"], x["status"]) for x in story["commands"]] == [
        ("create_user", "done"),
        ("assign_licence", "done"),
    ]
    routes = [(x["method"], x["route"], x["status"]) for x in story["calls"]]
    assert ("POST", "/users", 201) in routes or ("POST", "/users", 200) in routes, routes
    assert any(m["kind"].startswith("user") and m["external_id"] == "E1" for m in story["mappings"])
    # an unknown entity has an empty story, not an error
    empty = (await admin.get("/api/history/user:NOPE:X")).json()
    assert (empty["events"], empty["commands"], empty["calls"]) == ([], [], [])

    status = (await admin.get("/api/status")).json()
    assert status["outbox"] == {"done": 4}  # customer, subscription, user, licence
    assert status["events"] == {"accepted": 3}
    calls = (await admin.get("/api/calls")).json()["by_status"]
    assert sum(calls.values()) >= 4
    buckets = (await admin.get("/api/throughput?minutes=5")).json()
    assert len(buckets) == 6
    assert sum(b["events"] for b in buckets) == 3
    assert sum(b["commands_done"] for b in buckets) == 4


async def test_find_then_the_story_with_its_result_events(admin: Admin) -> None:
    await admin.service.intake.take([company(TENANT), purchase(TENANT), employee("joined", "E1")])
    await admin.service.dispatcher.run_until_idle()
    entity = f"user:{TENANT}:E1"
    for query in ("e1@crm-api.example", "E1@CRM-API.EXAMPLE", "e1", "e1@"):
        matches = (await admin.get(f"/api/find?q={query}")).json()
        assert [(m["entity"], m["kind"]) for m in matches] == [(entity, "person")], query
        assert "e1@crm-api.example" in matches[0]["label"]
    companies = (await admin.get("/api/find?q=acme%20robot")).json()
    assert [m["entity"] for m in companies] == [f"customer:{TENANT}", f"subscriptions:{TENANT}"]
    assert (await admin.get("/api/find?q=nobody-at-all")).json() == []
    # the input checks of the other endpoints: no NUL, a length limit, a query at all
    for bad in ("/api/find?q=a%00b", f"/api/find?q={'x' * 201}", "/api/find?q=", "/api/find"):
        answer = await admin.get(bad)
        assert answer.status_code == 422, (bad, answer.text)

    # the result events the dispatcher wrote with the outcomes (no relay runs here)
    story = (await admin.get(f"/api/history/{entity}")).json()
    results = {r["type"]: r for r in story["results"]}
    assert set(results) == {"ucaas.user.provisioned", "ucaas.user.licence_assigned"}
    provisioned = results["ucaas.user.provisioned"]
    assert provisioned["published"] is False
    assert provisioned["data"]["email"] == "e1@crm-api.example"
    assert provisioned["data"]["ucaas_user_id"]
    assert results["ucaas.user.licence_assigned"]["data"]["licences"] == ["vc"]
    async with admin.service.engine.connect() as conn:
        written = await conn.scalar(sa.select(sa.func.count()).select_from(RESULTS))
    status = (await admin.get("/api/status")).json()
    assert status["results"]["unpublished"] == written == 4  # customer, purchase, user, licence
    assert status["results"]["published_last_hour"] == 0
    assert status["results"]["oldest_unpublished_age_s"] >= 0


async def test_openapi_lists_the_routes_with_the_bearer_scheme(admin: Admin) -> None:
    document = (await admin.get("/openapi.json")).json()
    paths = set(document["paths"])
    assert {
        "/healthz",
        "/readyz",
        "/metrics",
        "/asyncapi.json",
        "/api/status",
        "/api/commands",
        "/api/dead",
        "/api/commands/{command_id}/retry",
        "/api/commands/{command_id}/drop",
        "/api/dead-letters",
        "/api/history/{entity}",
        "/api/held",
        "/api/held/approve",
        "/api/held/deny",
        "/api/feeds",
        "/api/throughput",
        "/api/failures",
        "/api/audit",
    } <= paths, paths
    assert document["components"]["securitySchemes"]["token"]["scheme"].lower() == "bearer"
    assert "security" in document["paths"]["/api/status"]["get"]
    assert "security" not in document["paths"]["/healthz"]["get"]
    asyncapi = (await admin.get("/asyncapi.json")).json()
    assert asyncapi["asyncapi"].startswith(("2.", "3."))


# -- secrets -----------------------------------------------------------------------------------
async def test_no_secret_in_any_answer(admin: Admin, sandbox: SandboxAdmin) -> None:
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    await admin.service.uow.accept(c.event(), [c.create_customer("CRM-DEAD")])
    await admin.service.dispatcher.run_until_idle()
    sandbox.faults(error_rate=0.0)
    await admin.service.intake.take([company(TENANT), purchase(TENANT), employee("joined", "E1")])
    await admin.service.dispatcher.run_until_idle()
    assert (await admin.service.store.counts()) == {"dead": 1, "done": 4}
    for path in [*GETS, "/readyz", "/healthz", "/", "/docs", "/api/history/customer:CRM-API"]:
        await admin.get(path)
    for path in POSTS:
        await admin.post(path)
    for token in (None, "wrong"):
        await admin.get("/api/status", token=token)
    assert len(admin.seen) > 20
    secrets = {
        "token": TOKEN,
        "admin password": DEFAULT_ADMIN_PASSWORD,
        "tenant password": TENANT_PASSWORD,
        "secret key": TEST_SECRET_KEY,
    }
    for answer in admin.seen:
        shown = answer.text + "".join(f"{k}: {v}\n" for k, v in answer.headers.items())
        for name, secret in secrets.items():
            assert secret not in shown, f"{name} in {answer.request.url}"
