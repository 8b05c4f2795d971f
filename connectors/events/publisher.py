"""Publishing records and waiting for the broker to have them: the results relay's
producer (at-least-once: a record counts as sent only once the broker acknowledged it).

`PublishError` is the one failure callers see, with a one-line reason: the broker could
not be reached or refused, the topic does not exist, or the acknowledgements did not come
within the time given. Whatever was not acknowledged is to be sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from connectors.events.kafka_failures import KafkaSettingsError, KafkaUnreachableError
from connectors.events.kafka_security import KafkaConnection, probe


class PublishError(Exception):
    """Nothing in the round counts as published: send it all again later."""


@dataclass(frozen=True)
class Outgoing:
    """A record to produce: value and key as they are, headers in order."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class KafkaPublisher:
    def __init__(self, connection: KafkaConnection, *, timeout_s: float = 15.0) -> None:
        self.connection = connection
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        await probe(self.connection)  # the cause in one line, not "Unable to bootstrap"
        producer = AIOKafkaProducer(
            **self.connection.client_kwargs(),
            # Tansu takes no idempotent producer; a re-send after a lost answer is the
            # same result event (same id), which consumers dedupe on
            enable_idempotence=False,
            acks="all",
            linger_ms=5,
            request_timeout_ms=int(self.timeout_s * 1000),
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer
        return producer

    async def publish(self, records: Sequence[Outgoing]) -> None:
        """Send all; return once the broker acknowledged every one, else PublishError."""
        try:
            async with asyncio.timeout(self.timeout_s):
                producer = await self._started()
                sent = [
                    await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                    for r in records
                ]
                await asyncio.gather(*sent)
        except (KafkaUnreachableError, KafkaSettingsError) as exc:
            await self.stop()
            raise PublishError(str(exc)) from None
        except TimeoutError:
            await self.stop()  # a fresh connection next round
            topics = ", ".join(sorted({r.topic for r in records}))
            raise PublishError(
                f"no acknowledgement within {self.timeout_s:.0f} s (does {topics} exist? "
                "brokers that do not create topics on first use leave the send waiting)"
            ) from None
        except UnknownTopicOrPartitionError:
            raise PublishError("the topic does not exist: create it") from None
        except KafkaError as exc:
            await self.stop()
            raise PublishError(f"{type(exc).__name__}: {exc}"[:300]) from None

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
