"""The Kafka consumers (faststream + aiokafka): HR and CRM events into the outbox.

One consumer group reads the topics in batches. A batch is taken in one database
transaction (intake.py); records that are not usable go to `<topic>.dlq` with headers
naming the error, the reason and where they came from; only then are the offsets
committed. If the database or the dead-letter topic fails, nothing is committed and the
batch comes again after a pause (the inbox makes the second time harmless).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.cloudevents import Envelope, InvalidRecordError, Record, parse
from connectors.events.kafka_security import KafkaConnection, as_connection, faststream_security
from service.backoff import backoff_s
from service.intake.shell import Intake, Taken
from service.observability import metrics
from service.outbox.sql import insert_for
from service.outbox.tables import DEAD_LETTERS
from service.settings import KafkaSettings

log = logging.getLogger("ucaas_sync.consumers")


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    error: str
    reason: str
    event_id: str | None = None

    def headers(self) -> dict[str, str]:
        """The reason and origin, plus the record's own headers (decoded)."""
        kept = {
            k: v.decode("utf-8", "replace")
            for k, v in self.record.headers
            if not k.startswith("dlq.")
        }
        return {
            **kept,
            "dlq.error": self.error,
            "dlq.reason": self.reason,
            "dlq.topic": self.record.topic,
            "dlq.partition": str(self.record.partition),
            "dlq.offset": str(self.record.offset),
            "dlq.at": datetime.now(UTC).isoformat(),
        }


@dataclass
class IntakeStats:
    records: int = 0
    batches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # accepted, duplicate, invalid
    dead_letters: Counter[str] = field(default_factory=Counter)  # by error
    failures: int = 0


def refused_data(exc: DBAPIError) -> bool:
    """Whether the database refused the data (the same data would be refused again), not
    failed for its own reasons (a lost connection, a lock or statement timeout)."""
    if exc.connection_invalidated:
        return False
    if isinstance(exc, DataError | IntegrityError):
        return True
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return str(state or "")[:2] in ("22", "23")


async def record_dead_letters(engine: AsyncEngine, letters: Sequence[DeadLetter]) -> None:
    """One row per dead letter, for `status` and the admin API. A batch taken again after
    a failure dead-letters its records again: the row is kept once."""
    now = datetime.now(UTC)
    rows = [
        {
            "topic": letter.record.topic,
            "partition": letter.record.partition,
            "offset": letter.record.offset,
            "key": _text(letter.record.key, 255),
            "event_id": (letter.event_id or "")[:255] or None,
            "error": letter.error[:40],
            "reason": letter.reason[:1000],
            "at": now,
        }
        for letter in letters
    ]
    async with engine.begin() as conn:
        await conn.execute(
            insert_for(engine.dialect.name)(DEAD_LETTERS).on_conflict_do_nothing(
                index_elements=["topic", "partition", "offset"]
            ),
            rows,
        )


def _text(raw: bytes | None, limit: int) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", "replace").replace("\x00", "")[:limit]


def record_of(raw: Any) -> Record:
    return Record(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple((k, bytes(v) if v is not None else b"") for k, v in (raw.headers or ())),
        timestamp_ms=raw.timestamp,
    )


async def _raw(message: Any, original: Any = None) -> Any:
    # Bodies stay bytes: validation is ours, and a bad record must reach the handler (and
    # the dead-letter topic), not fail in a decoder and come back for ever.
    return message.body


def _readable(value: bytes | None) -> bytes:
    return (value or b"").decode("utf-8", "replace").encode()


