"""The AsyncAPI document of the topics the service reads and writes (faststream).

Derived from the table of event types (intake/events.py): each topic's subscriber takes
the CloudEvents of the types that table puts on it, with their data's schema. The
running consumer takes raw records (validation is ours, so a bad record reaches the
dead-letter topic instead of failing in a decoder); the broker here is never started,
only described.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, Field, create_model

from service.intake.events import EVENT_TYPES, EventType, Topic
from service.results.schema import ResultEnvelope, result_types
from service.settings import KafkaSettings, ResultsSettings

D = TypeVar("D")


class CloudEvent(BaseModel, Generic[D]):
    """A CloudEvents 1.0 envelope, structured JSON mode (binary mode: `ce_` headers)."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="unique per source; a repeat of an id is ignored")
    source: str
    type: str
    subject: str = Field(description="the entity id; also the record key")
    time: datetime | None = None
    datacontenttype: str | None = "application/json"
    data: D


class DeadLetter(BaseModel):
    """The original record value, unchanged. Headers: dlq.error (not_json,
    not_cloudevent, unknown_type, invalid_data, too_large), dlq.reason, dlq.topic,
    dlq.partition, dlq.offset, dlq.at, and the original headers. `ucaas-sync dlq replay`
    sends it back to dlq.topic with its key and original headers, plus
    ucaas-sync-replayed-from: <dead-letter topic>/<partition>/<offset>."""

    value: bytes


DESCRIPTIONS: dict[Topic, str] = {
    "hr": "HR user lifecycle, keyed by employee id",
    "crm": "CRM companies and purchases, keyed by company id",
    "calendar": "calendar feeds registered and removed, keyed by feed id",
}


def envelope_model(rows: Sequence[EventType[Any, Any, Any]]) -> type[BaseModel]:
    """The CloudEvent of these types (one domain event, one data schema)."""
    names = tuple(row.name for row in rows)
    data = rows[0].data
    one_of: Any = Literal.__getitem__(names)
    return create_model(
        f"{rows[0].domain.__name__}Envelope",
        __base__=CloudEvent[data],  # type: ignore[valid-type]
        __doc__=f"A CloudEvent of type {', '.join(names)}; data: {data.__name__}",
        type=(one_of, ...),
    )


def payloads(topic: Topic) -> list[type[BaseModel]]:
    """The CloudEvent models a topic carries, one per domain event, in the table's order."""
    groups: dict[type[Any], list[EventType[Any, Any, Any]]] = {}
    for row in EVENT_TYPES:
        if row.topic == topic:
            groups.setdefault(row.domain, []).append(row)
    return [envelope_model(rows) for rows in groups.values()]


def _describe(broker: KafkaBroker, topic: str, group: str, about: str, models: Any) -> None:
    async def events(event: Any) -> None: ...  # pragma: no cover - described only

    events.__annotations__ = {"event": models, "return": None}
    broker.subscriber(topic, group_id=group, title=topic, description=about)(events)


def result_models() -> list[type[BaseModel]]:
    """One CloudEvent model per result data model, naming the types that carry it."""
    by_data: dict[type[BaseModel], list[str]] = {}
    for name, data in result_types().items():
        by_data.setdefault(data, []).append(name)
    models: list[type[BaseModel]] = []
    for data, names in by_data.items():
        one_of: Any = Literal.__getitem__(tuple(names))
        models.append(
            create_model(
                f"{data.__name__}Event",
                __base__=ResultEnvelope[data],  # type: ignore[valid-type]
                __doc__=f"A result event of type {', '.join(names)}; data: {data.__name__}",
                type=(one_of, ...),
            )
        )
    return models


def document(
    settings: KafkaSettings | None = None, results: ResultsSettings | None = None
) -> AsyncAPI:
    kafka = settings or KafkaSettings()
    results = results or ResultsSettings()
    broker = KafkaBroker("kafka:9092", description="any Kafka-protocol broker")
    names: dict[Topic, str] = {
        "hr": kafka.hr_topic,
        "crm": kafka.crm_topic,
        "calendar": kafka.calendar_topic,
    }
    for topic, name in names.items():
        models = payloads(topic)
        union: Any = models[0]
        for model in models[1:]:
            union = union | model
        _describe(broker, name, kafka.group_id, DESCRIPTIONS[topic], union)
    for read in kafka.topics:
        broker.publisher(
            read + kafka.dlq_suffix,
            title=read + kafka.dlq_suffix,
            description=f"records of {read} that could not be taken, with the reason",
            schema=DeadLetter,
        )
    if results.enabled:
        published: Any = None
        for model in result_models():
            published = model if published is None else published | model
        for name in results.topics():
            broker.publisher(
                name,
                title=name,
                description=(
                    "what each command came to (done, dead, held for approval), keyed by "
                    "entity; at least once: dedupe on the CloudEvent id"
                ),
                schema=published,
            )
    return AsyncAPI(
        broker,
        title="ucaas-sync",
        version="0.1.0",
        description=(
            "Events the service consumes, the dead-letter topics it writes, and the "
            "result events it publishes."
        ),
    )


def as_json(settings: KafkaSettings | None = None, results: ResultsSettings | None = None) -> str:
    return document(settings, results).to_specification().to_json()


def as_yaml(settings: KafkaSettings | None = None, results: ResultsSettings | None = None) -> str:
    return document(settings, results).to_specification().to_yaml()
