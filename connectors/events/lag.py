"""A consumer group's lag per partition: the end offset minus the group's committed offset.

Asked from outside the group, so any process can tell: the CLI's `status`, the admin API
of a dispatcher-only replica, a test. A consumer carrying the group's id reads the
committed offsets without joining the group (aiokafka's admin client cannot decode every
broker's OffsetFetch answer: Tansu's, for one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.events.kafka_failures import KafkaSettingsError, KafkaUnreachableError
from connectors.events.kafka_security import KafkaConnection, as_connection, probe

Offsets = dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (committed, end)


class LagUnknownError(RuntimeError):
    """The broker did not answer in time: report the lag as unknown, try again later."""


async def consumer_lag(
    bootstrap: KafkaConnection | str, group: str, topics: Sequence[str], *, timeout_s: float = 5.0
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> records not yet committed by `group`."""
    offsets = await group_offsets(bootstrap, group, topics, timeout_s=timeout_s)
    return {tp: max(0, end - done) for tp, (done, end) in offsets.items()}


async def group_offsets(
    bootstrap: KafkaConnection | str, group: str, topics: Sequence[str], *, timeout_s: float = 5.0
) -> Offsets:
    """(topic, partition) -> (offset committed by `group`, end offset). A partition the
    group never committed counts from its beginning."""
    conn = as_connection(bootstrap)
    try:
        return await asyncio.wait_for(_offsets(conn, group, topics), timeout_s)
    except Exception as exc:
        raise LagUnknownError(f"consumer lag unknown: {await _why(conn, exc, timeout_s)}") from None


async def _why(conn: KafkaConnection, exc: Exception, timeout_s: float) -> str:
    """After a failure only (a lag read costs no extra connection otherwise): the probe's
    one line, a refused certificate or password rather than "Unable to bootstrap"."""
    try:
        await probe(replace(conn, timeout_s=min(conn.timeout_s, timeout_s)))
    except (KafkaSettingsError, KafkaUnreachableError) as refused:
        return str(refused)
    except Exception:  # noqa: S110 - the probe could not say more than the failure itself
        pass
    return f"{type(exc).__name__}: {exc}"


async def _offsets(bootstrap: KafkaConnection | str, group: str, topics: Sequence[str]) -> Offsets:
    consumer = AIOKafkaConsumer(
        **as_connection(bootstrap).client_kwargs(), group_id=group, enable_auto_commit=False
    )
    try:
        await consumer.start()
        await consumer.topics()  # the cluster's metadata: the partitions below
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}
        consumer.assign(partitions)
        beginning = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        offsets: Offsets = {}
        for tp in partitions:
            committed = await consumer.committed(tp)
            done = committed if committed is not None else beginning[tp]
            offsets[(tp.topic, tp.partition)] = (done, end[tp])
        return offsets
    finally:
        await consumer.stop()
