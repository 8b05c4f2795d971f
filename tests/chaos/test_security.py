"""Security of a running `ucaas-sync run` process that did real work, failures included.

- The admin API answers 401 without a token, with a wrong one and with another scheme, on
  every route of its own OpenAPI document (a new route is covered by itself) and on the
  document; /healthz, /readyz and the page shells answer without one.
- No secret (the admin token, a configured tenant password, the platform password, the
  tenant passwords captured from create_customer, the Fernet key) appears, raw, base64 or
  URL-encoded, in the process's log, any admin API answer, the CLI's status / dead list /
  history / config output, or the error messages kept in the database; the sandbox
  answered 503 and 403 at random, and a tenant's configured login is refused (401).
- Feed URLs at internal addresses, in every spelling, are refused with a reason, and the
  canary server on loopback they point at receives no request; a public-looking URL that
  redirects inward is refused at the redirect (in-process, as loopback must pass for one).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from connectors.calendar import fetch
from connectors.calendar.fetch import FeedError, FeedFetcher, FetchLimits
from service.devtools.local_broker import Topics
from service.devtools.service_processes import MOVING, Outbox
from tests.support.bad_records import company, event, purchase, scim
from tests.support.databases import sqlite_url
from tests.support.kafka import EventProducer
from tests.support.sandbox_server import ADMIN_AUTH, SandboxAdmin
from tests.support.service_processes import TEST_SECRET_KEY, Processes, dispatch_env, ucaas_sync

pytestmark = pytest.mark.chaos

TOKEN = "adm1n-T0ken-9f3c2a7e51d84b"
TENANT_LOGIN = ("ops@crm-sec-2.example", "Tenant-Passw0rd-5be81c")
ADMIN_URL = re.compile(r"admin API on (http://127\.0\.0\.1:\d+)")
OPEN = {"/healthz", "/readyz", "/", "/docs"}
USERS = 8
INTERNAL = [  # {port}: the canary's
    "http://127.0.0.1:{port}/feed.ics",
    "http://localhost:{port}/feed.ics",
    "http://2130706433:{port}/feed.ics",  # 127.0.0.1 in decimal
    "http://0177.0.0.1:{port}/feed.ics",  # in octal
    "http://0x7f.1:{port}/feed.ics",
    "http://127.1:{port}/feed.ics",
    "http://[::1]:{port}/feed.ics",
    "http://[::ffff:127.0.0.1]:{port}/feed.ics",
    "http://[64:ff9b::7f00:1]:{port}/feed.ics",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::1]:{port}/feed.ics",  # 6to4 of 127.0.0.1
    "webcal://127.0.0.1:{port}/feed.ics",
    "http://10.1.2.3/feed.ics",
    "http://172.16.0.1/feed.ics",
    "http://192.168.1.1/feed.ics",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fc00::1]/feed.ics",
    "http://[fe80::1]/feed.ics",
    "http://0.0.0.0:{port}/feed.ics",
]


class Canary:
    """An HTTP server on loopback that counts every request it gets."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                target = self.path.partition("?to=")[2]
                self.send_response(302 if target else 200)
                if target:
                    self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.http.server_port
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    yield server
    server.close()


# -- what may not leak ---------------------------------------------------------------------
def forms(secret: str, user: str | None = None) -> set[str]:
    """A secret as it could leak: raw, base64, URL-encoded, in a Basic credential."""
    found = {secret, quote(secret, safe=""), quote_plus(secret)}
    found.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    if user is not None:
        found.add(base64.b64encode(f"{user}:{secret}".encode()).decode().rstrip("="))
    return found


