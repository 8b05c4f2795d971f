"""`ucaas-sync plan --events` and `plan --live`, as an operator runs them: real processes,
and for --live a real database the intake has written."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from service.intake.licences import LicencePolicy
from service.intake.shell import Intake
from service.outbox import db
from service.outbox.tables import INBOX, OUTBOX, STATES
from service.outbox.unit_of_work import UnitOfWork
from service.settings import IntakeSettings
from tests.support.kafka import cloudevent, envelope
from tests.support.processes import BIN

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = ROOT / "docs" / "examples" / "hr-lifecycle.jsonl"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def ucaas_sync(*args: str, **env: str) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(
        [str(BIN / "ucaas-sync"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, lines, done.stderr


def user(employee: str, **extra: Any) -> dict[str, Any]:
    return {
        "userName": f"{employee.lower()}@acme.example",
        "name": {"givenName": "Emp", "familyName": employee},
        ENTERPRISE: {"employeeNumber": employee, "department": "Finance"},
        "tenant": "CRM-1",
        **extra,
    }


def events_file(path: Path, *events: dict[str, Any] | bytes) -> Path:
    path.write_bytes(
        b"\n".join(e if isinstance(e, bytes) else orjson.dumps(e) for e in events) + b"\n"
    )
    return path


def test_a_history_of_real_lifecycle_events_is_planned_in_order() -> None:
    code, lines, stderr = ucaas_sync(
        "plan", "--events", str(LIFECYCLE), "--now", "2026-12-03T12:00:00Z"
    )
    assert code == 0, stderr
    assert [(line["event"], line["kind"]) for line in lines] == [
        ("hr-001", "create_user"),
        ("hr-001", "assign_licence"),
        ("hr-002", "revoke_licence"),  # an update with SCIM active false: a leaver
        ("hr-002", "suspend_user"),
        ("hr-003", "create_user"),  # rehired under E2207: E1001's user adopted
        ("hr-003", "reactivate_user"),
        ("hr-003", "update_user"),
        ("hr-003", "assign_licence"),
        ("hr-004", "create_user"),
        ("hr-004", "assign_licence"),
        ("hr-006", "update_user"),  # during the notice period, now
    ]  # hr-005's dated termination was withdrawn by hr-007; hr-008 is older
    assert lines[4]["payload"]["rehire_of"] == "E1001"
    assert "note: hr-003: rehire of E1001: their UCaaS user" in stderr
    assert "note: hr-007 withdraws 2 dated command(s) of user:CRM-1001:E1002" in stderr
    assert "note: hr-008: older than the event applied" in stderr


def test_dates_holds_and_bad_lines(tmp_path: Path) -> None:
    when = "2027-01-31T18:00:00+01:00"
    path = events_file(
        tmp_path / "events.jsonl",
        cloudevent("hr.user.joined", "E1", user("E1"), event_id="a"),
        cloudevent("hr.user.joined", "E2", user("E2"), event_id="b"),
        b"{not json",
        cloudevent("hr.user.left", "E1", user("E1", effective_at=when), event_id="c"),
        cloudevent("hr.user.promoted", "E1", user("E1"), event_id="d"),
        cloudevent("hr.user.left", "E2", user("E2"), event_id="e"),
        cloudevent("hr.user.updated", "E2", user("E2", userName="x@other.example"), event_id="f"),
    )
    code, lines, stderr = ucaas_sync(
        "plan",
        "--events",
        str(path),
        "--now",
        "2026-12-03T12:00:00Z",
        UCAAS_SYNC_INTAKE_GUARD_THRESHOLD="1",
    )
    assert code == 2
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors[0].startswith("error: line 3: not_json: ")
    assert errors[1].startswith("error: line 5: unknown_type: ")
    assert len(errors) == 2
    dated = [line for line in lines if line["event"] == "c"]
    assert [(d["kind"], d["not_before"]) for d in dated] == [
        ("revoke_licence", when),
        ("suspend_user", when),
    ]
    assert all("held" not in d for d in dated)  # one person: within the guard's limit
    second = [line for line in lines if line["event"] == "e"]
    assert [d["kind"] for d in second] == ["revoke_licence", "suspend_user"]
    assert all(d["held"].startswith("approval: 2 people") for d in second)
    # E2 is a leaver, so the rehire's e-mail change is for a person to make
    rehire = [line for line in lines if line["event"] == "f"]
    assert rehire[-1]["kind"] == "change_email"
    assert rehire[-1]["held"].startswith("needs a person: the UCaaS API cannot change")


async def _prepare(url: str) -> None:
    await asyncio.to_thread(db.upgrade, url)
    engine = db.make_engine(url)
    try:
        intake = Intake(UnitOfWork(engine), LicencePolicy(), IntakeSettings())
        await intake.take(
            [
                envelope("hr.user.joined", "E1", user("E1")),
                envelope("hr.user.joined", "E9", user("E9")),
                envelope("hr.user.left", "E9", user("E9")),
            ]
        )
    finally:
        await engine.dispose()


async def _counts(url: str) -> list[int]:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return [
                int(await conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0)
                for t in (INBOX, OUTBOX, STATES)
            ]
    finally:
        await engine.dispose()


def test_live_plans_against_the_databases_state_and_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    asyncio.run(_prepare(url))
    before = asyncio.run(_counts(url))
    env = {"UCAAS_SYNC_DATABASE_URL": url}

    left = events_file(tmp_path / "left.json", cloudevent("hr.user.left", "E1", user("E1")))
    code, lines, stderr = ucaas_sync("plan", "--live", "--event", str(left), **env)
    assert code == 0, stderr
    assert [line["kind"] for line in lines] == ["revoke_licence", "suspend_user"]

    rehire = user("E10", userName="e9@acme.example")  # E9's e-mail, a new employee id
    back = events_file(tmp_path / "back.json", cloudevent("hr.user.joined", "E10", rehire))
    code, lines, stderr = ucaas_sync("plan", "--live", "--event", str(back), **env)
    assert code == 0, stderr
    assert [line["kind"] for line in lines][:2] == ["create_user", "reactivate_user"]
    assert lines[0]["payload"]["rehire_of"] == "E9"
    # without the database's history, the same event is a plain new user
    code, lines, _ = ucaas_sync("plan", "--event", str(back), **env)
    assert "rehire_of" not in lines[0]["payload"]

    assert asyncio.run(_counts(url)) == before
