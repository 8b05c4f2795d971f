"""HR and CRM CloudEvents through a real Kafka-protocol broker, the service and the
sandbox: what the operator sees in /_sandbox/state and /_sandbox/calls.

Each test has topics, a consumer group and a database of its own (SQLite; PostgreSQL
where a test says so, skipped where none answers). Most run the service in this process,
configured only by the environment an operator would set (the consumer's counters are at
hand then); the restart test runs `ucaas-sync run` processes and SIGKILLs one while
events flow, and the guard test releases held commands with `ucaas-sync approve`.
Exactly once shows in the sandbox's call counters: `POST /users`, licence assigns and
revokes, customers and subscriptions; each test prints the counts it compared.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from connectors.hr.scim import CORE, ENTERPRISE
from service.app.bootstrap import Service, bootstrap
from service.devtools.local_broker import Topics
from service.devtools.service_processes import MOVING, DispatchProcess, Outbox
from service.entrypoints.consumers import EventConsumer
from service.outbox import db
from service.settings import Settings
from service.views import Operations
from tests.support.databases import fresh_postgres, migrated_database, sqlite_url
from tests.support.kafka import (
    EventProducer,
    Sent,
    cloudevent,
    group_lag,
    group_offsets,
    read_topic,
    rewind,
)
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import Processes, TenantInSandbox, dispatch_env, ucaas_sync

TENANT = "CRM-1001"
USER_POST = "POST /users"
ASSIGN = "PATCH /users/{user_id} [X-License: assign]"
REVOKE = "PATCH /users/{user_id} [X-License: revoke]"


# -- events ------------------------------------------------------------------------------------
def company(crm_id: str = TENANT, name: str = "Acme Robotics") -> dict[str, Any]:
    return {
        "company_id": crm_id,
        "name": name,
        "legal_name": f"{name} SAS",
        "contact": {"name": "Paul Martin", "email": "billing@acme.example"},
        "office_address": {
            "line1": "12 rue de la Paix",
            "city": "Paris",
            "postal_code": "75002",
            "country": "FR",
        },
    }


def purchase(purchase_id: str, *, app: str = "vc", seats: int = 10) -> dict[str, Any]:
    return {
        "purchase_id": purchase_id,
        "plan": f"{app}-basic",
        "app": app,
        "seats": seats,
        "start": datetime.now(UTC).date().isoformat(),
    }


def email_of(employee: str, tenant: str = TENANT) -> str:
    return f"{employee.lower()}@{tenant.lower()}.example"


def scim_user(
    employee: str, *, tenant: str = TENANT, department: str = "Engineering", title: str = "Engineer"
) -> dict[str, Any]:
    """A SCIM 2.0 User (core + enterprise extension) plus the contract's `tenant`."""
    email = email_of(employee, tenant)
    return {
        "schemas": [CORE, ENTERPRISE],
        "externalId": employee,
        "userName": email,
        "name": {"givenName": "Ann", "familyName": f"Lee {employee}"},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
        "title": title,
        ENTERPRISE: {"employeeNumber": employee, "department": department},
        "tenant": tenant,
    }


def hr(kind: str, employee: str, **user: Any) -> dict[str, Any]:
    return cloudevent(f"hr.user.{kind}", employee, scim_user(employee, **user))


