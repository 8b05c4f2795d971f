"""Finding an entity (service/entity_search.py), its story with its result events, and the
results on the status summary; on SQLite and PostgreSQL, rows written directly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from service import entity_search
from service.cli import operations
from service.outbox import db
from service.outbox.store import OutboxStore
from service.outbox.tables import RESULTS
from service.settings import Settings
from service.views import Operations
from tests.support import stories as s


@pytest.fixture
async def ops(engine: AsyncEngine) -> Operations:
    async with engine.begin() as conn:
        for table, rows in s.story_rows(extra_people=25):
            await conn.execute(sa.insert(table), rows)
    return Operations(engine, OutboxStore(engine), Settings())


async def found(ops: Operations, query: str) -> list[tuple[str, str]]:
    return [(m.entity, m.kind) for m in await ops.find(query)]


PERSON = [(s.ANN, "person")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # a person: e-mail in any case, or its beginning; employee id; employee number
        (s.ANN_EMAIL, PERSON),
        ("  Ann.Lee@ACME.example ", PERSON),
        ("ann.lee@", PERSON),
        ("e1001", [(s.ANN, "person"), ("user:GLOBEX:E1001", "person")]),
        ("n-77", PERSON),
        # a company: CRM id (or its beginning) in any case, or a part of its name
        # (the meeting's UID holds "acme": a substring of its key)
        (
            "acme",
            [
                ("customer:ACME", "company"),
                ("subscriptions:ACME", "purchases"),
                (s.MEETING, "meeting"),
            ],
        ),
        ("GLOB", [("customer:GLOBEX", "company")]),
        ("corporat", [("customer:ACME", "company"), ("subscriptions:ACME", "purchases")]),
        # a meeting: its feed id, or a UID inside the key
        ("ann-cal", [(s.MEETING, "meeting")]),
        ("STANDUP-42", [(s.MEETING, "meeting")]),
        # nothing, and LIKE's wildcards are only characters
        ("nobody", []),
        ("%", []),
        ("_", []),
        ("a%c", []),
        ("   ", []),
        # the range's bound after these is no surrogate, or none at all
        ("ann\ud7ff", []),
        ("ann\U0010ffff", []),
        ("x\x00", []),
    ],
)
async def test_find(ops: Operations, query: str, expected: list[tuple[str, str]]) -> None:
    assert await found(ops, query) == expected


async def test_find_answers_a_short_list_with_labels(ops: Operations) -> None:
    many = await ops.find("MANY")
    assert len(many) == 20
    assert {m.kind for m in many} == {"person"}
    assert many[0].entity == "user:ACME:M0000"
    assert many[0].label == "Many 0 <many0000@acme.example> · tenant ACME · employee M0000 · active"
    [ann] = await ops.find(s.ANN_EMAIL)
    assert ann.label == (
        f"Ann {s.ANN_LAST_NAME} <{s.ANN_EMAIL}> · tenant ACME · employee E1001 · active"
    )
    [meeting] = await ops.find("standup")
    assert meeting.label == "feed ann-cal · UID standup-42@acme.example · 20261210T090000Z"


async def test_history_tells_the_result_events(ops: Operations) -> None:
    story = await ops.history(s.ANN)
    assert [c.kind for c in story.commands] == ["create_user", "assign_licence"]
    assert [e.event_id for e in story.events] == [s.EVENT_ID]
    assert [(r.type, r.command_id, r.published) for r in story.results] == [
        (s.PROVISIONED, 1, True),
        (s.LICENSED, 2, False),
    ]
    assert story.results[0].data == {"entity": s.ANN, "ucaas_id": "u-1", "email": s.ANN_EMAIL}
    assert story.results[1].published_at is None
    assert (await ops.history(s.MEETING)).results == []


async def test_status_counts_the_unpublished_results_and_the_relay_lag(
    ops: Operations, engine: AsyncEngine
) -> None:
    report = await ops.status(with_lag=False)
    assert report.results is not None
    assert report.results.unpublished == 1
    assert report.results.published_last_hour == 1
    age = report.results.oldest_unpublished_age_s
    assert age is not None and 5 * 60 - 5 < age < 5 * 60 + 30
    shown = report.as_json()["results"]
    assert shown["unpublished"] == 1 and shown["published_last_hour"] == 1

    async with engine.begin() as conn:
        await conn.execute(sa.update(RESULTS).values(published_at=datetime.now(UTC)))
        # an hour old: published, but no longer counted in the last hour
        await conn.execute(
            sa.update(RESULTS)
            .where(RESULTS.c.event_id == "res-ann-1")
            .values(created_at=datetime.now(UTC) - timedelta(hours=2))
        )
    report = await ops.status(with_lag=False)
    assert report.results is not None
    assert (report.results.unpublished, report.results.oldest_unpublished_age_s) == (0, None)
    assert report.results.published_last_hour == 1


async def test_find_without_ranges_under_a_language_collation(
    ops: Operations, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a collation that does not order by code point, prefixes are LIKEs alone."""

    async def not_bytewise(conn: object) -> bool:
        return False

    monkeypatch.setattr(entity_search, "_ordered_by_code_point", not_bytewise)
    assert await found(ops, "ann.lee@") == PERSON
    assert await found(ops, "GLOB") == [("customer:GLOBEX", "company")]
    assert await found(ops, "ann-cal") == [(s.MEETING, "meeting")]
    assert await found(ops, "a%") == []


def test_the_cli_tells_results_in_history_status_and_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cli.db"
    db.upgrade(f"sqlite+aiosqlite:///{path}")
    s.seed(f"sqlite:///{path}")
    monkeypatch.setenv("UCAAS_SYNC_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    cli = typer.Typer()
    for command in (operations.history, operations.status, operations.find):
        cli.command(command.__name__)(command)

    told = CliRunner().invoke(cli, ["history", s.ANN])
    assert told.exit_code == 0, told.output
    results = [line for line in told.output.splitlines() if " result  " in line]
    assert len(results) == 2, told.output
    assert f"result  {s.PROVISIONED} res-ann-1 (#1): published " in results[0]
    assert results[1].endswith(f"result  {s.LICENSED} res-ann-2 (#2): not published yet")

    counted = CliRunner().invoke(cli, ["status", "--no-lag"])
    assert counted.exit_code == 0, counted.output
    [line] = [x for x in counted.output.splitlines() if "results unpublished" in x]
    assert re.search(r" 1 \(oldest [45]\.\d min\) / 1 ", line), line

    found = CliRunner().invoke(cli, ["find", "ANN.LEE@"])
    assert found.exit_code == 0, found.output
    assert found.output.startswith(f"{s.ANN}\tperson\tAnn ")
    nothing = CliRunner().invoke(cli, ["find", "nobody"])
    assert nothing.exit_code == 1