def captured_passwords(database: str) -> list[tuple[str, str]]:
    """(username, password) of the tenant logins the service keeps, decrypted."""
    vault = Fernet(TEST_SECRET_KEY.encode())
    engine = sa.create_engine(database.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT username, secret FROM tenant_credential")).all()
    engine.dispose()
    return [(str(u), vault.decrypt(str(s).encode()).decode()) for u, s in rows]


def error_texts(database: str) -> str:
    """Every error message the database keeps: commands, calls, dead letters, feeds."""
    engine = sa.create_engine(database.replace("+aiosqlite", ""))
    queries = [
        "SELECT last_error, hold_reason FROM outbox",
        "SELECT * FROM call_log",
        "SELECT reason FROM dead_letter",
        "SELECT last_error FROM calendar_feed",
    ]
    texts = []
    with engine.connect() as conn:
        for query in queries:
            texts += [json.dumps(list(row), default=str) for row in conn.execute(sa.text(query))]
    engine.dispose()
    return "\n".join(texts)


# -- the admin API -------------------------------------------------------------------------
def cli_output(env: dict[str, str], cwd: Path, *args: str) -> str:
    """What a command printed on both streams: secrets are looked for in either."""
    done = ucaas_sync(env, cwd, *args)
    return done.stdout + done.stderr


def routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation, path and required query parameters filled in."""
    filled = []
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{command_id\}", "1", path)
        concrete = re.sub(r"\{[^}]+\}", "customer:CRM-SEC-1", concrete)
        for method, operation in operations.items():
            # a required query parameter (/api/find's q) is given: a search that finds
            # the tenant, whose answer is grepped for secrets too
            required = [
                p["name"]
                for p in operation.get("parameters", [])
                if p.get("in") == "query" and p.get("required")
            ]
            query = "&".join(f"{name}=CRM-SEC" for name in required)
            filled.append((method.upper(), f"{concrete}?{query}" if query else concrete))
    return filled


async def check_admin_api(url: str) -> tuple[int, list[str]]:
    """401 everywhere but the open routes; the answers with the token, to grep."""
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        document = (await http.get("/openapi.json", headers=bearer(TOKEN))).json()
        guarded = [*routes(document), ("GET", "/openapi.json")]
        assert len(guarded) >= 15, guarded
        refused = 0
        for method, path in guarded:
            if path in OPEN:
                continue
            for headers in (
                {},
                bearer("wrong-token"),
                bearer(TOKEN[:-1]),
                {"Authorization": f"Basic {base64.b64encode(TOKEN.encode()).decode()}"},
                {"Authorization": f"Token {TOKEN}"},
                {"Authorization": TOKEN},
            ):
                answer = await http.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path, headers, answer.status_code)
                assert TOKEN not in answer.text
                refused += 1
        for path in OPEN:
            assert (await http.get(path)).status_code != 401, path
        bodies = []
        for method, path in guarded:
            if method == "GET":
                answer = await http.get(path, headers=bearer(TOKEN))
                assert answer.status_code in (200, 404), (path, answer.status_code)
                bodies.append(answer.text)
    return refused, bodies


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the run -------------------------------------------------------------------------------
async def publish(kafka: str, topics: Topics, canary: Canary) -> None:
    async with EventProducer(kafka) as producer:
        for crm_id in ("CRM-SEC-1", "CRM-SEC-2"):
            await producer.event(
                topics.crm, event("crm.company.created", crm_id, company(crm_id, crm_id))
            )
            purchased = event("crm.subscription.purchased", crm_id, purchase(crm_id, 50))
            await producer.event(topics.crm, purchased)
            for n in range(USERS):
                employee = f"{crm_id}-E{n}"
                joined = event("hr.user.joined", employee, scim(employee, crm_id))
                await producer.event(topics.hr, joined)
        for n, url in enumerate(INTERNAL):
            data = {
                "feed_id": f"internal-{n}",
                "url": url.format(port=canary.port),
                "organizer_email": "crm-sec-1-e0@crm-sec-1.example",
                "tenant": "CRM-SEC-1",
            }
            await producer.event(
                topics.calendar, event("calendar.feed.registered", f"internal-{n}", data)
            )


def scalar(outbox: Outbox, query: str) -> int:
    with outbox.engine.connect() as conn:
        return int(conn.scalar(sa.text(query)) or 0)


async def test_no_token_no_secrets_no_internal_fetches(
    sandbox: SandboxAdmin, kafka: str, processes: Processes, canary: Canary, tmp_path: Path
) -> None:
    database = sqlite_url(tmp_path)
    topics = Topics.fresh("security")
    await topics.create(kafka, partitions=2)
    env = dispatch_env(database, sandbox.base_url, lease_s=2.0, max_attempts=4)
    env.update(topics.env())
    login = {"CRM-SEC-2": {"username": TENANT_LOGIN[0], "password": TENANT_LOGIN[1]}}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        UCAAS_SYNC_KAFKA_SESSION_TIMEOUT_MS="6000",
        UCAAS_SYNC_ADMIN_TOKEN=TOKEN,
        UCAAS_SYNC_TENANT_LOGINS=json.dumps(login),  # not a sandbox user: 401 on its calls
        UCAAS_SYNC_LOG_LEVEL="DEBUG",  # the most the log can say
    )
    run = processes.start("security", env, ("run",))
    run.wait_started()
    sandbox.faults(error_rate=0.3, error_status=503)
    began = time.monotonic()
    await publish(kafka, topics, canary)
    outbox = Outbox(database)
    try:
        await asyncio.sleep(2)
        # Refusals on users only: a refused create_customer would leave its tenant's
        # commands waiting for a customer that never comes (a person's call), and the
        # run would not settle.
        sandbox.faults(error_rate=0.2, error_status=403, only=["POST /users"])
        await asyncio.sleep(2)
        sandbox.faults(error_rate=0.0)
        expected_inbox = 2 * (2 + USERS) + len(INTERNAL)
        while True:
            taken = scalar(outbox, "SELECT count(*) FROM inbox WHERE type NOT LIKE '%polled'")
            failed = scalar(outbox, "SELECT count(*) FROM calendar_feed WHERE failures > 0")
            counts = outbox.counts()
            if (
                taken >= expected_inbox
                and failed >= len(INTERNAL)
                and not any(counts.get(s) for s in MOVING)
            ):
                break
            assert run.returncode is None, run.tail()
            assert time.monotonic() - began < 90, (taken, failed, counts, run.tail())
            await asyncio.sleep(0.3)
    finally:
        outbox.close()
    url_match = ADMIN_URL.search(run.log.read_text(errors="replace"))
    assert url_match, run.tail()
    refused, bodies = await check_admin_api(url_match.group(1))

    # Feeds: refused with a reason, nothing fetched.
    engine = sa.create_engine(database.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        feeds = dict(conn.execute(sa.text("SELECT feed_id, last_error FROM calendar_feed")).all())
    engine.dispose()
    for n, url in enumerate(INTERNAL):
        reason = feeds[f"internal-{n}"] or ""
        # The octal 0177.0.0.1 never gets as far: httpx refuses it as an invalid address
        # before any lookup (the connection is made to checked addresses only).
        refusals = ("private or reserved address", "cannot resolve", "not a valid URL")
        assert any(r in reason for r in refusals), (url, reason)
    assert canary.requests == [], canary.requests

    # Secrets: nowhere.
    passwords = captured_passwords(database)
    assert passwords, "no tenant login was captured from create_customer"
    secrets = {
        "admin token": forms(TOKEN),
        "configured tenant password": forms(TENANT_LOGIN[1], TENANT_LOGIN[0]),
        "platform password": forms(ADMIN_AUTH[1], ADMIN_AUTH[0]),
        "secret key": forms(TEST_SECRET_KEY),
    }
    for user, password in passwords:
        secrets[f"captured password of {user}"] = forms(password, user)
    outputs = {
        "log": run.log.read_text(errors="replace"),
        "admin API": "\n".join(bodies),
        "errors in the database": error_texts(database),
    }
    for args in (
        ("status",),
        ("status", "--json"),
        ("dead", "list"),
        ("dead", "list", "--json"),
        ("history", "customer:CRM-SEC-1"),
        ("history", "user:CRM-SEC-2:CRM-SEC-2-E0"),
        ("config",),
    ):
        outputs["ucaas-sync " + " ".join(args)] = await asyncio.to_thread(
            cli_output, env, tmp_path, *args
        )
    for where, text in outputs.items():
        for name, spellings in secrets.items():
            for spelling in spellings:
                assert spelling not in text, f"the {name} is in the {where} ({spelling[:4]}...)"
    # The refused tenant login ran and was logged, so the log searched above holds it: the
    # login's 401 (the client's call line, logged at DEBUG) and the command parked for it.
    logged = log_events(outputs["log"])
    refused_logins = {
        e.get("entity")
        for e in logged
        if e.get("logger") == "ucaas_sync.ucaas"
        and str(e.get("event")).startswith("ucaas POST /login -> 401 ")
    }
    assert refused_logins, "no refused login in the log"
    assert all(str(entity).startswith("user:CRM-SEC-2:") for entity in refused_logins)
    parked_for_401 = {
        e.get("entity")
        for e in logged
        if e.get("logger") == "ucaas_sync.dispatcher"
        and " parked: 4010 POST /login: HTTP 401 " in str(e.get("event"))
    }
    assert parked_for_401 and parked_for_401 <= refused_logins, (parked_for_401, refused_logins)
    dead = scalar_dead(database)
    assert run.stop() == 0, run.tail()
    print(
        f"\n{refused} unauthorised requests answered 401 "
        f"({len(bodies)} GET routes read with the token); "
        f"{sum(len(s) for s in secrets.values())} spellings of {len(secrets)} secrets "
        f"(incl. {len(passwords)} captured) absent from {len(outputs)} outputs "
        f"({sum(len(t) for t in outputs.values()):,} characters); {dead} dead commands; "
        f"{len(INTERNAL)} internal feed URLs refused, canary requests: 0; "
        f"{len(refused_logins)} refused tenant logins logged, {len(parked_for_401)} parked"
    )


def log_events(text: str) -> list[dict[str, Any]]:
    """The JSON log's lines, parsed (anything else on the stream is passed over)."""
    found = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                found.append(event)
    return found


def scalar_dead(database: str) -> int:
    engine = sa.create_engine(database.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        found = int(conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE status='dead'")) or 0)
    engine.dispose()
    return found


# -- redirects, in-process -----------------------------------------------------------------
@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch, canary: Canary) -> None:
    """127.0.0.1 (the redirector) stands for a public host; the rest of loopback stays
    internal, so the canary on 127.0.0.2 is the internal target."""
    real = fetch.forbidden
    monkeypatch.setattr(fetch, "forbidden", lambda a: a != "127.0.0.1" and real(a))


@pytest.mark.usefixtures("loopback_is_public")
async def test_a_redirect_from_a_public_looking_url_to_an_internal_one_is_refused(
    canary: Canary,
) -> None:
    inner = Canary("127.0.0.2")
    fetcher = FeedFetcher(FetchLimits(timeout_s=5))
    try:
        for target in (
            f"http://127.0.0.2:{inner.port}/feed.ics",
            f"http://2130706434:{inner.port}/feed.ics",  # 127.0.0.2 in decimal
            f"http://[::ffff:127.0.0.2]:{inner.port}/feed.ics",
            "http://169.254.169.254/latest/meta-data/",
        ):
            with pytest.raises(FeedError) as caught:
                await fetcher.fetch(f"http://127.0.0.1:{canary.port}/r?to={target}")
            assert "private or reserved address" in caught.value.reason, target
    finally:
        await fetcher.aclose()
        with contextlib.suppress(OSError):
            inner.close()
    assert inner.requests == []
    assert len(canary.requests) == 4  # the public-looking hop, once per target
    print("\n4 redirects to internal addresses refused at the redirect; canary requests: 0")
