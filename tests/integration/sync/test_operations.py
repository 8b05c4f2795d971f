"""What the operator asks (service/views.py): status, dead commands, dead letters,
one entity's history, throughput and failures; against the sandbox, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from connectors.events.cloudevents import Record
from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from service.entrypoints.consumers import DeadLetter, record_dead_letters
from service.view_models import shown_url
from service.views import Operations, external_of
from tests.support.sandbox_server import SandboxAdmin


def ops(service: Service) -> Operations:
    return Operations(service.engine, service.store, service.settings)


def record(offset: int, topic: str = "hr.events") -> Record:
    return Record(
        topic=topic,
        partition=1,
        offset=offset,
        key=b"emp-\x00-1",
        value=b"{not json",
        headers=(),
        timestamp_ms=0,
    )


async def test_status_counts_what_is_owed_and_what_failed(
    service: Service, sandbox: SandboxAdmin
) -> None:
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    await service.uow.accept(
        c.event(subject="CRM-D", tenant="CRM-D"),
        [c.create_customer("CRM-D"), c.update_customer("CRM-D", customer_name="Renamed")],
    )
    before = await ops(service).status(with_lag=False)
    assert before.outbox == {"pending": 2}
    assert before.open_commands == 2
    assert before.oldest_open_age_s is not None
    assert 0 <= before.oldest_open_age_s < 30
    await service.dispatcher.run_until_idle()
    await record_dead_letters(
        service.engine,
        [
            DeadLetter(record(7), "not_json", "Expecting value: line 1"),
            DeadLetter(record(8), "invalid_data", "userName: missing", "evt-8"),
        ],
    )
    # a batch taken again dead-letters its records again: kept once
    await record_dead_letters(service.engine, [DeadLetter(record(7), "not_json", "again")])
    status = await ops(service).status(with_lag=False)
    assert status.outbox == {"dead": 1, "held": 1}
    assert status.dead == 1
    assert status.held_for_approval == 0  # held behind a dead command, not for approval
    assert status.dead_letters == {"hr.events": 2}
    assert status.consumer_lag is None
    shown = status.as_json()
    assert shown["open_commands"] == 2
    assert shown["consumer_lag"] is None

    failures = await ops(service).recent_failures()
    reasons = {f.what: f.reason for f in failures}
    assert "4030" in reasons["command"]
    assert {f.reason for f in failures if f.what == "dead_letter"} == {
        "not_json: Expecting value: line 1",
        "invalid_data: userName: missing",
    }
    [letter, *_] = await ops(service).dead_letters()
    assert (letter.offset, letter.event_id, letter.key) == (8, "evt-8", "emp--1")


async def test_retry_and_drop_through_operations(service: Service, sandbox: SandboxAdmin) -> None:
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    await service.uow.accept(c.event(), [c.create_customer("CRM-X")])
    await service.dispatcher.run_until_idle()
    [dead] = await ops(service).commands(status="dead")
    assert not await ops(service).drop(dead.id + 100)
    sandbox.faults(error_rate=0.0)
    assert await ops(service).retry(dead.id)
    await service.dispatcher.run_until_idle()
    assert (await ops(service).status(with_lag=False)).outbox == {"done": 1}
    assert not await ops(service).retry(dead.id)  # done: nothing to retry


async def test_history_tells_one_entitys_story(service: Service, sandbox: SandboxAdmin) -> None:
    await service.uow.accept(
        c.event(subject="CRM-H", tenant="CRM-H"),
        [c.create_customer("CRM-H"), c.update_customer("CRM-H", customer_name="Hist")],
    )
    await service.uow.accept(c.event(), [c.create_customer("CRM-OTHER")])
    await service.dispatcher.run_until_idle()
    story = await ops(service).history("customer:CRM-H")
    assert [cmd.kind for cmd in story.commands] == ["create_customer", "update_customer"]
    assert all(cmd.status == "done" for cmd in story.commands)
    writes = [
        (call.method, call.status)
        for call in story.calls
        if call.method != "GET" and call.route != "/login"
    ]
    assert [method for method, _ in writes] == ["POST", "PATCH"]
    assert all(status is not None and status < 300 for _, status in writes)
    assert {call.command_id for call in story.calls} == {cmd.id for cmd in story.commands}
    assert len(story.events) == 1
    assert story.events[0].subject == "CRM-H"
    [mapping] = story.mappings
    assert mapping.external_id == "CRM-H"
    customers = {x["customer_code"]: x for x in sandbox.state()["customers"]}
    assert mapping.ucaas_id == str(customers["CRM-H"]["customer_id"])
    nobody = await ops(service).history("user:T:nobody")
    assert (nobody.events, nobody.commands, nobody.calls) == ([], [], [])


async def test_throughput_buckets_the_last_hour(service: Service, sandbox: SandboxAdmin) -> None:
    await service.uow.accept(c.event(), [c.create_customer(f"CRM-T{n}") for n in range(3)])
    await service.dispatcher.run_until_idle()
    buckets = await ops(service).throughput(minutes=60)
    assert len(buckets) == 61
    assert sum(b.commands_done for b in buckets) == 3
    assert sum(b.events for b in buckets) == 1
    async with service.engine.connect() as conn:
        calls = await conn.scalar(sa.text("SELECT count(*) FROM call_log"))
    assert sum(b.calls for b in buckets) == calls
    assert buckets[-1].minute <= datetime.now(UTC)


def test_entities_name_their_external_ids() -> None:
    assert external_of("user:CRM-1:E-7") == ("user", "CRM-1", "E-7")
    assert external_of("customer:CRM-1") == ("customer", None, "CRM-1")
    assert external_of("subscriptions:CRM-1") == ("subscription", "CRM-1", None)
    assert external_of("subscription:CRM-1:P-2") == ("subscription", "CRM-1", "P-2")  # older
    assert external_of("meeting:abc") is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://calendar.google.com/calendar/ical/a%40x.com/private-9f8e7d/basic.ics",
            "https://calendar.google.com/calendar/…",
        ),
        (
            "https://u:pw@cal.example.com:8443/feed.ics?key=abc",
            "https://cal.example.com:8443/feed.ics?…",
        ),
        ("http://127.0.0.1:8080/calendar.ics", "http://127.0.0.1:8080/calendar.ics"),
    ],
)
def test_feed_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert shown_url(url) == shown
