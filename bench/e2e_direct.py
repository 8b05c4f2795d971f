"""The same events as plain UCaaS calls, without the service: the naive baseline (one
Kafka consumer, one record at a time, a commit after each) and the sandbox's own capacity
for the same calls (a concurrent load, no Kafka, no outbox).

Both translate with the service's pure translation (`service.intake.translate`, the
entities' desired state kept in memory) and map each command straight to the call(s) it
means, with UCaaS ids kept in memory and the platform account acting for every tenant.
No lookups, no id mapping in a database, no retries: the least work the events need.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from connectors.events.cloudevents import Record, parse
from connectors.events.kafka_security import KafkaConnection
from connectors.ucaas import CallRecord, Credentials, UCaaSClient, UCaaSError
from connectors.ucaas.models.customers import AddressIn, CustomerChanges, NewCustomer
from connectors.ucaas.models.subscriptions import NewSubscription, NewSubscriptionTerms
from connectors.ucaas.models.users import NewUser, UserChanges
from service.devtools.local_sandbox import DEFAULT_ADMIN, DEFAULT_API_ID
from service.domain.commands import (
    AssignLicence,
    CloseCustomer,
    Command,
    CreateCustomer,
    CreateSubscription,
    CreateUser,
    Kind,
    Payload,
    ReactivateUser,
    RevokeLicence,
    SuspendUser,
    UpdateCustomer,
    UpdateUser,
)
from service.intake.events import Context, to_domain, translate
from service.intake.licences import LicencePolicy
from service.outbox.tables import utcnow
from service.settings import IntakeSettings


class Calls:
    """Every HTTP call the client makes (its login included), counted by its hook."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _: CallRecord) -> None:
        self.count += 1


def client(base_url: str, connections: int, calls: Calls) -> UCaaSClient:
    return UCaaSClient(
        base_url,
        api_id=DEFAULT_API_ID,
        credentials=Credentials.of(*DEFAULT_ADMIN),
        max_connections=connections,
        timeout=30,
        on_call=calls,
    )


