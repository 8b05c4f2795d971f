"""Result events in the outbox and through the relay, against the sandbox (SQLite and
PostgreSQL): one per command done, dead or held, written with its outcome; relayed in
the order written, at least once, and never marked published without the broker's word:
the relay talks to a real broker (the session's, or a Tansu the test starts late).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from connectors.events.cloudevents import Record
from connectors.events.kafka_security import KafkaConnection
from connectors.events.publisher import KafkaPublisher, Outgoing, PublishError
from connectors.events.topic_reader import read_to_end
from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from service.devtools.local_broker import LocalBroker, create_topics_now
from service.devtools.processes import free_port
from service.outbox.tables import OUTBOX, RESULTS
from service.results.relay import ResultRelay
from service.settings import ResultsSettings
from tests.support.sandbox_server import SandboxAdmin


class Counting:
    """The real publisher, counting the rounds the relay asked of it."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self.publisher = publisher
        self.rounds = 0

    async def publish(self, records: Sequence[Outgoing]) -> None:
        self.rounds += 1
        await self.publisher.publish(records)

    async def stop(self) -> None:
        await self.publisher.stop()


def publisher_at(address: str) -> KafkaPublisher:
    return KafkaPublisher(KafkaConnection(address, timeout_s=1.0), timeout_s=5.0)


@pytest.fixture
def private_broker() -> Iterator[tuple[str, list[LocalBroker]]]:
    """An address with no broker yet; the test starts Tansu there when it wants one."""
    started: list[LocalBroker] = []
    yield f"127.0.0.1:{free_port()}", started
    for broker in started:
        broker.stop()


async def results(service: Service) -> list[dict[str, Any]]:
    async with service.engine.connect() as conn:
        rows = await conn.execute(sa.select(RESULTS).order_by(RESULTS.c.id))
        return [dict(row._mapping) for row in rows]


async def test_every_finished_command_writes_one_result_with_the_ids_ucaas_gave(
    service: Service, sandbox: SandboxAdmin
) -> None:
    tenant = "CRM-7"
    ann = c.email_of(tenant, "E0000")
    batch = [
        *c.onboarding(tenant, employees=2),
        c.update_user(tenant, "E0001", designation="Lead"),
        c.suspend(tenant, "E0001"),
        c.schedule(tenant, "feed1:uid1", ann),
        c.cancel(tenant, "feed1:uid1", ann),
    ]
    cause = c.event(source="hr-system")
    assert await service.uow.accept(cause, batch)
    await service.dispatcher.run_until_idle()
    assert await service.store.counts() == {"done": len(batch)}

    found = await results(service)
    async with service.engine.connect() as conn:
        commands = dict((await conn.execute(sa.select(OUTBOX.c.id, OUTBOX.c.kind))).all())
    # one result per command, each naming its command and the event that asked for it
    assert sorted(r["command_id"] for r in found) == sorted(commands)
    assert len({r["event_id"] for r in found}) == len(found)
    assert all(r["published_at"] is None for r in found)
    for r in found:
        ce = r["cloudevent"]
        assert (ce["id"], ce["type"], ce["subject"]) == (r["event_id"], r["type"], r["subject"])
        assert (ce["causationid"], ce["causationsource"]) == (cause.event_id, "hr-system")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in found:
        by_type.setdefault(r["type"], []).append(r["cloudevent"]["data"])
    assert set(by_type) == {
        "ucaas.customer.created",
        "ucaas.subscription.created",
        "ucaas.user.provisioned",
        "ucaas.user.licence_assigned",
        "ucaas.user.updated",
        "ucaas.user.suspended",
        "ucaas.meeting.scheduled",
        "ucaas.meeting.cancelled",
    }
    state = sandbox.state()
    users = {u["email"]: u for u in state["users"]}
    for data in by_type["ucaas.user.provisioned"]:
        assert data["ucaas_user_id"] == users[data["email"]]["user_id"]
    licensed = {d["employee_id"]: d["licences"] for d in by_type["ucaas.user.licence_assigned"]}
    assert licensed == {"E0000": ["vc"], "E0001": ["vc"]}
    [customer] = by_type["ucaas.customer.created"]
    codes = {x["customer_id"]: x["customer_code"] for x in state["customers"]}
    assert codes[customer["ucaas_customer_id"]] == tenant
    [scheduled] = by_type["ucaas.meeting.scheduled"]
    [meeting] = [m for m in state["meetings"] if m["meeting_id"] == scheduled["ucaas_meeting_id"]]
    assert scheduled["join_url"] and meeting["meeting_id"] in scheduled["join_url"]
    assert "mpin" not in str(found) and "moderator_pin" not in str(found)
    [cancelled] = by_type["ucaas.meeting.cancelled"]
    assert cancelled["ucaas_meeting_id"] == scheduled["ucaas_meeting_id"]