async def _parse(raw: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """faststream's parser decodes every header as UTF-8: one header that is not (or a
    null one) failed the whole batch before the handler saw it, again and again. It is
    given readable copies; the handler gets the records as they came (a binary-mode
    `ce_id` of invalid UTF-8 must be refused, not read as U+FFFD)."""
    records = raw if isinstance(raw, tuple) else (raw,)
    readable = tuple(
        dataclasses.replace(r, headers=[(k, _readable(v)) for k, v in (r.headers or ())])
        for r in records
    )
    message = await original(readable if isinstance(raw, tuple) else readable[0])
    message.raw_message = raw
    return message


class EventConsumer:
    def __init__(
        self,
        settings: KafkaSettings,
        intake: Intake,
        bootstrap: KafkaConnection | str,
        *,
        topics: Sequence[str] | None = None,
        retry_pause_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.topics = tuple(topics or settings.topics)
        self.retry_pause_s = retry_pause_s
        self.stats = IntakeStats()
        self._failures_in_a_row = 0
        # TLS and SASL as every other client of the project has them; the broker's own
        # producer (the dead-letter topics) shares them.
        self.connection = as_connection(bootstrap)
        security, token_provider = faststream_security(self.connection.options)
        self.broker = KafkaBroker(
            self.connection.bootstrap,
            security=security,
            sasl_oauth_token_provider=token_provider,
            enable_idempotence=False,  # Tansu takes no idempotent producer; acks=1 is enough
            acks=1,
            serializer=None,
            logger=log,
            log_level=logging.DEBUG,
            graceful_timeout=30.0,
        )
        self.broker.subscriber(
            *self.topics,
            group_id=settings.group_id,
            batch=True,
            max_records=settings.max_records,
            # A broker that answers an empty fetch only when the wait is over (Tansu), and
            # the client's pause after an empty poll, are both latency for the next record.
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            batch_timeout_ms=settings.fetch_max_wait_ms,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 5),
            decoder=_raw,
            parser=_parse,
            title="HR, CRM and calendar feed events",
        )(self._on_batch)

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    async def _on_batch(self, body: list[bytes], message: KafkaMessage) -> None:
        raw = message.raw_message
        records = [record_of(r) for r in (raw if isinstance(raw, tuple) else (raw,))]
        try:
            await self.handle(records)
        except Exception:
            self.stats.failures += 1
            self._failures_in_a_row += 1
            pause = backoff_s(
                self._failures_in_a_row, base_s=self.retry_pause_s, cap_s=30.0, jitter="none"
            )
            log.exception("batch of %d records not taken; again in %.1f s", len(records), pause)
            await asyncio.sleep(pause)  # then the nack seeks back and the batch comes again
            raise
        self._failures_in_a_row = 0

    async def handle(self, records: Sequence[Record]) -> list[Taken | DeadLetter]:
        """Take a batch: commands into the outbox, unusable records to dead-letter topics."""
        envelopes: list[Envelope] = []
        envelope_ids: dict[int, str] = {}
        answers: list[Taken | DeadLetter | None] = []
        for index, record in enumerate(records):
            try:
                envelopes.append(parse(record))
                envelope_ids[index] = envelopes[-1].id
                answers.append(None)
            except InvalidRecordError as exc:
                answers.append(DeadLetter(record, exc.error, exc.reason))
        taken = iter(await self._take(envelopes))
        for index, answer in enumerate(answers):
            if answer is None:
                result = next(taken)
                envelope_record = records[index]
                answers[index] = (
                    DeadLetter(
                        envelope_record,
                        result.error or "invalid",
                        result.reason or "",
                        envelope_ids.get(index),
                    )
                    if result.outcome == "invalid"
                    else result
                )
        final = [a for a in answers if a is not None]
        letters = [a for a in final if isinstance(a, DeadLetter)]
        for letter in letters:
            await self._dead_letter(letter)
        if letters:
            await record_dead_letters(self.intake.uow.engine, letters)
        self.stats.batches += 1
        self.stats.records += len(records)
        for answer in final:
            self.stats.outcomes[
                "invalid" if isinstance(answer, DeadLetter) else answer.outcome
            ] += 1
        return final

    async def _take(self, envelopes: Sequence[Envelope]) -> list[Taken]:
        """The intake's answers. When the database refuses a batch for its data (SQLSTATE
        class 22 or 23: a NUL character, say), the records are taken one by one and the one
        refused is answered `invalid`: it goes to the dead-letter topic instead of failing
        its batch, and every record with it, for ever."""
        try:
            return await self.intake.take(envelopes)
        except DBAPIError as exc:
            if not refused_data(exc):
                raise
            log.warning(
                "the database refused a batch: taking its %d records one by one", len(envelopes)
            )
        answers: list[Taken] = []
        for envelope in envelopes:
            try:
                answers += await self.intake.take([envelope])
            except DBAPIError as exc:
                if not refused_data(exc):
                    raise
                reason = str(exc.orig or exc).strip().splitlines()[0][:300]
                answers.append(Taken("invalid", error="refused_by_database", reason=reason))
        return answers

    async def _dead_letter(self, letter: DeadLetter) -> None:
        record = letter.record
        topic = record.topic + self.settings.dlq_suffix
        headers = letter.headers()
        try:
            await self.broker.publish(
                record.value or b"", topic=topic, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # A record over the size limit, with the dead-letter headers, may not fit the
            # producer or the topic: sent without its value (dlq.topic, dlq.partition and
            # dlq.offset say where it is), or its batch would fail for ever.
            size = len(record.value or b"")
            headers["dlq.value_dropped"] = f"{size} bytes: too large for {topic}"
            await self.broker.publish(b"", topic=topic, key=record.key, headers=headers)
        self.stats.dead_letters[letter.error] += 1
        metrics.dead_lettered(record.topic, letter.error)
        log.warning(
            "%s[%d]@%d to %s%s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            record.topic,
            self.settings.dlq_suffix,
            letter.error,
            letter.reason,
        )