class Translator:
    """The service's translation with the desired states in a dict."""

    def __init__(self) -> None:
        self.states: dict[str, BaseModel | None] = {}
        self.policy = LicencePolicy()
        self.settings = IntakeSettings(guard_threshold=10**9)

    def commands(
        self, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> tuple[str, list[Command]]:
        """(the event's id, its commands)."""
        record = Record(
            topic="", partition=0, offset=0, key=None, value=value, headers=tuple(headers)
        )
        envelope = parse(record)
        event = to_domain(envelope)
        entity = event.entity
        context = Context(self.policy, self.settings, utcnow())
        translation = translate(event, self.states.get(entity), context)
        if translation.state is not None:
            self.states[entity] = translation.state
        return envelope.id, translation.commands


@dataclass
class Direct:
    """Commands as direct calls; UCaaS ids in memory."""

    api: UCaaSClient
    customers: dict[str, str] = field(default_factory=dict)  # crm id -> customer id
    subscriptions: dict[tuple[str, str], str] = field(default_factory=dict)  # (crm, app)
    users: dict[tuple[str, str], str] = field(default_factory=dict)  # (tenant, employee)
    failures: int = 0

    async def run(self, command: Command) -> None:
        try:
            await self._run(command.kind, command.payload)
        except (UCaaSError, KeyError):
            self.failures += 1  # the naive consumer logs and moves on

    async def _run(self, kind: Kind, p: Payload) -> None:
        api = self.api.users
        if isinstance(p, CreateUser):
            profile = p.profile
            saved = await api.add(
                NewUser(
                    user_type="AP",
                    first_name=profile.first_name,
                    middle_name=profile.middle_name,
                    last_name=profile.last_name,
                    email=profile.email,
                    department=profile.department,
                    designation=profile.designation,
                    customer_id=self.customers[p.tenant],
                )
            )
            self.users[p.tenant, p.employee_id] = saved.user.user_id
        elif isinstance(p, UpdateUser):
            changes = UserChanges.model_validate(p.changes)
            await api.edit(self.users[p.tenant, p.employee_id], changes)
        elif isinstance(p, SuspendUser | ReactivateUser):
            status = "S" if isinstance(p, SuspendUser) else "A"
            await api.edit(self.users[p.tenant, p.employee_id], UserChanges(status=status))
        elif isinstance(p, AssignLicence):
            await api.assign_licence(
                self.users[p.tenant, p.employee_id],
                app=p.app,
                subscription_id=self.subscriptions[p.tenant, p.app],
            )
        elif isinstance(p, RevokeLicence):
            await api.revoke_licence(self.users[p.tenant, p.employee_id], p.app)
        elif isinstance(p, CreateCustomer):
            profile = p.profile
            created = await self.api.customers.add(
                NewCustomer(
                    customer_name=profile.customer_name,
                    customer_legal_name=profile.customer_legal_name,
                    customer_code=p.crm_id,
                    contact_name=profile.contact_name,
                    contact_email=profile.contact_email,
                    office_address=AddressIn.model_validate(
                        profile.office_address.model_dump(exclude_none=True)
                    ),
                )
            )
            self.customers[p.crm_id] = created.customer.customer_id
        elif isinstance(p, UpdateCustomer):
            changes = CustomerChanges.model_validate(p.changes)
            await self.api.customers.edit(self.customers[p.crm_id], changes)
        elif isinstance(p, CloseCustomer):
            await self.api.customers.edit(
                self.customers[p.crm_id], CustomerChanges(status=p.status)
            )
        elif isinstance(p, CreateSubscription):
            saved = await self.api.subscriptions.add(
                NewSubscription(
                    customer_id=self.customers[p.crm_id],
                    plan_id=p.plan_id,
                    room_type="standard",
                    subscription=NewSubscriptionTerms(subsxn_date=p.start, no_of_license=p.seats),
                )
            )
            self.subscriptions[p.crm_id, p.app] = saved.subscription.subscription_id
        else:
            raise KeyError(f"no direct call for {kind}")


# -- the naive baseline ------------------------------------------------------------------------
async def naive_consumer(
    bootstrap: KafkaConnection,
    base_url: str,
    topics: Sequence[str],
    group: str,
    *,
    untimed: set[str],
    limit: int,
    budget_s: float,
) -> dict[str, Any]:
    """One consumer, one record at a time: parse, translate, call the API for each command in
    turn, commit the record's offset; then the next. Topics are read one after the other
    (CRM before HR: a hire needs its company). The events in `untimed` (the onboarding) are
    taken before the clock starts; then `limit` records, or as many as `budget_s` allows."""
    consumer = AIOKafkaConsumer(
        **bootstrap.client_kwargs(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    calls = Calls()
    api = client(base_url, 1, calls)
    direct = Direct(api)
    translator = Translator()
    taken, calls_before = 0, 0
    started: float | None = None
    try:
        # all partitions known up front: once a topic is assigned, metadata is of it alone
        known = {topic: sorted(await _partitions(consumer, topic)) for topic in topics}
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in known[topic]]
            consumer.assign(partitions)  # commits go to the group; no member join needed
            ends = await consumer.end_offsets(partitions)
            while taken < limit and (started is None or time.perf_counter() - started < budget_s):
                if await _at_end(consumer, ends):
                    break
                record = await consumer.getone()
                began = time.perf_counter()
                event_id, commands = translator.commands(record.value or b"", record.headers)
                for command in commands:
                    await direct.run(command)
                tp = TopicPartition(record.topic, record.partition)
                await consumer.commit({tp: record.offset + 1})
                if event_id in untimed:
                    continue
                if started is None:
                    started, calls_before = began, calls.count
                taken += 1
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await api.aclose()
    made = calls.count - calls_before
    return {
        "baseline_events": taken,
        "baseline_seconds": round(elapsed, 2),
        "baseline_events_per_s": round(taken / elapsed, 1) if elapsed else 0.0,
        "baseline_calls_per_event": round(made / max(taken, 1), 3),
        "baseline_failures": direct.failures,
    }


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer.topics()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} has no partitions")


async def _at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


# -- the sandbox's capacity for the same calls --------------------------------------------------
def plan(events: Iterable[bytes]) -> list[list[Command]]:
    """The commands of each event, translated in order, grouped for a concurrent load: the
    companies' commands first (users need their customer and subscription), then one
    group per entity, each in its order."""
    translator = Translator()
    companies: list[Command] = []
    entities: dict[str, list[Command]] = defaultdict(list)
    for value in events:
        for command in translator.commands(value)[1]:
            if command.kind in (Kind.CREATE_CUSTOMER, Kind.CREATE_SUBSCRIPTION):
                companies.append(command)
            else:
                entities[command.entity].append(command)
    customers = [[c] for c in companies if c.kind == Kind.CREATE_CUSTOMER]
    subscriptions = [[c] for c in companies if c.kind == Kind.CREATE_SUBSCRIPTION]
    return [*customers, *subscriptions, *entities.values()]


async def capacity(
    base_url: str, groups: list[list[Command]], *, workers: int, budget_s: float
) -> dict[str, Any]:
    """`workers` concurrent callers over the groups (each group's commands in order):
    calls per second, until every group is done or `budget_s` has passed."""
    calls = Calls()
    api = client(base_url, workers, calls)
    direct = Direct(api)
    onboarding = [
        g for g in groups if g[0].kind in (Kind.CREATE_CUSTOMER, Kind.CREATE_SUBSCRIPTION)
    ]
    rest = groups[len(onboarding) :]

    async def drain(queue: list[list[Command]], deadline: float) -> None:
        while queue and time.perf_counter() < deadline:
            for command in queue.pop():
                await direct.run(command)

    try:
        for kind in (Kind.CREATE_CUSTOMER, Kind.CREATE_SUBSCRIPTION):  # untimed
            await asyncio.gather(*(direct.run(g[0]) for g in onboarding if g[0].kind == kind))
        before = calls.count
        queue = list(reversed(rest))
        started = time.perf_counter()
        deadline = started + budget_s
        await asyncio.gather(*(drain(queue, deadline) for _ in range(workers)))
        elapsed = time.perf_counter() - started
    finally:
        await api.aclose()
    made = calls.count - before
    return {
        "capacity_calls": made,
        "capacity_seconds": round(elapsed, 2),
        "sandbox_capacity_calls_per_s": round(made / elapsed, 1),
        "capacity_failures": direct.failures,
    }
