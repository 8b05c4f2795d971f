"""Result events end to end: HR, CRM and calendar input through the real broker, the
service (consumers, dispatcher, feed poller and results relay, wired as `ucaas-sync run`
wires them, in this process), the sandbox over HTTP, and the results topic read back by
a plain consumer, as a downstream system reads it.

- Every kind of result, with what HR, CRM and a calendar add-on need: the UCaaS ids, the
  licences held, the join link, the event that asked (causationid); a command that died
  and one held for approval say so; one distinct id per command.
- A broker that is away when the work is done, and then restarted: the UCaaS calls go on,
  the results wait in the outbox (the relay's lag), and all arrive once it is back.

Each test prints what it compared.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from service.app.bootstrap import Service, bootstrap
from service.app.runner import Parts, Running, serve
from service.devtools import sample_commands as c
from service.devtools.local_broker import LocalBroker, Topics, read_all
from service.devtools.processes import free_port
from service.outbox.tables import OUTBOX, RESULTS
from service.settings import (
    CalendarSettings,
    DispatcherSettings,
    IntakeSettings,
    KafkaSettings,
    ResultsSettings,
    Settings,
)
from tests.e2e.test_kafka_intake import company, email_of, purchase, scim_user
from tests.support.databases import sqlite_url
from tests.support.feeds import FeedServer, vcalendar, vevent
from tests.support.kafka import EventProducer, cloudevent
from tests.support.sandbox_server import SandboxAdmin

TENANT = "CRM-RES"
ORGANISER = email_of("E0000", TENANT)


def settings(
    tmp_path: Path, sandbox: SandboxAdmin, kafka: str, topics: Topics, **sections: Any
) -> Settings:
    given: dict[str, Any] = {
        "database_url": sqlite_url(tmp_path),
        "secret_key": SecretStr("x" * 43 + "="),
        "ucaas_base_url": sandbox.base_url,
        "kafka": KafkaSettings(
            bootstrap_servers=kafka,
            hr_topic=topics.hr,
            crm_topic=topics.crm,
            calendar_topic=topics.calendar,
            group_id=topics.group,
            session_timeout_ms=6000,
            fetch_max_wait_ms=100,
        ),
        "dispatch": DispatcherSettings(
            poll_s=0.05, backoff_base_s=0.05, backoff_cap_s=0.3, wait_cap_s=0.3, lease_s=10
        ),
        "calendar": CalendarSettings(allow_private_addresses=True, interval_s=0.3, jitter=0),
        "results": ResultsSettings(topic=topics.results, poll_s=0.05, retry_cap_s=0.5),
    }
    return Settings(**(given | sections))


@asynccontextmanager
async def running(service: Service, parts: Parts) -> AsyncIterator[Running]:
    stop = asyncio.Event()
    ready: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(service, parts, stop, on_ready=ready.set_result))
    try:
        yield await asyncio.wait_for(asyncio.shield(ready), 30)
    finally:
        stop.set()
        await task


async def until(what: str, check: Callable[[], Any], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.1)


async def outbox(service: Service) -> dict[int, tuple[str, str]]:
    """Command id -> (kind, status)."""
    async with service.engine.connect() as conn:
        rows = await conn.execute(sa.select(OUTBOX.c.id, OUTBOX.c.kind, OUTBOX.c.status))
        return {row.id: (row.kind, row.status) for row in rows}


async def unpublished(service: Service) -> int:
    async with service.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(RESULTS.c.published_at.is_(None))
        return int(await conn.scalar(query) or 0)


async def settled(service: Service) -> bool:
    statuses = {status for _, status in (await outbox(service)).values()}
    return bool(statuses) and statuses <= {"done", "dead", "held"}


async def published(kafka: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value) for value in await read_all(kafka, [topic])]


def one_id_per_command(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Command id -> its result; a command with two distinct ids fails."""
    ids: dict[int, set[str]] = {}
    first: dict[int, dict[str, Any]] = {}
    for event in events:
        ids.setdefault(event["commandid"], set()).add(event["id"])
        first.setdefault(event["commandid"], event)
    assert all(len(found) == 1 for found in ids.values()), ids
    return first


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


def in_two_days(hour: int) -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=2)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def person(employee: str, **fields: Any) -> dict[str, Any]:
    return scim_user(employee, tenant=TENANT) | fields


