"""Kafka over TLS, for real: stunnel in front of Tansu brokers that advertise stunnel's
ports (tests/support/tls_broker.py), certificates made for the run. Events produced and
read back over TLS and mutual TLS with the project's own connection options (topic
creation, producer, reader, HR snapshot, lag); each refusal as one line within a bounded
time (a CA not trusted, a client certificate missing, a plaintext client on the TLS port,
a TLS client on the plaintext port, nothing listening); `ucaas-sync run` taking an HR
event over TLS into UCaaS, and stopping with exit 3 and one line when the CA is wrong.

Needs stunnel (Debian's stunnel4): skipped with the reason where it is missing, failed
instead under `make test` (UCAAS_SYNC_REQUIRE_SYSTEM_DEPS, as `make system-deps`
installs it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.events.kafka_failures import KafkaSettingsError, KafkaUnreachableError
from connectors.events.kafka_security import KafkaConnection, probe
from connectors.events.lag import LagUnknownError, consumer_lag
from connectors.hr.snapshot import SnapshotError, latest_records
from service.devtools.local_broker import Topics, create_topics
from service.devtools.processes import free_port
from service.devtools.service_processes import Outbox
from tests.e2e.test_kafka_intake import (
    TENANT,
    company,
    crm,
    email_of,
    hr,
    purchase,
    service_env,
    settle,
    tenant_view,
    users_by_email,
)
from tests.support.databases import sqlite_url
from tests.support.kafka import EventProducer, cloudevent, read_topic
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import Processes, db_upgrade, ucaas_sync
from tests.support.tls_broker import TlsBroker, stunnel_binary, unavailable

BOUND_S = 3.0  # connect_timeout_s in the refusal tests: each must end soon after


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    if stunnel_binary() is None:
        unavailable("stunnel not found: Debian's stunnel4 package (`make system-deps`)")
    broker = TlsBroker.start(tmp_path_factory.mktemp("tls-broker"))
    yield broker
    broker.stop()


async def round_trip(conn: KafkaConnection) -> None:
    """Create a topic, produce an event, read it back, as a snapshot too, and ask the lag:
    every kind of client the project makes, over this connection."""
    topic = Topics.fresh("tls").hr
    await create_topics(conn, [topic], partitions=1)
    event = cloudevent("hr.user.joined", "E-TLS", {"hello": "over TLS"})
    async with EventProducer(conn) as producer:
        sent = await producer.event(topic, event)
    read = await read_topic(conn, topic, expect=1)
    assert [r.value for r in read] == [sent.value]
    snapshot = await latest_records(conn, topic, timeout_s=20)
    assert [r.key for r in snapshot] == [b"E-TLS"]
    lag = await consumer_lag(conn, "tls-group", [topic], timeout_s=10)
    assert lag == {(topic, 0): 1}  # nobody in that group took it


def one_line(exc: BaseException, where: str) -> str:
    line = str(exc)
    assert "\n" not in line, line
    assert line.startswith(f"Kafka at {where}: "), line
    return line


async def test_events_go_over_tls_with_the_projects_options(tls: TlsBroker) -> None:
    conn = tls.settings().connection(tls.tls)
    await probe(conn)
    await round_trip(conn)


async def test_mutual_tls_needs_the_client_certificate(tls: TlsBroker) -> None:
    with_cert = tls.settings(
        ssl_certfile=tls.certs.client.cert, ssl_keyfile=tls.certs.client.key
    ).connection(tls.mtls)
    await probe(with_cert)
    await round_trip(with_cert)

    without = tls.settings(connect_timeout_s=BOUND_S).connection(tls.mtls)
    began = time.monotonic()
    with pytest.raises(KafkaSettingsError) as refused:
        await probe(without)
    assert time.monotonic() - began < BOUND_S + 2
    line = one_line(refused.value, tls.mtls)
    print(f"\nno client certificate: {line}")
    assert "client certificate" in line, line


@pytest.mark.parametrize("ca", ["stranger", "system"])
async def test_a_ca_that_did_not_sign_the_broker_is_one_line(tls: TlsBroker, ca: str) -> None:
    cafile = tls.certs.stranger_ca if ca == "stranger" else None
    conn = tls.settings(ssl_cafile=cafile, connect_timeout_s=BOUND_S).connection(tls.tls)
    with pytest.raises(KafkaSettingsError) as refused:
        await probe(conn)
    line = one_line(refused.value, tls.tls)
    print(f"\nwrong CA ({ca}): {line}")
    assert "TLS certificate verification failed" in line
    assert "check ssl_cafile" in line
    # the lag (status, admin API) and the HR snapshot (reconcile) say the same
    with pytest.raises(LagUnknownError, match="TLS certificate verification failed"):
        await consumer_lag(conn, "tls-group", ["hr.events"], timeout_s=BOUND_S)
    with pytest.raises(SnapshotError, match="TLS certificate verification failed"):
        await latest_records(conn, "hr.events", timeout_s=BOUND_S)


async def test_a_plaintext_client_on_the_tls_port_is_one_line_in_bounded_time(
    tls: TlsBroker,
) -> None:
    began = time.monotonic()
    with pytest.raises(KafkaSettingsError) as refused:
        await probe(KafkaConnection(tls.tls, timeout_s=BOUND_S))
    assert time.monotonic() - began < BOUND_S + 2
    line = one_line(refused.value, tls.tls)
    print(f"\nplaintext client on the TLS port: {line}")
    assert "security_protocol=PLAINTEXT" in line


async def test_a_tls_client_on_a_plaintext_port_is_one_line_in_bounded_time(
    tls: TlsBroker,
) -> None:
    conn = tls.settings(connect_timeout_s=BOUND_S).connection(tls.plain)
    began = time.monotonic()
    with pytest.raises(KafkaSettingsError) as refused:
        await probe(conn)
    assert time.monotonic() - began < BOUND_S + 2
    line = one_line(refused.value, tls.plain)
    print(f"\nTLS client on the plaintext port: {line}")
    assert "a plaintext port?" in line


async def test_nothing_listening_is_unreachable_not_refused(tls: TlsBroker) -> None:
    where = f"127.0.0.1:{free_port()}"
    with pytest.raises(KafkaUnreachableError) as away:
        await probe(tls.settings().connection(where))
    assert one_line(away.value, where).endswith("connection refused (nothing listens there)")


def test_run_takes_an_hr_event_over_tls(
    tls: TlsBroker, tmp_path: Path, sandbox: SandboxAdmin, processes: Processes
) -> None:
    """`ucaas-sync run` configured only by environment variables: events in over TLS, a
    bad record out to its dead-letter topic over TLS."""
    import asyncio

    topics = Topics.fresh("tls-run")
    conn = tls.settings().connection(tls.tls)
    asyncio.run(topics.create(conn))
    database = sqlite_url(tmp_path)
    env = {**service_env(database, sandbox, tls.tls, topics), **tls.env()}
    db_upgrade(env, tmp_path)
    run = processes.start("tls-run", env, ("run", "--no-poller", "--no-admin"))

    async def publish() -> None:
        async with EventProducer(conn) as producer:
            await producer.event(topics.crm, crm("crm.company.created", TENANT, company()))
            bought = purchase("P-vc", app="vc")
            await producer.event(topics.crm, crm("crm.subscription.purchased", TENANT, bought))
            await producer.event(topics.hr, hr("joined", "E-TLS"))
            # and one record that is no event: to the dead-letter topic, by the broker's
            # own producer, over TLS as well
            await producer.raw(topics.hr, b"not an event", key=b"E-BAD")
        await settle(Outbox(database), 3, timeout_s=60, processes=(run,))
        letters = await read_topic(conn, topics.hr + ".dlq", expect=1, timeout_s=30)
        assert [r.key for r in letters] == [b"E-BAD"], run.tail()

    asyncio.run(publish())
    assert email_of("E-TLS") in users_by_email(tenant_view(sandbox)), run.tail()
    assert "Traceback" not in run.log.read_text(), run.tail()


def test_run_stops_with_one_line_and_exit_3_on_a_wrong_ca(
    tls: TlsBroker, tmp_path: Path, sandbox: SandboxAdmin
) -> None:
    topics = Topics.fresh("tls-wrong-ca")
    env = {
        **service_env(sqlite_url(tmp_path), sandbox, tls.tls, topics),
        **tls.env(
            UCAAS_SYNC_KAFKA_SSL_CAFILE=str(tls.certs.stranger_ca),
            UCAAS_SYNC_KAFKA_CONNECT_TIMEOUT_S=str(BOUND_S),
        ),
    }
    db_upgrade(env, tmp_path)
    began = time.monotonic()
    done = ucaas_sync(env, tmp_path, "run", "--no-poller", "--no-admin", check=False)
    took = time.monotonic() - began
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    print(f"\n`ucaas-sync run` with a wrong CA, exit 3 after {took:.1f} s: {last}")
    assert last.startswith(f"error: Kafka at {tls.tls}: TLS certificate verification failed")
    assert took < 30
