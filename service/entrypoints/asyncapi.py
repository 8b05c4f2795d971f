"""The AsyncAPI document of the topics the service reads and writes (faststream).

The running consumer takes raw records (validation is ours, so a bad record reaches the
dead-letter topic instead of failing in a decoder); this module declares the same topics
with their typed payloads on a broker that is never started, only described.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, Field

from connectors.calendar.schema import FeedData
from connectors.crm.schema import Company, Purchase
from connectors.hr.scim import HrUserData
from service.settings import KafkaSettings

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


class HrEvent(CloudEvent[HrUserData]):
    type: Literal[
        "hr.user.joined",
        "hr.user.updated",
        "hr.user.leave_started",
        "hr.user.leave_ended",
        "hr.user.left",
    ]


class CompanyEvent(CloudEvent[Company]):
    type: Literal["crm.company.created", "crm.company.updated", "crm.company.closed"]


class PurchaseEvent(CloudEvent[Purchase]):
    type: Literal["crm.subscription.purchased"]


class FeedEvent(CloudEvent[FeedData]):
    type: Literal["calendar.feed.registered", "calendar.feed.removed"]


class DeadLetter(BaseModel):
    """The original record value, unchanged. Headers: dlq.error (not_json,
    not_cloudevent, unknown_type, invalid_data, too_large), dlq.reason, dlq.topic,
    dlq.partition, dlq.offset, dlq.at, and the original headers."""

    value: bytes


def document(
    settings: KafkaSettings | None = None, *, extra: dict[str, Any] | None = None
) -> AsyncAPI:
    kafka = settings or KafkaSettings()
    broker = KafkaBroker("kafka:9092", description="any Kafka-protocol broker")

    @broker.subscriber(
        kafka.hr_topic,
        group_id=kafka.group_id,
        title=kafka.hr_topic,
        description="HR user lifecycle, keyed by employee id",
    )
    async def hr_events(event: HrEvent) -> None: ...  # pragma: no cover - described only

    @broker.subscriber(
        kafka.crm_topic,
        group_id=kafka.group_id,
        title=kafka.crm_topic,
        description="CRM companies and purchases, keyed by company id",
    )
    async def crm_events(event: CompanyEvent | PurchaseEvent) -> None: ...  # pragma: no cover

    @broker.subscriber(
        kafka.calendar_topic,
        group_id=kafka.group_id,
        title=kafka.calendar_topic,
        description="calendar feeds registered and removed, keyed by feed id",
    )
    async def feed_events(event: FeedEvent) -> None: ...  # pragma: no cover

    for topic in kafka.topics:
        broker.publisher(
            topic + kafka.dlq_suffix,
            title=topic + kafka.dlq_suffix,
            description=f"records of {topic} that could not be taken, with the reason",
            schema=DeadLetter,
        )
    for name, subscriber in (extra or {}).items():  # later topics (calendar feeds) add theirs
        broker.subscriber(name, group_id=kafka.group_id, title=name)(subscriber)
    return AsyncAPI(
        broker,
        title="ucaas-sync",
        version="0.1.0",
        description="Events the service consumes, and the dead-letter topics it writes.",
    )


def as_json(settings: KafkaSettings | None = None) -> str:
    return document(settings).to_specification().to_json()


def as_yaml(settings: KafkaSettings | None = None) -> str:
    return document(settings).to_specification().to_yaml()
