"""`ucaas-sync reconcile --hr-snapshot` as an operator runs it: a process against a sandbox
process and a SQLite database, the snapshot a SCIM ListResponse file or a topic on the
local broker. Staff are provisioned through the intake and dispatched first.

Run the Kafka test under the local broker:
    .venv/bin/ucaas-sync broker -- .venv/bin/pytest -q tests/e2e/test_reconcile_hr_cli.py
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from service.app.bootstrap import bootstrap
from service.devtools.local_broker import create_topics
from service.outbox.tables import OUTBOX
from service.reconcile import SOURCE
from tests.integration.conftest import service_settings
from tests.support.databases import sqlite_url
from tests.support.hr_snapshot import enterprise_user, list_response, provision, settle
from tests.support.kafka import EventProducer, cloudevent
from tests.support.processes import BIN
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import dispatch_env

T = "CRM-1"
STAFF = ("E1", "E2", "E3", "E4", "E5")


def prepare(tmp_path: Path, sandbox: SandboxAdmin, *, staff: tuple[str, ...] = STAFF) -> None:
    """Provision `staff` (or, with none, only dispatch what is queued)."""

    async def run() -> None:
        service = await bootstrap(service_settings(sqlite_url(tmp_path), sandbox), migrate=True)
        try:
            if staff:
                await provision(service, T, staff)
            else:
                await settle(service)
        finally:
            await service.aclose()

    asyncio.run(run())


def cli(
    tmp_path: Path, sandbox: SandboxAdmin, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ucaas-sync"), "reconcile", *args],
        env=dispatch_env(sqlite_url(tmp_path), sandbox.base_url) | env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def repairs(tmp_path: Path) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ucaas-sync.db'}")
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(OUTBOX.c.kind, OUTBOX.c.entity, OUTBOX.c.status)
            .where(OUTBOX.c.event_source == SOURCE)
            .order_by(OUTBOX.c.id)
        ).all()
    engine.dispose()
    return [(k, e, s) for k, e, s in found]


def lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def users(sandbox: SandboxAdmin) -> dict[str, tuple[str, bool]]:
    """E-mail -> (status, has a vc licence), from the sandbox's state."""
    state = sandbox.state()
    return {
        u["email"]: (u["status"], bool(((u.get("apps") or {}).get("vc") or {}).get("access")))
        for u in state["users"]
        if u["user_type"] == "AP"
    }


def test_a_scim_list_response_finds_orphans_and_leavers_and_repairs_them(
    tmp_path: Path, sandbox: SandboxAdmin
) -> None:
    prepare(tmp_path, sandbox)
    bad = enterprise_user("E6", email="no-address")
    bad["userName"] = "e6"
    people = [
        enterprise_user("E1"),  # its tenant from --tenant
        enterprise_user("E2", tenant=T, active=False),
        enterprise_user("E4", tenant=T),
        enterprise_user("E5", tenant=T),
        bad,
    ]
    snapshot = tmp_path / "hr.json"
    snapshot.write_bytes(orjson.dumps(list_response(people)))
    spec = ("--hr-snapshot", str(snapshot), "--tenant", T)

    found = cli(tmp_path, sandbox, *spec)
    assert found.returncode == 1, found.stderr
    out = found.stdout
    assert "leaver-still-active" in out and "orphan" in out
    assert out.count("would queue: revoke_licence, suspend_user") == 2
    assert "skipped Resources[4] (E6): 'no-address' is not a valid e-mail address" in out
    assert (
        "HR snapshot: 4 people (1 record(s) skipped); 5 managed users checked: 1 orphans, "
        "1 leavers still active, 2 repairable"
    ) in out

    as_json = lines(cli(tmp_path, sandbox, *spec, "--json"))
    leaver, orphan, skipped, summary = as_json
    assert (leaver["finding"], leaver["employee_ids"], leaver["ucaas_status"]) == (
        "leaver-still-active",
        ["E2"],
        "A",
    )
    assert (orphan["finding"], orphan["employee_ids"], orphan["licences"]) == (
        "orphan",
        ["E3"],
        ["E3:vc"],
    )
    assert [c["kind"] for c in orphan["commands"]] == ["revoke_licence", "suspend_user"]
    assert (skipped["skipped"], skipped["employee_id"]) == ("Resources[4]", "E6")
    assert {k: summary[k] for k in ("people", "checked", "orphans", "leavers_still_active")} == {
        "people": 4,
        "checked": 5,
        "orphans": 1,
        "leavers_still_active": 1,
    }
    assert (summary["queued_commands"], summary["unresolved"], summary["suspect"]) == (0, 2, [])

    # A page of a paged answer (totalResults beyond the resources) deprovisions nobody...
    truncated = tmp_path / "page.json"
    truncated.write_bytes(orjson.dumps(list_response(people[:2], total=50)))
    refused = cli(tmp_path, sandbox, "--hr-snapshot", str(truncated), "--tenant", T, "--repair")
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: --repair refused: totalResults is 50 but 2 resources are present (a page of "
        "a paged answer?) (--force to repair anyway)\n"
    )
    assert "warning: totalResults is 50" in refused.stdout
    assert repairs(tmp_path) == []

    # ... and the whole list does
    repaired = cli(tmp_path, sandbox, *spec, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert repaired.stdout.count("queued: revoke_licence, suspend_user") == 2
    assert [(k, e) for k, e, _ in repairs(tmp_path)] == [
        ("revoke_licence", "user:CRM-1:E2"),
        ("suspend_user", "user:CRM-1:E2"),
        ("revoke_licence", "user:CRM-1:E3"),
        ("suspend_user", "user:CRM-1:E3"),
    ]
    prepare(tmp_path, sandbox, staff=())
    assert users(sandbox) == {
        "e1@example.com": ("A", True),
        "e2@example.com": ("S", False),
        "e3@example.com": ("S", False),
        "e4@example.com": ("A", True),
        "e5@example.com": ("A", True),
    }
    after = cli(tmp_path, sandbox, *spec)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "already suspended, no licence mapped" in after.stdout
    assert "1 orphans, 0 leavers still active, 0 repairable" in after.stdout


def test_usage_errors_exit_2(tmp_path: Path, sandbox: SandboxAdmin) -> None:
    missing = cli(tmp_path, sandbox, "--hr-snapshot", str(tmp_path / "nope.json"))
    assert (missing.returncode, missing.stderr) == (
        2,
        f"error: {tmp_path / 'nope.json'}: No such file or directory\n",
    )
    not_scim = tmp_path / "x.json"
    not_scim.write_text('{"Resources": []}')
    wrong = cli(tmp_path, sandbox, "--hr-snapshot", str(not_scim))
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "error: not a SCIM ListResponse: schemas: Field required\n",
    )
    kind = cli(tmp_path, sandbox, "--hr-snapshot", str(not_scim), "--kind", "user")
    assert (kind.returncode, kind.stderr) == (2, "error: --kind does not apply to --hr-snapshot\n")
    force = cli(tmp_path, sandbox, "--force")
    assert (force.returncode, force.stderr) == (2, "error: --force applies to --hr-snapshot only\n")


