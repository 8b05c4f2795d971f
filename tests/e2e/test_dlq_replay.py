"""`ucaas-sync dlq replay` end to end: the broker, the service in this process, the sandbox
over HTTP, and the command as an operator types it (three runs: each costs the CLI's
start-up, so there are no more).

The story: an HR system keeps the work e-mail in its own SCIM extension. The service,
whose policy does not read it, refuses the joiner (no e-mail): the record goes to the
dead-letter topic. The operator adds the attribute to the policy (and restarts the service),
lists the replay (--dry-run: nothing sent, nothing marked, nothing audited), replays it:
the record is back on the HR topic with its key and headers and where it came from, the
row is marked and the run audited, and the service takes it this time: the user exists.
A second replay sends nothing.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from connectors.events.replay import read_to_end
from service.app.bootstrap import bootstrap
from service.devtools.local_broker import Topics
from service.devtools.service_processes import Outbox
from service.intake.licences import LicencePolicy
from service.settings import Settings
from tests.e2e.test_kafka_intake import (
    InProcess,
    email_of,
    scim_user,
    service_env,
    tenant_view,
    users_by_email,
)
from tests.support.databases import sqlite_url
from tests.support.kafka import EventProducer, cloudevent, read_topic
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import ucaas_sync

ACME = "urn:example:params:scim:schemas:extension:acme:2.0:User"
POLICY = f"""
default_apps = ["vc"]

[attributes]
email = ["emails[primary eq true].value", "{ACME}:workEmail"]
"""


@asynccontextmanager
async def serving(
    env: dict[str, str], topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[InProcess]:
    """The service in this process (consumers and dispatcher) as `run` wires them, with
    `env` as an operator sets it; stopped on leaving."""
    with monkeypatch.context() as patched:
        for name, value in env.items():
            if name.startswith(("UCAAS_SYNC_", "KAFKA_")):
                patched.setenv(name, value)
        service = await bootstrap(Settings())
    consumer = service.consumer()
    producer = await EventProducer(env["KAFKA_BOOTSTRAP_SERVERS"]).start()
    await consumer.start()
    running = InProcess(
        service,
        consumer,
        asyncio.create_task(service.dispatcher.run()),
        topics,
        Outbox(env["UCAAS_SYNC_DATABASE_URL"]),
        producer,
        env,
    )
    try:
        yield running
    finally:
        await running.stop()


def scalar(outbox: Outbox, query: str) -> Any:
    with outbox.engine.connect() as conn:
        return conn.scalar(sa.text(query))


async def until(check: Any, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.1)


def replay(env: dict[str, str], cwd: Path, *args: str) -> tuple[list[dict[str, Any]], Any]:
    """`ucaas-sync dlq replay ARGS --json`: (one line per dead letter, the summary)."""
    done = ucaas_sync(env, cwd, "dlq", "replay", *args, "--json")
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    return lines[:-1], lines[-1]


async def test_a_joiner_refused_for_its_email_is_replayed_once_the_policy_reads_it(
    tmp_path: Path, sandbox: SandboxAdmin, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in [n for n in os.environ if n.startswith("UCAAS_SYNC_")]:
        monkeypatch.delenv(name)
    topics = Topics.fresh("replay")
    await topics.create(kafka)
    env = service_env(sqlite_url(tmp_path), sandbox, kafka, topics)
    dlq = topics.hr + ".dlq"
    joiner = scim_user("E7")
    del joiner["emails"]
    joiner["userName"] = "E7"  # HR's login, not an e-mail
    joiner["schemas"].append(ACME)
    joiner[ACME] = {"workEmail": email_of("E7")}
    event = cloudevent("hr.user.joined", "E7", joiner)
    headers = [("content-type", b"application/cloudevents+json"), ("traceparent", b"00-a1-b2-01")]

    async with serving(env, topics, monkeypatch) as run:
        # 1. The policy does not read the extension: the joiner is refused, dead-lettered.
        await run.onboard("vc")
        refused = await run.producer.raw(topics.hr, orjson.dumps(event), key=b"E7", headers=headers)
        await run.settle()
        await until(lambda: scalar(run.outbox, "SELECT count(*) FROM dead_letter") == 1, "a row")
        assert scalar(run.outbox, "SELECT reason FROM dead_letter").startswith("no e-mail")
        assert email_of("E7") not in users_by_email(tenant_view(sandbox))

        # 2. The mended policy. The service reads it on start; a restart is stood in for by
        # giving the running intake the policy as bootstrap loads it (a second join of the
        # consumer group costs ~10 s on the local broker, the first member's session).
        policy = tmp_path / "policy.toml"
        policy.write_text(POLICY, encoding="utf-8")
        run.consumer.intake.policy = LicencePolicy.load(policy)

        # --dry-run lists it, and sends, marks and audits nothing.
        lines, summary = replay(env, tmp_path, dlq, "--dry-run")
        assert [(x["origin"], x["outcome"]) for x in lines] == [
            (f"{topics.hr}/{refused.partition}/{refused.offset}", "would replay")
        ]
        assert (summary["would_replay"], summary["replayed"], summary["marked"]) == (1, 0, 0)
        assert scalar(run.outbox, "SELECT count(*) FROM dead_letter WHERE replayed_at IS NULL") == 1
        assert scalar(run.outbox, "SELECT count(*) FROM audit_log") == 0

        # The replay: back on the HR topic as it was, with where it came from.
        lines, summary = replay(env, tmp_path, dlq, "--error", "invalid_data", "--since", "1h")
        assert (summary["replayed"], summary["marked"], summary["failed"]) == (1, 1, 0), summary
        (letter,) = await read_topic(kafka, dlq, expect=1)
        back = [
            r
            for r in await read_topic(kafka, topics.hr, expect=2)
            if "ucaas-sync-replayed-from" in r.headers
        ]
        assert len(back) == 1
        assert (back[0].key, back[0].value, back[0].partition) == (
            b"E7",
            refused.value,
            refused.partition,
        )
        assert back[0].headers == {
            "content-type": "application/cloudevents+json",
            "traceparent": "00-a1-b2-01",
            "ucaas-sync-replayed-from": f"{dlq}/{letter.partition}/{letter.offset}",
        }
        assert scalar(run.outbox, "SELECT count(*) FROM dead_letter WHERE replayed_at IS NULL") == 0
        with run.outbox.engine.connect() as conn:
            (entry,) = conn.execute(sa.text("SELECT actor, action, target, result FROM audit_log"))
        assert tuple(entry) == (f"cli:{getpass.getuser()}", "dlq-replay", dlq, "ok")

        # The service takes it this time: the user exists, with the extension's e-mail.
        run.inbox = 3  # the customer, its subscription, and now the joiner
        await run.settle()
        user = users_by_email(tenant_view(sandbox)).get(email_of("E7"))
        assert user is not None and user["status"] == "A", user

    # 3. A second replay sends nothing: the row is marked.
    lines, summary = replay(env, tmp_path, dlq)
    assert [x["outcome"] for x in lines] == ["skipped"]
    assert (summary["replayed"], summary["skipped"]) == (0, {"replayed": 1})
    assert len(await read_to_end(kafka, topics.hr)) == 2  # the refused record, its replay
    print(
        f"compared: refused, listed, replayed, taken, skipped in {time.monotonic() - began:.1f} s"
    )