async def test_every_kind_of_result_reaches_the_topic_with_what_downstream_needs(
    tmp_path: Path, sandbox: SandboxAdmin, kafka: str, feed_server: FeedServer
) -> None:
    topics = Topics.fresh("results")
    await topics.create(kafka)
    given = settings(
        tmp_path,
        sandbox,
        kafka,
        topics,
        # two people deprovisioned within the hour: the second waits for a person
        intake=IntakeSettings(guard_threshold=1),
    )
    service = await bootstrap(given, migrate=True)
    single = vevent("kickoff-1@acme.example", in_two_days(9), "Kickoff", minutes=45)
    feed_server.publish(vcalendar(single))
    sent: dict[str, dict[str, Any]] = {}

    async def send(producer: EventProducer, topic: str, name: str, event: dict[str, Any]) -> None:
        sent[name] = event
        await producer.event(topic, event)

    async with running(service, Parts(admin=False)), EventProducer(kafka) as producer:
        await send(
            producer,
            topics.crm,
            "company",
            cloudevent("crm.company.created", TENANT, company(TENANT)),
        )
        await send(
            producer,
            topics.crm,
            "bought",
            cloudevent("crm.subscription.purchased", TENANT, purchase("P-1", seats=5)),
        )
        await send(
            producer, topics.hr, "hired", cloudevent("hr.user.joined", "E0000", person("E0000"))
        )
        await send(
            producer, topics.hr, "hired2", cloudevent("hr.user.joined", "E0001", person("E0001"))
        )
        await until("the people and the company", lambda: settled(service))
        registered = {"url": feed_server.url, "organizer_email": ORGANISER, "tenant": TENANT}
        await send(
            producer,
            topics.calendar,
            "feed",
            cloudevent("calendar.feed.registered", "res-cal", registered),
        )
        await send(
            producer,
            topics.crm,
            "more",
            cloudevent("crm.subscription.updated", TENANT, purchase("P-1", seats=8)),
        )
        await send(
            producer,
            topics.hr,
            "promoted",
            cloudevent("hr.user.updated", "E0000", person("E0000", title="Lead")),
        )
        await send(
            producer,
            topics.hr,
            "leave",
            cloudevent("hr.user.leave_started", "E0001", person("E0001")),
        )
        await send(
            producer, topics.hr, "back", cloudevent("hr.user.leave_ended", "E0001", person("E0001"))
        )

        async def scheduled() -> bool:
            return "schedule_meeting" in {k for k, _ in (await outbox(service)).values()}

        await until("the feed's meeting", scheduled)
        await until("all done", lambda: settled(service))
        feed_server.publish(vcalendar(vevent("kickoff-1@acme.example", in_two_days(10), "Kickoff")))

        async def moved() -> bool:
            return "update_meeting" in {k for k, _ in (await outbox(service)).values()}

        await until("the meeting moved", moved)
        removed = {"feed_id": "res-cal"}
        await send(
            producer,
            topics.calendar,
            "unfeed",
            cloudevent("calendar.feed.removed", "res-cal", removed),
        )
        await send(
            producer,
            topics.hr,
            "left",
            cloudevent("hr.user.left", "E0001", person("E0001", active=False)),
        )
        await until("all done", lambda: settled(service))
        # UCaaS refuses the next company update: the command dies, and says so
        sandbox.faults(error_rate=1.0, error_status=403, only=["PATCH /customers/{customer_id}"])
        renamed = cloudevent("crm.company.updated", TENANT, company(TENANT, "Acme Results Renamed"))
        await send(producer, topics.crm, "renamed", renamed)

        async def died() -> bool:
            return "dead" in {s for _, s in (await outbox(service)).values()}

        await until("the dead update", died)
        sandbox.faults(reset=True)
        await until("every result published", lambda: _none(unpublished(service)))

    commands = await outbox(service)
    events = await published(kafka, topics.results)
    results = one_id_per_command(events)
    await service.aclose()
    # one result per command done, dead or held: none missing, none made up
    assert set(results) == set(commands)
    types = Counter(e["type"] for e in results.values())
    assert set(types) >= {
        "ucaas.customer.created",
        "ucaas.command.dead",
        "ucaas.subscription.created",
        "ucaas.subscription.changed",
        "ucaas.user.provisioned",
        "ucaas.user.licence_assigned",
        "ucaas.user.updated",
        "ucaas.user.suspended",
        "ucaas.user.reactivated",
        "ucaas.meeting.scheduled",
        "ucaas.meeting.updated",
        "ucaas.meeting.cancelled",
        "ucaas.command.held",
    }, types
    for event in events:
        assert event["specversion"] == "1.0" and event["source"] == "ucaas-sync"
        assert event["subject"] and event["time"].endswith("Z")
    text = str(events)
    assert "password" not in text.lower() and "mpin" not in text and "_pin" not in text

    state = sandbox.state()
    by_kind = {(e["type"], e["subject"]): e for e in results.values()}
    hired = by_kind[("ucaas.user.provisioned", f"user:{TENANT}:E0000")]
    [ann] = [u for u in state["users"] if u["email"] == ORGANISER]
    assert hired["data"]["ucaas_user_id"] == ann["user_id"]
    assert hired["data"]["email"] == ORGANISER
    assert hired["causationid"] == sent["hired"]["id"]  # HR can match it to its event
    licensed = by_kind[("ucaas.user.licence_assigned", f"user:{TENANT}:E0000")]
    assert licensed["data"]["licences"] == ["vc"]
    [customer] = [x for x in state["customers"] if x["customer_code"] == TENANT]
    created = next(e for e in results.values() if e["type"] == "ucaas.customer.created")
    assert created["data"] == {"crm_id": TENANT, "ucaas_customer_id": customer["customer_id"]}
    assert created["causationid"] == sent["company"]["id"]
    changed = next(e for e in results.values() if e["type"] == "ucaas.subscription.changed")
    assert (changed["data"]["seats"], changed["causationid"]) == (8, sent["more"]["id"])
    meeting = next(e for e in results.values() if e["type"] == "ucaas.meeting.scheduled")
    [made] = [
        m for m in state["meetings"] if m["meeting_id"] == meeting["data"]["ucaas_meeting_id"]
    ]
    assert meeting["data"]["join_url"] and made["meeting_id"] in meeting["data"]["join_url"]
    assert (meeting["data"]["feed_id"], meeting["data"]["uid"]) == (
        "res-cal",
        "kickoff-1@acme.example",
    )
    assert meeting["data"]["start"] == in_two_days(9).isoformat().replace("+00:00", "Z")
    updated = next(e for e in results.values() if e["type"] == "ucaas.meeting.updated")
    assert updated["data"]["start"] == in_two_days(10).isoformat().replace("+00:00", "Z")
    assert updated["data"]["join_url"] == meeting["data"]["join_url"]
    cancelled = next(e for e in results.values() if e["type"] == "ucaas.meeting.cancelled")
    assert cancelled["data"]["ucaas_meeting_id"] == meeting["data"]["ucaas_meeting_id"]
    dead = next(e for e in results.values() if e["type"] == "ucaas.command.dead")
    assert dead["data"]["kind"] == "update_customer" and dead["data"]["code"] == "4030"
    assert dead["causationid"] == sent["renamed"]["id"]
    held = [e for e in results.values() if e["type"] == "ucaas.command.held"]
    assert held and all(e["data"]["reason"].startswith("approval: ") for e in held)
    assert {e["subject"] for e in held} == {f"user:{TENANT}:E0001"}
    assert all(e["causationid"] == sent["left"]["id"] for e in held)
    print(
        f"\ncompared: {len(commands)} commands, {len(results)} distinct result ids "
        f"({len(events)} records); types {dict(types)}"
    )


