"""Two records that once failed their batch for ever, before any of it was taken:

- a header that is not UTF-8 (or null): faststream's parser decodes every header and
  raised before the handler, so the batch came back again and again;
- a record over the size limit: its dead-letter copy (value plus headers) was larger than
  the producer takes, so sending it raised, and the batch came back again and again.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from connectors.events.cloudevents import InvalidRecordError, Record, parse
from service.entrypoints.consumers import DeadLetter, EventConsumer, _parse, record_of
from service.settings import KafkaSettings


def consumer_record(offset: int, headers: list[tuple[str, Any]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("hr.events", 0, offset, 0, 0, b"k", b"{}", None, 1, 2, headers)


async def test_headers_that_are_not_utf8_reach_the_handler_as_they_came() -> None:
    raw = (
        consumer_record(1, [("ce_id", b"\xff\xfe"), ("ce_specversion", b"1.0")]),
        consumer_record(2, [("trace", None)]),
    )
    parser = AioKafkaBatchParser(KafkaMessage, None)
    with pytest.raises(UnicodeDecodeError):  # what faststream alone does
        await parser.parse_batch(raw)
    message = await _parse(raw, parser.parse_batch)
    assert message.raw_message is raw  # the handler reads the original bytes
    first = record_of(message.raw_message[0])
    assert dict(first.headers)["ce_id"] == b"\xff\xfe"
    with pytest.raises(InvalidRecordError) as caught:  # refused, not read as U+FFFD
        parse(first)
    assert caught.value.error == "not_cloudevent"
    assert record_of(message.raw_message[1]).headers == (("trace", b""),)


class Publisher:
    """Refuses values over `limit` bytes as aiokafka's producer does."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    async def publish(self, value: bytes, *, topic: str, key: Any, headers: Any) -> None:
        if len(value) > self.limit:
            raise MessageSizeTooLargeError("too large")
        self.sent.append((value, headers))


async def test_a_record_too_large_to_copy_is_dead_lettered_without_its_value() -> None:
    consumer = EventConsumer(KafkaSettings(), None, "127.0.0.1:9")  # type: ignore[arg-type]
    publisher = Publisher(limit=1000)
    consumer.broker = publisher  # type: ignore[assignment]
    big = Record("hr.events", 2, 77, b"k", b"x" * 5000)
    await consumer._dead_letter(DeadLetter(big, "too_large", "5000 bytes"))
    small = Record("hr.events", 2, 78, b"k", b"{bad")
    await consumer._dead_letter(DeadLetter(small, "not_json", "broken"))
    (value, headers), (kept, _) = publisher.sent
    assert value == b""
    assert headers["dlq.value_dropped"] == "5000 bytes: too large for hr.events.dlq"
    assert (headers["dlq.error"], headers["dlq.offset"]) == ("too_large", "77")
    assert kept == b"{bad"  # a record that fits keeps its value
    assert consumer.stats.dead_letters == {"too_large": 1, "not_json": 1}
