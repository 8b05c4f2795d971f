"""The operator's commands as an operator types them, beside a running service:
`status` (with the consumer lag from the broker), `dead list|retry|drop`, `history`; and
`run` while Kafka does not answer (the dispatcher goes on, the consumers keep trying)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from service.devtools import sample_commands as c
from service.devtools.local_broker import Topics
from service.devtools.processes import free_port
from service.devtools.service_processes import Outbox
from tests.support.kafka import EventProducer
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import Processes, accept, db_upgrade, dispatch_env, ucaas_sync


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return ucaas_sync(env, cwd, *args, check=False)


def status(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = cli(env, cwd, "status", "--json")
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = orjson.loads(done.stdout)
    return shown


async def publish(kafka: str, topic: str, count: int) -> None:
    async with EventProducer(kafka) as producer:
        for n in range(count):
            await producer.raw(topic, b"{}", key=f"k{n}".encode())


def test_status_dead_and_history_from_the_command_line(
    tmp_path: Path, sandbox: SandboxAdmin, kafka: str, processes: Processes
) -> None:
    topics = Topics.fresh("ops")
    asyncio.run(topics.create(kafka))
    env = dispatch_env(f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}", sandbox.base_url)
    env.update(topics.env(), KAFKA_BOOTSTRAP_SERVERS=kafka)
    db_upgrade(env, tmp_path)
    asyncio.run(publish(kafka, topics.hr, 4))

    empty = status(env, tmp_path)
    assert empty["outbox"] == {}
    assert empty["consumer_lag_total"] == 4  # nobody consumed the four records
    assert {row["topic"] for row in empty["consumer_lag"]} == {
        topics.hr,
        topics.crm,
        topics.calendar,
    }

    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    accept(env["UCAAS_SYNC_DATABASE_URL"], [[c.create_customer("CRM-OPS")]])
    dispatcher = processes.start("one", env)
    Outbox(env["UCAAS_SYNC_DATABASE_URL"]).wait_settled([dispatcher], timeout_s=30)
    shown = status(env, tmp_path)
    assert shown["outbox"] == {"dead": 1}
    assert shown["dead"] == 1

    listed = cli(env, tmp_path, "dead", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [dead] = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (dead["type"], dead["kind"], dead["last_error_code"]) == (
        "CommandView",
        "create_customer",
        "4030",
    )
    table = cli(env, tmp_path, "dead", "list")
    assert "create_customer" in table.stdout
    assert "4030" in table.stdout

    sandbox.faults(error_rate=0.0)
    retried = cli(env, tmp_path, "dead", "retry", str(dead["id"]))
    assert retried.returncode == 0, retried.stderr
    Outbox(env["UCAAS_SYNC_DATABASE_URL"]).wait_settled([dispatcher], timeout_s=30)
    assert status(env, tmp_path)["outbox"] == {"done": 1}
    again = cli(env, tmp_path, "dead", "retry", str(dead["id"]))
    assert again.returncode == 1
    assert "is not dead" in again.stderr
    assert cli(env, tmp_path, "dead", "drop", str(dead["id"])).returncode == 1

    story = cli(env, tmp_path, "history", "customer:CRM-OPS")
    assert story.returncode == 0, story.stderr
    lines = story.stdout.splitlines()
    assert any("create_customer: done" in line for line in lines), story.stdout
    assert any("POST /customers -> 403" in line for line in lines), story.stdout
    assert any(re.search(r"POST /customers -> 20\d", line) for line in lines), story.stdout
    assert any(line.startswith("mapped  customer CRM-OPS -> UCaaS") for line in lines)
    assert cli(env, tmp_path, "history", "customer:NOBODY").returncode == 1
    dispatcher.stop()


def test_run_dispatches_while_kafka_does_not_answer(
    tmp_path: Path, sandbox: SandboxAdmin, processes: Processes
) -> None:
    env = dispatch_env(f"sqlite+aiosqlite:///{tmp_path / 'away.db'}", sandbox.base_url)
    env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"  # nothing listens there
    db_upgrade(env, tmp_path)
    accept(env["UCAAS_SYNC_DATABASE_URL"], [[c.create_customer("CRM-AWAY")]])
    run = processes.start("away", env, ("run", "--no-poller", "--no-admin"))
    assert Outbox(env["UCAAS_SYNC_DATABASE_URL"]).wait_settled([run], timeout_s=30) == {"done": 1}
    deadline = time.monotonic() + 20
    while (
        "unreachable: connection refused" not in run.log.read_text() and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert "unreachable: connection refused" in run.log.read_text(), run.tail()
    assert run.returncode is None, run.tail()  # still running, still trying
    assert run.stop(signal.SIGTERM) == 0, run.tail()
    assert "Traceback" not in run.log.read_text(), run.tail()
    codes = [x["customer_code"] for x in sandbox.state()["customers"]]
    assert codes.count("CRM-AWAY") == 1
