"""Records written back, for `dlq replay` (the topic is read by topic_reader.py): what
the shell needs of Kafka, nothing of the service.

`Republisher` produces records with a non-idempotent producer (Tansu takes no other),
`acks=1`, and answers, record by record, whether the broker acknowledged it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.events.kafka_security import KafkaConnection, as_connection
from connectors.events.publisher import Outgoing
from connectors.events.topic_reader import TopicError, read_to_end

__all__ = ["Outgoing", "Republisher", "TopicError", "read_to_end"]


class Republisher:
    """`async with Republisher(conn) as out: await out.send(records)`."""

    def __init__(self, bootstrap: KafkaConnection | str) -> None:
        self.connection = as_connection(bootstrap)
        self.producer = AIOKafkaProducer(
            **self.connection.client_kwargs(),
            enable_idempotence=False,  # Tansu takes no idempotent producer; acks=1 is enough
            acks=1,
            linger_ms=5,
        )

    async def __aenter__(self) -> Republisher:
        try:
            await self.producer.start()
        except KafkaError as exc:
            await self.producer.stop()
            where = self.connection.bootstrap
            raise TopicError(f"producer at {where}: {type(exc).__name__}") from None
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.producer.stop()

    async def check(self, topic: str) -> None:
        """TopicError unless the broker knows `topic` (a send to a topic it does not know
        would wait for its metadata until the request times out)."""
        try:
            found = await asyncio.wait_for(
                self.producer.partitions_for(topic), self.connection.timeout_s
            )
        except (TimeoutError, KafkaError):
            found = None
        if not found:
            raise TopicError(f"topic {topic} does not exist (or has no partitions)")

    async def send(self, records: Sequence[Outgoing]) -> list[str | None]:
        """Produce `records` (one partition's in order: the producer keeps one request in
        flight per partition) and wait for each acknowledgement: per record, None when the
        broker acknowledged it, else why not (one line). After a record that could not
        be queued, none is sent."""
        futures: list[asyncio.Future[object]] = []
        refused: str | None = None
        for r in records:
            try:
                futures.append(
                    await self.producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                )
            except KafkaError as exc:
                refused = _why(exc)
                break
        answers = await asyncio.gather(*futures, return_exceptions=True)
        said = [_why(a) if isinstance(a, BaseException) else None for a in answers]
        return said + [refused or "not sent"] * (len(records) - len(said))


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)[:300]
