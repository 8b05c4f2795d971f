"""The HR lifecycle as real HR systems send it, end to end: Kafka, the service in-process,
the sandbox over HTTP. A termination sent as an update with SCIM active false, a rehire
under a new employee id, a notice period's update, and a withdrawn termination."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from service.devtools.service_processes import MOVING
from tests.e2e import test_kafka_intake
from tests.e2e.test_kafka_intake import (
    USER_POST,
    InProcess,
    Start,
    apps_of,
    calls,
    email_of,
    hr,
    tenant_view,
    users_by_email,
)
from tests.support.sandbox_server import SandboxAdmin

start_service = test_kafka_intake.start_service  # the fixture


def _due_counts(run: InProcess) -> tuple[int, int]:
    """(inbox rows, commands moving that are due: not dated ahead)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with run.outbox.engine.connect() as conn:
        taken = int(conn.scalar(sa.text("SELECT count(*) FROM inbox")) or 0)
        moving = conn.scalar(
            sa.text(
                "SELECT count(*) FROM outbox WHERE status IN :moving"
                " AND (effective_at IS NULL OR effective_at <= :now)"
            ).bindparams(sa.bindparam("moving", expanding=True)),
            {"moving": list(MOVING), "now": now},
        )
    return taken, int(moving or 0)


async def settle_due(run: InProcess, timeout_s: float = 30.0) -> None:
    """Until every event is taken and every command that is due has run (a termination
    dated ahead is left waiting)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        taken, moving = await asyncio.to_thread(_due_counts, run)
        if taken >= run.inbox and not moving:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not settled: {run.outbox.counts()} {run.outbox.stuck()}")


def dated_rows(run: InProcess) -> list[tuple[str, str]]:
    with run.outbox.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT kind, status FROM outbox WHERE effective_at IS NOT NULL ORDER BY id")
        )
        return [(kind, status) for kind, status in rows]


def user_of(sandbox: SandboxAdmin, employee: str) -> dict[str, Any]:
    return users_by_email(tenant_view(sandbox))[email_of(employee)]


async def test_active_false_on_an_update_terminates_and_active_true_rehires(
    start_service: Start, sandbox: SandboxAdmin
) -> None:
    run = await start_service("active-flag")
    await run.onboard("vc")
    await run.send(run.topics.hr, hr("joined", "E1"))
    await run.settle()
    hired = user_of(sandbox, "E1")
    gone = hr("updated", "E1")
    gone["data"]["active"] = False  # how Workday- or Entra-style feeds terminate
    await run.send(run.topics.hr, gone)
    await run.settle()
    left = user_of(sandbox, "E1")
    assert (left["status"], apps_of(left)) == ("S", set())
    await run.send(run.topics.hr, hr("updated", "E1"))  # active true again
    await run.settle()
    back = user_of(sandbox, "E1")
    assert (back["user_id"], back["status"], apps_of(back)) == (hired["user_id"], "A", {"vc"})


async def test_a_rehire_under_a_new_employee_id_gets_the_same_user_back(
    start_service: Start, sandbox: SandboxAdmin
) -> None:
    run = await start_service("rehire-new-id")
    await run.onboard("vc")
    await run.send(run.topics.hr, hr("joined", "E1"))
    await run.send(run.topics.hr, hr("left", "E1"))
    await run.settle()
    first = user_of(sandbox, "E1")
    assert first["status"] == "S"
    again = hr("joined", "E2")  # a new employee id, the same work e-mail
    again["data"]["userName"] = email_of("E1")
    again["data"]["emails"] = [{"value": email_of("E1"), "type": "work", "primary": True}]
    await run.send(run.topics.hr, again)
    await run.settle()
    view = tenant_view(sandbox)
    assert len(view.users) == 1  # not a second user
    back = user_of(sandbox, "E1")
    assert (back["user_id"], back["status"], apps_of(back)) == (first["user_id"], "A", {"vc"})
    assert calls(sandbox)[USER_POST] == 1


async def test_a_notice_period_update_runs_now_and_a_withdrawn_termination_never(
    start_service: Start, sandbox: SandboxAdmin
) -> None:
    run = await start_service("notice")
    await run.onboard("vc")
    for employee in ("E1", "E2"):
        await run.send(run.topics.hr, hr("joined", employee))
    await run.settle()
    month = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    soon = datetime.now(UTC) + timedelta(seconds=6)
    leaving = hr("left", "E1")
    leaving["data"]["effective_at"] = month
    await run.send(run.topics.hr, leaving)
    await run.send(run.topics.hr, hr("updated", "E1", title="Lead Engineer"))
    short = hr("left", "E2")
    short["data"]["effective_at"] = soon.isoformat()
    await run.send(run.topics.hr, short)
    await settle_due(run)
    await run.send(run.topics.hr, hr("joined", "E2"))  # rescinded before its date
    await settle_due(run)

    during = user_of(sandbox, "E1")
    assert (during["designation"], during["status"], apps_of(during)) == (
        "Lead Engineer",
        "A",
        {"vc"},
    )
    assert dated_rows(run) == [
        ("revoke_licence", "pending"),  # E1's, a month ahead
        ("suspend_user", "pending"),
        ("revoke_licence", "dropped"),  # E2's, withdrawn
        ("suspend_user", "dropped"),
    ]
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 3)
    await settle_due(run)
    kept = user_of(sandbox, "E2")
    assert (kept["status"], apps_of(kept)) == ("A", {"vc"})