def test_an_empty_snapshot_is_refused_unless_forced(tmp_path: Path, sandbox: SandboxAdmin) -> None:
    prepare(tmp_path, sandbox, staff=("E1", "E2"))
    empty = tmp_path / "empty.json"
    empty.write_bytes(orjson.dumps(list_response([])))
    spec = ("--hr-snapshot", str(empty), "--tenant", T, "--repair")
    refused = cli(tmp_path, sandbox, *spec)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: --repair refused: the snapshot {empty} holds nobody")
    assert repairs(tmp_path) == []
    forced = cli(tmp_path, sandbox, *spec, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert len(repairs(tmp_path)) == 4  # still through the guard: 2 people, under 20


# -- a compacted topic ---------------------------------------------------------------------------
def test_a_topics_latest_events_are_the_population(
    tmp_path: Path, sandbox: SandboxAdmin, kafka: str
) -> None:
    prepare(tmp_path, sandbox)
    topic = f"hr.snapshot.{uuid.uuid4().hex[:8]}"

    def event(kind: str, employee: str, **kw: Any) -> dict[str, Any]:
        return cloudevent(f"hr.user.{kind}", employee, enterprise_user(employee, tenant=T, **kw))

    async def produce() -> None:
        await create_topics(kafka, [topic], partitions=3)
        async with EventProducer(kafka) as producer:
            for e in STAFF:
                await producer.event(topic, event("joined", e))
            await producer.event(topic, event("updated", "E1", department="Sales"))
            await producer.event(topic, event("left", "E2"))  # a leaver UCaaS has not seen
            await producer.raw(topic, None, key=b"E3")  # a tombstone: HR no longer has E3
            await producer.event(topic, event("leave_started", "E5", active=False))  # on leave
            await producer.raw(topic, b"not json", key=b"E6")

    asyncio.run(produce())
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka}
    spec = ("--hr-snapshot", f"kafka:{topic}")

    found = cli(tmp_path, sandbox, *spec, "--json", **env)
    assert found.returncode == 1, found.stderr
    leaver, orphan, skipped, summary = lines(found)
    assert [(x["finding"], x["employee_ids"]) for x in (leaver, orphan)] == [
        ("leaver-still-active", ["E2"]),
        ("orphan", ["E3"]),
    ]
    assert skipped["employee_id"] == "E6"
    assert skipped["reason"].startswith("not_json: ")
    assert (summary["snapshot"], summary["people"], summary["tombstones"]) == (
        f"kafka:{topic}",
        4,
        1,
    )
    assert summary["tenants"] == [T]

    repaired = cli(tmp_path, sandbox, *spec, "--repair", **env)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert {e for _, e, _ in repairs(tmp_path)} == {"user:CRM-1:E2", "user:CRM-1:E3"}

    missing = cli(tmp_path, sandbox, "--hr-snapshot", "kafka:no.such.topic", **env)
    assert missing.returncode == 2
    assert missing.stderr == "error: topic no.such.topic does not exist (or has no partitions)\n"