def crm(kind: str, crm_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return cloudevent(kind, crm_id, data)


# -- the sandbox, seen by a test ---------------------------------------------------------------
def tenant_view(sandbox: SandboxAdmin, tenant: str = TENANT) -> TenantInSandbox:
    return TenantInSandbox.of(sandbox.state(), tenant)


def users_by_email(view: TenantInSandbox) -> dict[str, dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    for user in view.users:
        assert user["email"] not in users, f"two UCaaS users for {user['email']}"
        users[user["email"]] = user
    return users


def apps_of(user: dict[str, Any]) -> set[str]:
    return {app for app, licence in (user.get("apps") or {}).items() if licence.get("access")}


def calls(sandbox: SandboxAdmin) -> Counter[str]:
    return Counter(sandbox.calls()["calls"])


# -- waiting on the database -------------------------------------------------------------------
def progress(outbox: Outbox) -> tuple[int, dict[str, int]]:
    """(inbox rows, outbox rows by status)."""
    with outbox.engine.connect() as conn:
        taken = int(conn.scalar(sa.text("SELECT count(*) FROM inbox")) or 0)
    return taken, outbox.counts()


async def settle(
    outbox: Outbox,
    inbox: int,
    *,
    timeout_s: float = 30.0,
    processes: tuple[DispatchProcess, ...] = (),
) -> dict[str, int]:
    """Until `inbox` events are taken and no command is pending, in flight or waiting."""
    deadline = time.monotonic() + timeout_s
    taken, counts = 0, dict[str, int]()
    while time.monotonic() < deadline:
        taken, counts = await asyncio.to_thread(progress, outbox)
        if taken >= inbox and not any(counts.get(s) for s in MOVING):
            assert taken == inbox, f"{taken} events in the inbox, {inbox} sent"
            return counts
        for process in processes:
            assert process.returncode is None, process.tail()
        await asyncio.sleep(0.1)
    tails = "\n".join(p.tail() for p in processes)
    raise AssertionError(
        f"not settled in {timeout_s} s: {taken}/{inbox} events taken, outbox {counts}, "
        f"not done: {outbox.stuck()}\n{tails}"
    )


# -- the service's environment -----------------------------------------------------------------
def service_env(
    database_url: str, sandbox: SandboxAdmin, kafka: str, topics: Topics, **extra: str
) -> dict[str, str]:
    """What an operator sets: database, UCaaS, broker, topics; fast dispatch for tests."""
    env = dispatch_env(database_url, sandbox.base_url, lease_s=2.0)
    env.update(topics.env())
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        UCAAS_SYNC_KAFKA_SESSION_TIMEOUT_MS="6000",  # Tansu's least: a dead member goes soon
        **extra,
    )
    return env


@dataclass
class InProcess:
    """The service in this process: consumers and dispatcher, as `ucaas-sync run` wires them."""

    service: Service
    consumer: EventConsumer
    dispatching: asyncio.Task[None]
    topics: Topics
    outbox: Outbox
    producer: EventProducer
    env: dict[str, str]
    inbox: int = 0  # events that should be in the inbox by now

    async def send(
        self, topic: str, event: dict[str, Any], *, mode: str = "structured", new: bool = True
    ) -> Sent:
        """Publish an event; `new`: one more inbox row is due (not for a repeated id)."""
        sent = await self.producer.event(topic, event, mode=mode)
        self.inbox += new
        return sent

    async def settle(self, timeout_s: float = 30.0) -> dict[str, int]:
        return await settle(self.outbox, self.inbox, timeout_s=timeout_s)

    async def onboard(self, *apps: str, tenant: str = TENANT, seats: int = 10) -> None:
        """The tenant's customer and one subscription per app, as the CRM announces them."""
        await self.send(self.topics.crm, crm("crm.company.created", tenant, company(tenant)))
        for app in apps:
            bought = purchase(f"P-{app}", app=app, seats=seats)
            await self.send(self.topics.crm, crm("crm.subscription.purchased", tenant, bought))

    async def stop(self) -> None:
        try:
            await self.consumer.stop()
            await self.service.dispatcher.stop()
            await self.dispatching
        finally:
            await self.producer.stop()
            await self.service.aclose()
            self.outbox.close()


Start = Callable[..., Awaitable[InProcess]]


@pytest.fixture
async def start_service(
    tmp_path: Path, sandbox: SandboxAdmin, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Start]:
    """Start the service in-process on fresh topics and a fresh database (SQLite, or
    PostgreSQL with `postgres=True`, skipped where none answers); `extra` environment
    variables (UCAAS_SYNC_INTAKE_*, say) as an operator would set them."""
    started: list[InProcess] = []
    databases = ExitStack()

    async def start(label: str, *, postgres: bool = False, **extra: str) -> InProcess:
        if postgres:
            database = databases.enter_context(fresh_postgres())
            await asyncio.to_thread(db.upgrade, database)
        else:
            database = sqlite_url(tmp_path)
        topics = Topics.fresh(label)
        await topics.create(kafka)
        env = service_env(database, sandbox, kafka, topics, **extra)
        for name in list(os.environ):
            if name.startswith("UCAAS_SYNC_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            if name.startswith(("UCAAS_SYNC_", "KAFKA_")):
                monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        service = await bootstrap(Settings())
        consumer = service.consumer()
        producer = await EventProducer(kafka).start()
        began = time.monotonic()
        await consumer.start()
        print(f"\n[{label}] consumer group joined in {time.monotonic() - began:.1f} s")
        running = InProcess(
            service,
            consumer,
            asyncio.create_task(service.dispatcher.run()),
            topics,
            Outbox(env["UCAAS_SYNC_DATABASE_URL"]),
            producer,
            env,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()
    databases.close()


# -- CRM ---------------------------------------------------------------------------------------
async def test_a_company_becomes_a_customer_and_its_purchases_subscriptions(
    start_service: Start, sandbox: SandboxAdmin
) -> None:
    run = await start_service("crm")
    # The purchase comes before its company (CRMs do that): it waits for the customer.
    await run.send(
        run.topics.crm, crm("crm.subscription.purchased", TENANT, purchase("P-1", seats=7))
    )
    await run.send(run.topics.crm, crm("crm.company.created", TENANT, company()))
    wb = purchase("P-2", app="wb", seats=3)
    await run.send(run.topics.crm, crm("crm.subscription.purchased", TENANT, wb))
    counts = await run.settle()

    assert counts == {"done": 3}
    view = tenant_view(sandbox)
    assert len(view.customers) == 1
    customer = view.customers[0]
    assert customer["customer_code"] == TENANT
    assert customer["customer_name"] == "Acme Robotics"
    assert customer["customer_legal_name"] == "Acme Robotics SAS"
    assert customer["contact_email"] == "billing@acme.example"
    seats = {s["plan_id"]: (s["app"], s["qty"]) for s in view.subscriptions}
    assert seats == {"vc-basic": ("vc", 7), "wb-basic": ("wb", 3)}
    made = calls(sandbox)
    assert (made["POST /customers"], made["POST /subscriptions"]) == (1, 2)
    print(
        f"compared: 1 customer (code {customer['customer_code']}), subscriptions {seats}; "
        f"calls POST /customers={made['POST /customers']} "
        f"POST /subscriptions={made['POST /subscriptions']}"
    )


# -- HR ----------------------------------------------------------------------------------------
async def test_an_employees_life_hire_leave_return_left_rehire(
    start_service: Start, sandbox: SandboxAdmin
) -> None:
    run = await start_service("lifecycle")
    await run.onboard("vc")
    email = email_of("E1")

    async def step(kind: str) -> dict[str, Any]:
        await run.send(run.topics.hr, hr(kind, "E1"))
        await run.settle()
        return users_by_email(tenant_view(sandbox))[email]

    hired = await step("joined")
    assert (hired["status"], apps_of(hired)) == ("A", {"vc"})  # the default policy: vc
    on_leave = await step("leave_started")
    assert (on_leave["status"], apps_of(on_leave)) == ("S", {"vc"})
    back = await step("leave_ended")
    assert (back["status"], apps_of(back)) == ("A", {"vc"})
    left = await step("left")
    assert (left["status"], apps_of(left)) == ("S", set())
    assert left["apps"]["vc"]["status"] == "R"
    assert tenant_view(sandbox).subscriptions[0]["seats_used"] == 0
    rehired = await step("joined")
    assert rehired["user_id"] == hired["user_id"], "a rehire made a new UCaaS user"
    assert (rehired["status"], apps_of(rehired)) == ("A", {"vc"})
    view = tenant_view(sandbox)
    assert len(view.users) == 1
    assert view.subscriptions[0]["seats_used"] == 1

    made = calls(sandbox)
    assert (made[USER_POST], made[ASSIGN], made[REVOKE]) == (1, 2, 1)
    assert run.consumer.stats.outcomes == Counter(accepted=7)
    print(
        f"compared: user {hired['user_id']} through A, S, A, S (revoked), A; "
        f"calls POST /users={made[USER_POST]} assign={made[ASSIGN]} revoke={made[REVOKE]}"
    )


async def test_a_licence_policy_gives_a_department_both_licences(
    start_service: Start, sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    policy = tmp_path / "licences.toml"
    policy.write_text(
        'default_apps = ["vc"]\n\n[[rules]]\ndepartment = "Sales"\napps = ["vc", "wb"]\n'
    )
    run = await start_service("policy", UCAAS_SYNC_INTAKE_LICENCE_POLICY=str(policy))
    await run.onboard("vc", "wb")
    await run.send(run.topics.hr, hr("joined", "E1", department="Sales", title="Account Executive"))
    await run.send(run.topics.hr, hr("joined", "E2", department="Engineering"))
    await run.settle()

    users = users_by_email(tenant_view(sandbox))
    assert apps_of(users[email_of("E1")]) == {"vc", "wb"}
    assert apps_of(users[email_of("E2")]) == {"vc"}
    used = {s["app"]: s["seats_used"] for s in tenant_view(sandbox).subscriptions}
    assert used == {"vc": 2, "wb": 1}
    made = calls(sandbox)
    assert (made[USER_POST], made[ASSIGN]) == (2, 3)
    print(f"compared: Sales vc+wb, Engineering vc; seats used {used}; assign calls {made[ASSIGN]}")


async def test_the_same_event_twice_and_the_same_content_again_call_once(
    start_service: Start, sandbox: SandboxAdmin
) -> None:
    run = await start_service("duplicates")
    await run.onboard("vc")
    joined = hr("joined", "E1")
    await run.send(run.topics.hr, joined)
    await run.send(run.topics.hr, joined, new=False)  # the same id: a redelivery
    again = {**joined, "id": "another-id"}  # the same content under a new id
    await run.send(run.topics.hr, again)
    # and the CRM's own repeats
    await run.send(run.topics.crm, crm("crm.company.created", TENANT, company()))
    purchased = crm("crm.subscription.purchased", TENANT, purchase("P-vc"))
    await run.send(run.topics.crm, purchased)
    counts = await run.settle()

    assert counts == {"done": 4}  # customer, subscription, user, licence
    made = calls(sandbox)
    assert (made[USER_POST], made[ASSIGN]) == (1, 1)
    assert (made["POST /customers"], made["POST /subscriptions"]) == (1, 1)
    assert len(tenant_view(sandbox).users) == 1
    outcomes = run.consumer.stats.outcomes
    assert outcomes == Counter(accepted=6, duplicate=1), outcomes
    print(
        f"compared: 7 records (1 same id, 3 same content) -> {dict(outcomes)}; calls "
        f"POST /users={made[USER_POST]} assign={made[ASSIGN]} "
        f"POST /customers={made['POST /customers']} "
        f"POST /subscriptions={made['POST /subscriptions']}"
    )


async def test_binary_mode_cloudevents_are_taken(
    start_service: Start, sandbox: SandboxAdmin
) -> None:
    run = await start_service("binary")
    await run.send(run.topics.crm, crm("crm.company.created", TENANT, company()), mode="binary")
    purchased = crm("crm.subscription.purchased", TENANT, purchase("P-vc"))
    await run.send(run.topics.crm, purchased, mode="binary")
    await run.send(run.topics.hr, hr("joined", "E1"), mode="binary")
    await run.send(run.topics.hr, hr("joined", "E2"))  # structured, beside binary ones
    await run.send(run.topics.hr, hr("leave_started", "E1"), mode="binary")
    await run.settle()

    users = users_by_email(tenant_view(sandbox))
    assert (users[email_of("E1")]["status"], apps_of(users[email_of("E1")])) == ("S", {"vc"})
    assert (users[email_of("E2")]["status"], apps_of(users[email_of("E2")])) == ("A", {"vc"})
    assert tenant_view(sandbox).customers[0]["customer_code"] == TENANT
    assert run.consumer.stats.outcomes == Counter(accepted=5)
    print(f"compared: 4 binary + 1 structured events -> {dict(run.consumer.stats.outcomes)}")


# -- the dead-letter topic ---------------------------------------------------------------------
async def test_unusable_records_go_to_the_dead_letter_topic_and_the_rest_take_effect(
    start_service: Start, sandbox: SandboxAdmin, kafka: str
) -> None:
    run = await start_service("dlq")
    topic = run.topics.hr
    await run.onboard("vc")
    no_user_name = scim_user("E1")
    del no_user_name["userName"]
    bad_email = scim_user("E1")
    bad_email["emails"] = [{"value": "not-an-address", "primary": True}]
    await run.send(topic, hr("joined", "E1"))
    # Keyed like E1's events: in its partition, between its valid events.
    bad: dict[str, tuple[str, Sent]] = {}
    raw = run.producer.raw
    bad["not json"] = ("not_json", await raw(topic, b"{not json", key=b"E1"))
    bad["a JSON array"] = ("not_cloudevent", await raw(topic, b"[1, 2]", key=b"E1"))
    bad["no specversion"] = (
        "not_cloudevent",
        await raw(topic, b'{"id": "x", "source": "/s", "type": "hr.user.joined"}', key=b"E1"),
    )
    unknown = cloudevent("hr.user.promoted", "E1", scim_user("E1"))
    bad["unknown type"] = ("unknown_type", await run.send(topic, unknown, new=False))
    invalid = cloudevent("hr.user.joined", "E1", no_user_name)
    bad["SCIM without userName"] = ("invalid_data", await run.send(topic, invalid, new=False))
    invalid = cloudevent("hr.user.updated", "E1", bad_email)
    bad["SCIM with a bad e-mail"] = ("invalid_data", await run.send(topic, invalid, new=False))
    no_id = {k: v for k, v in hr("joined", "E1").items() if k != "id"}
    bad["no id"] = ("not_cloudevent", await run.send(topic, no_id, new=False))
    old_version = {**hr("joined", "E1"), "specversion": "0.3"}
    bad["binary, CloudEvents 0.3"] = (
        "not_cloudevent",
        await run.send(topic, old_version, mode="binary", new=False),
    )
    await run.send(topic, hr("joined", "E2"))
    await run.send(topic, hr("leave_started", "E1"))
    # And one on the CRM topic: a new company without its contact and address.
    partial = {"company_id": "CRM-2", "name": "Half Co"}
    crm_bad = await run.send(
        run.topics.crm, crm("crm.company.created", "CRM-2", partial), new=False
    )
    await run.settle()

    letters = await read_topic(kafka, topic + ".dlq", expect=len(bad))
    assert len(letters) == len(bad), [r.headers for r in letters]
    by_offset = {(r.partition, int(r.headers["dlq.offset"])): r for r in letters}
    for what, (error, sent) in bad.items():
        letter = by_offset.get((sent.partition, sent.offset))
        assert letter is not None, f"{what} is not in the dead-letter topic"
        assert letter.value == sent.value, what  # the original value, untouched
        assert letter.key == b"E1", what
        headers = letter.headers
        assert headers["dlq.error"] == error, (what, headers)
        assert headers["dlq.reason"], what
        assert headers["dlq.topic"] == topic, what
        assert headers["dlq.partition"] == str(sent.partition), what
        assert datetime.fromisoformat(headers["dlq.at"]).tzinfo is not None
        assert sent.headers.items() <= headers.items(), what  # its own headers kept
    (crm_letter,) = await read_topic(kafka, run.topics.crm + ".dlq", expect=1)
    assert crm_letter.value == crm_bad.value
    assert crm_letter.headers["dlq.error"] == "invalid_data"
    assert crm_letter.headers["dlq.offset"] == str(crm_bad.offset)

    users = users_by_email(tenant_view(sandbox))
    assert (users[email_of("E1")]["status"], apps_of(users[email_of("E1")])) == ("S", {"vc"})
    assert (users[email_of("E2")]["status"], apps_of(users[email_of("E2")])) == ("A", {"vc"})
    stats = run.consumer.stats
    records = 5 + len(bad) + 1
    for _ in range(50):  # counted just after the dead letters are out
        if stats.records >= records:
            break
        await asyncio.sleep(0.1)
    assert stats.outcomes == Counter(accepted=5, invalid=len(bad) + 1)
    assert stats.dead_letters == Counter(
        not_json=1, not_cloudevent=4, unknown_type=1, invalid_data=3
    )
    assert stats.failures == 0
    # The operator's view: one row per dead letter, with the reason; the lag drains to 0.
    ops = Operations(run.service.engine, run.service.store, run.service.settings)
    rows = {(d.topic, d.partition, d.offset): d for d in await ops.dead_letters()}
    for what, (error, sent) in bad.items():
        assert rows[(topic, sent.partition, sent.offset)].error == error, what
    assert rows[(run.topics.crm, crm_bad.partition, crm_bad.offset)].error == "invalid_data"
    status = await ops.status()
    assert status.dead_letters == {topic: len(bad), run.topics.crm: 1}
    for _ in range(50):  # offsets are committed just after the batch is taken
        if status.consumer_lag is not None and not any(status.consumer_lag.values()):
            break
        await asyncio.sleep(0.2)
        ops._lag = None
        status = await ops.status()
    assert status.consumer_lag is not None, status.lag_error
    assert {t for t, _ in status.consumer_lag} == set(run.service.settings.kafka.topics)
    assert sum(status.consumer_lag.values()) == 0, status.consumer_lag
    print(
        f"compared: {len(bad)} + 1 dead letters {dict(stats.dead_letters)} with their "
        f"headers and values; valid events around them: {dict(stats.outcomes)}"
    )


async def test_a_record_postgresql_would_refuse_is_dead_lettered_not_retried_for_ever(
    start_service: Start, sandbox: SandboxAdmin, kafka: str
) -> None:
    """PostgreSQL refuses a NUL character in text. An event id with one is valid JSON; it
    is dead-lettered as not a usable CloudEvent, and the events around it still go in.
    (Data the database refuses all the same is taken record by record: a unit test.)"""
    run = await start_service("refused", postgres=True)
    await run.onboard("vc")
    await run.send(run.topics.hr, hr("joined", "E1"))
    refused = await run.send(run.topics.hr, {**hr("joined", "E2"), "id": "E2\u0000"}, new=False)
    await run.send(run.topics.hr, hr("joined", "E3"))
    await run.settle(timeout_s=20)

    (letter,) = await read_topic(kafka, run.topics.hr + ".dlq", expect=1)
    assert (letter.partition, letter.headers["dlq.offset"]) == (
        refused.partition,
        str(refused.offset),
    )
    assert letter.value == refused.value
    assert letter.headers["dlq.error"] == "not_cloudevent", letter.headers
    assert letter.headers["dlq.reason"] == "id holds control characters"
    users = users_by_email(tenant_view(sandbox))
    assert set(users) == {email_of("E1"), email_of("E3")}
    assert run.consumer.stats.failures == 0
    print(
        f"compared: the record in the dead-letter topic "
        f"({letter.headers['dlq.reason']!r}); E1 and E3 created: {sorted(users)}"
    )


# -- the deprovisioning guard ------------------------------------------------------------------
async def test_a_burst_of_leavers_waits_for_approval(
    start_service: Start, sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    run = await start_service("guard", UCAAS_SYNC_INTAKE_GUARD_THRESHOLD="1")
    await run.onboard("vc")
    staff = ["E1", "E2", "E3", "E4"]
    for employee in staff:
        await run.send(run.topics.hr, hr("joined", employee))
    await run.settle()
    leavers = staff[:3]
    for employee in leavers:  # 3 people > 1 within the window
        await run.send(run.topics.hr, hr("left", employee))
    counts = await run.settle()

    assert counts.get("held") == 4, counts  # the first leaver was within the limit
    users = users_by_email(tenant_view(sandbox))
    gone = [e for e in leavers if users[email_of(e)]["status"] == "S"]
    assert len(gone) == 1, {e: users[email_of(e)]["status"] for e in leavers}
    for employee in set(staff) - set(gone):
        user = users[email_of(employee)]
        assert (user["status"], apps_of(user)) == ("A", {"vc"}), employee
    held_calls = calls(sandbox)

    listed = (await asyncio.to_thread(ucaas_sync, run.env, tmp_path, "approve")).stdout
    assert "4 command(s) held for approval" in listed, listed
    out = (
        await asyncio.to_thread(ucaas_sync, run.env, tmp_path, "approve", "--tenant", TENANT)
    ).stdout
    assert "approved 4 command(s)" in out, out
    counts = await run.settle()

    assert counts == {"done": 2 + 4 * 2 + 3 * 2}, counts
    users = users_by_email(tenant_view(sandbox))
    for employee in leavers:
        user = users[email_of(employee)]
        assert (user["status"], apps_of(user)) == ("S", set()), employee
    assert (users[email_of("E4")]["status"], apps_of(users[email_of("E4")])) == ("A", {"vc"})
    made = calls(sandbox)
    assert (held_calls[REVOKE], made[REVOKE]) == (1, 3)
    print(
        f"compared: threshold 2, 3 leavers -> 4 commands held, 1 leaver through; revokes "
        f"{held_calls[REVOKE]} before approval, {made[REVOKE]} after; E4 untouched"
    )


# -- a consumer process killed mid-stream ------------------------------------------------------
def start_run(processes: Processes, name: str, env: dict[str, str]) -> DispatchProcess:
    """`ucaas-sync run` (consumers and dispatcher), logging to a file in the test's folder."""
    return processes.start(name, env, ("run",))


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # Migrated up front, as a deployment does (`ucaas-sync db upgrade`): the test reads the
    # tables while the first process may still be starting.
    with migrated_database(request.param, tmp_path) as url:
        yield url


EMPLOYEES = 30
LEAVERS = 10


async def test_a_consumer_killed_mid_stream_loses_and_duplicates_nothing(
    database: str, sandbox: SandboxAdmin, kafka: str, processes: Processes
) -> None:
    topics = Topics.fresh("restart")
    await topics.create(kafka)
    env = service_env(database, sandbox, kafka, topics, UCAAS_SYNC_INTAKE_GUARD_THRESHOLD="1000")
    outbox = Outbox(database)
    first = start_run(processes, "first", env)
    stream = [hr("joined", f"E{n:02d}") for n in range(EMPLOYEES)]
    for n in range(LEAVERS):  # each after its hire, mixed in with the later hires
        stream.insert(2 * n + 6, hr("leave_started", f"E{n:02d}"))
    total = 2 + len(stream)

    async with EventProducer(kafka) as producer:
        await producer.event(topics.crm, crm("crm.company.created", TENANT, company()))
        purchased = crm("crm.subscription.purchased", TENANT, purchase("P-vc", seats=EMPLOYEES))
        await producer.event(topics.crm, purchased)
        await settle(outbox, 2, processes=(first,))  # the first process is up and taking

        async def flow() -> None:
            for event in stream:
                await producer.event(topics.hr, event)
                await asyncio.sleep(0.12)  # a steady flow, still on after the kill

        flowing = asyncio.create_task(flow())
        while (await asyncio.to_thread(progress, outbox))[0] < 2 + len(stream) // 3:
            assert not flowing.done(), "the stream ended before the kill"
            assert first.returncode is None, first.tail()
            await asyncio.sleep(0.02)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        assert not flowing.done(), "the kill came after the stream"
        killed_at, at_kill = await asyncio.to_thread(progress, outbox)
        # Taken (in the database) but not committed (in Kafka): the second process gets
        # these records again, and must not act on them twice. The window between the two
        # commits is a few milliseconds, so a kill seldom lands in it: the test widens it by
        # moving the committed offsets back, as a kill in that window leaves them.
        offsets = await group_offsets(kafka, topics.group, [topics.hr, topics.crm])
        uncommitted = killed_at - sum(done for done, _ in offsets.values())
        again = uncommitted + await rewind(kafka, topics.group, topics.hr, by=3)
        assert again > 0
        second = start_run(processes, "second", env)
        await flowing

    began = time.monotonic()
    counts = await settle(outbox, total, timeout_s=45, processes=(second,))
    caught_up = time.monotonic() - began
    lag: dict[str, int] = {}
    for _ in range(50):  # the offsets are committed just after the transaction
        lag = await group_lag(kafka, topics.group, [topics.hr, topics.crm])
        if not any(lag.values()):
            break
        await asyncio.sleep(0.1)
    assert lag == {topics.hr: 0, topics.crm: 0}, lag
    assert second.stop() == 0, second.tail()

    commands = 2 + 2 * EMPLOYEES + LEAVERS  # customer, subscription; user, licence; suspend
    assert counts == {"done": commands}, outbox.stuck()
    in_doubt = Counter(kind for kind, doubt in outbox.rows("kind", "in_doubt") if doubt)
    outbox.close()
    view = tenant_view(sandbox)
    users = users_by_email(view)
    assert set(users) == {email_of(f"E{n:02d}") for n in range(EMPLOYEES)}
    suspended = {e for e, u in users.items() if u["status"] == "S"}
    assert suspended == {email_of(f"E{n:02d}") for n in range(LEAVERS)}
    assert all(apps_of(u) == {"vc"} for u in users.values())
    assert view.subscriptions[0]["seats_used"] == EMPLOYEES
    made = calls(sandbox)
    assert made[USER_POST] == EMPLOYEES, "a user was created twice"
    # An assign whose answer died with the first process is sent again ("already assigned").
    assert EMPLOYEES <= made[ASSIGN] <= EMPLOYEES + in_doubt["assign_licence"]
    assert (made["POST /customers"], made["POST /subscriptions"]) == (1, 1)
    print(
        f"\n[{make_url(database).get_backend_name()}] killed the first process with "
        f"{killed_at}/{total} events taken ({at_kill}), {uncommitted} of them not committed, "
        f"{again} given again; "
        f"the second caught up in {caught_up:.1f} s; in doubt "
        f"{dict(in_doubt)}; compared {total} inbox rows, {commands} commands, "
        f"POST /users={made[USER_POST]} assign={made[ASSIGN]} for {EMPLOYEES} users, "
        f"{len(suspended)} suspended, group lag {lag}"
    )