async def test_a_dead_command_and_a_held_one_publish_what_happened(service: Service) -> None:
    tenant = "CRM-8"
    await service.uow.accept(c.event(), [c.create_customer(tenant)])
    await service.dispatcher.run_until_idle()
    # an update of a user nobody created, by a mapping nobody has: the API says 404
    await service.uow.accept(c.event(), [c.suspend(tenant, "E-ghost")])
    held = c.suspend(tenant, "E-held")
    await service.uow.accept(c.event(), [held], approvals={0: "approval: 9 people suspended"})
    await service.dispatcher.run_until_idle()
    found = {r["type"]: r for r in await results(service)}
    assert "ucaas.command.held" in found, found.keys()
    data = found["ucaas.command.held"]["cloudevent"]["data"]
    assert data["reason"] == "approval: 9 people suspended"
    assert data["entity"] == held.entity
    async with service.engine.connect() as conn:
        status = await conn.scalar(
            sa.select(OUTBOX.c.status).where(OUTBOX.c.id == data["command_id"])
        )
    assert status == "held"


async def test_the_relay_publishes_in_order_and_marks_only_what_the_broker_took(
    service: Service, private_broker: tuple[str, list[LocalBroker]]
) -> None:
    address, started = private_broker
    for n in range(5):
        await service.uow.accept(c.event(), [c.create_customer(f"CRM-R{n}")])
    await service.dispatcher.run_until_idle()
    written = await results(service)
    assert len(written) == 5
    topic = written[0]["topic"]  # chosen when the row was written
    settings = ResultsSettings(batch=2, poll_s=0.01)
    relay = ResultRelay(service.engine, publisher_at(address), settings)
    try:
        with pytest.raises(PublishError):  # nothing listens yet
            await relay.relay_once()
        assert all(r["published_at"] is None for r in await results(service))
        unpublished, oldest_s = await relay.observe_backlog()
        assert unpublished == 5
        assert oldest_s is not None and oldest_s > 0

        started.append(LocalBroker._tansu(int(address.rsplit(":", 1)[1])))
        started[0].ensure_topics([topic], partitions=1)  # one partition: one order
        assert [await relay.relay_once() for _ in range(4)] == [2, 2, 1, 0]
    finally:
        await relay.publisher.stop()
    records = await read_to_end(address, topic)
    assert [orjson_id(r) for r in records] == [r["event_id"] for r in written]
    assert [r.key for r in records] == [w["subject"].encode() for w in written]
    assert all(r["published_at"] is not None for r in await results(service))
    assert (await relay.observe_backlog())[0] == 0


async def test_a_crash_between_acknowledgement_and_mark_resends_the_same_ids(
    service: Service, kafka: str
) -> None:
    await service.uow.accept(c.event(), [c.create_customer("CRM-X")])
    await service.dispatcher.run_until_idle()
    [written] = await results(service)
    create_topics_now(kafka, [written["topic"]])
    relay = ResultRelay(service.engine, publisher_at(kafka), ResultsSettings())

    async def crash(conn: Any, rows: Any) -> None:
        raise RuntimeError("killed before the mark")

    try:
        relay._mark = crash  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await relay.relay_once()
        del relay._mark
        assert await relay.relay_once() == 1
    finally:
        await relay.publisher.stop()
    records = await read_to_end(kafka, written["topic"])  # other tests' results too
    first, again = [r for r in records if orjson_id(r) == written["event_id"]]
    assert first.value == again.value  # the same CloudEvent, the same id: deduped downstream


async def test_the_relay_runs_until_stopped_and_backs_off_while_the_broker_is_away(
    service: Service, private_broker: tuple[str, list[LocalBroker]]
) -> None:
    address, started = private_broker
    await service.uow.accept(c.event(), [c.create_customer("CRM-Y")])
    await service.dispatcher.run_until_idle()
    [written] = await results(service)
    topic = written["topic"]
    publisher = Counting(publisher_at(address))
    relay = ResultRelay(service.engine, publisher, ResultsSettings(poll_s=0.02))
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(1.0)
    refused = publisher.rounds
    assert 2 <= refused < 12, refused  # backing off, not spinning
    started.append(LocalBroker._tansu(int(address.rsplit(":", 1)[1])))
    started[0].ensure_topics([topic], partitions=1)
    for _ in range(200):
        if relay.published:
            break
        await asyncio.sleep(0.05)
    await relay.stop()
    await task
    assert relay.published == 1
    [record] = await read_to_end(address, topic)
    assert orjson_id(record) == written["event_id"]


def orjson_id(record: Record) -> str:
    return str(orjson.loads(record.value or b"{}").get("id"))


async def test_the_kafka_publisher_says_in_one_line_that_no_broker_answers() -> None:
    where = f"127.0.0.1:{free_port()}"  # nothing listens there
    publisher = KafkaPublisher(KafkaConnection(where, timeout_s=2.0), timeout_s=5.0)
    record = Outgoing("ucaas.results", b"user:T:E1", b"{}")
    with pytest.raises(PublishError) as refused:
        await publisher.publish([record])
    assert str(refused.value).startswith(f"Kafka at {where}: unreachable")
    assert "\n" not in str(refused.value)
    await publisher.stop()