async def _none(count: Any) -> bool:
    return await count == 0


async def test_results_wait_out_a_broker_outage_and_a_restart_and_all_arrive(
    tmp_path: Path, sandbox: SandboxAdmin, feed_server: FeedServer
) -> None:
    """A broker of this test's own, away and then restarted (Tansu keeps nothing in
    memory across a restart: the topic is made again, as an operator would)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    topics = Topics.fresh("outage")
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        f'[[feeds]]\nid = "out-cal"\nurl = "{feed_server.url}"\n'
        f'organizer = "{ORGANISER}"\ntenant = "{TENANT}"\n'
    )
    given = settings(tmp_path, sandbox, address, topics)
    given = given.model_copy(
        update={"calendar": given.calendar.model_copy(update={"feeds_file": feeds})}
    )
    service = await bootstrap(given, migrate=True)
    await service.uow.accept(c.event(), c.onboarding(TENANT, employees=1))
    hours = (9, 11, 14)
    feed_server.publish(
        vcalendar(*(vevent(f"m-{h}", in_two_days(h), f"Meeting {h}") for h in hours))
    )
    broker: LocalBroker | None = None
    try:
        async with running(service, Parts(consumers=False, admin=False)):
            # the broker is away: UCaaS calls go on, results wait
            await until("the meetings", lambda: _meetings(service, "schedule_meeting", 3))
            await until("everything done", lambda: settled(service))
            waiting = await unpublished(service)
            assert waiting == len(await outbox(service))  # none lost, none sent
            broker = LocalBroker._tansu(port)
            broker.ensure_topics([topics.results])
            began = time.monotonic()
            await until("results after the outage", lambda: _none(unpublished(service)))
            late_s = time.monotonic() - began
            first = one_id_per_command(await published(address, topics.results))
            assert set(first) == set(await outbox(service))

            # the broker goes again; the calendar changes meanwhile
            broker.stop()
            feed_server.publish(
                vcalendar(*(vevent(f"m-{h}", in_two_days(h), f"Moved {h}") for h in hours))
            )
            await until("the updates", lambda: _meetings(service, "update_meeting", 3))
            await until("everything done", lambda: settled(service))
            assert await unpublished(service) == 3
            broker = LocalBroker._tansu(port)  # restarted: empty
            broker.ensure_topics([topics.results])
            await until("results after the restart", lambda: _none(unpublished(service)))
            second = one_id_per_command(await published(address, topics.results))
    finally:
        if broker is not None:
            broker.stop()
        await service.aclose()
    updates = {
        i for i, (kind, _) in (await _outbox_after(given)).items() if kind == "update_meeting"
    }
    assert set(second) == updates
    assert {e["type"] for e in second.values()} == {"ucaas.meeting.updated"}
    assert not set(first) & set(second)
    print(
        f"\ncompared: {waiting} results held through the outage, published {late_s:.1f} s "
        f"after the broker came; {len(first)} ids, then {len(second)} update results after "
        "the restart, none twice"
    )


async def _meetings(service: Service, kind: str, count: int) -> bool:
    found = [k for k, s in (await outbox(service)).values() if k == kind and s == "done"]
    return len(found) >= count


async def _outbox_after(given: Settings) -> dict[int, tuple[str, str]]:
    service = await bootstrap(given)
    try:
        return await outbox(service)
    finally:
        await service.aclose()
