"""`ucaas-sync db prune` as an operator types it, on a SQLite file: a dry run, the prune,
its one line of output, and what is left in the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa

from service.outbox import db
from service.outbox.prune import DEAD_LETTERS
from service.outbox.tables import CALLS, OUTBOX, CommandStatus, utcnow
from tests.support.service_processes import db_upgrade, dispatch_env, ucaas_sync

OLD_COMMANDS = 1_200


def seed(url: str, now: datetime) -> None:
    """1,200 commands done 40 days ago with two calls each, one done yesterday, one dead
    40 days ago; one dead letter 40 days old and one from yesterday."""
    old, recent = now - timedelta(days=40), now - timedelta(days=1)

    def command(n: int, status: str, done_at: datetime | None) -> dict[str, object]:
        return {
            "id": n,
            "entity": f"user:T:E-{n}",
            "kind": "create_user",
            "tenant": "T",
            "payload": {},
            "status": status,
            "next_attempt_at": old,
            "created_at": old,
            "updated_at": old,
            "done_at": done_at,
        }

    commands = [command(n, CommandStatus.DONE.value, old) for n in range(1, OLD_COMMANDS + 1)]
    commands += [
        command(OLD_COMMANDS + 1, CommandStatus.DONE.value, recent),
        command(OLD_COMMANDS + 2, CommandStatus.DEAD.value, None),
    ]
    calls = [
        {"command_id": c["id"], "method": "POST", "route": "/users", "status": 201, "at": old}
        for c in commands
        for _ in range(2)
    ]
    letters = [
        {"topic": "hr.events", "partition": 0, "offset": n, "error": "x", "reason": "?", "at": at}
        for n, at in enumerate((old, recent))
    ]
    engine = sa.create_engine(db.sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(OUTBOX.insert(), commands)
            conn.execute(CALLS.insert(), calls)
            conn.execute(DEAD_LETTERS.insert(), letters)
    finally:
        engine.dispose()


def left(url: str) -> tuple[list[int], int, int]:
    engine = sa.create_engine(db.sync_url(url))
    try:
        with engine.connect() as conn:
            commands = list(conn.scalars(sa.select(OUTBOX.c.id).order_by(OUTBOX.c.id)))
            calls = conn.scalar(sa.select(sa.func.count()).select_from(CALLS)) or 0
            letters = conn.scalar(sa.select(sa.func.count()).select_from(DEAD_LETTERS)) or 0
    finally:
        engine.dispose()
    return commands, calls, letters


def cut_off(line: str) -> datetime:
    found = re.search(r"finished before (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$", line)
    assert found, line
    return datetime.strptime(found[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_db_prune_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'prune.db'}"
    env = dispatch_env(url, "http://127.0.0.1:9/ucaas/v1")  # no UCaaS call is made
    db_upgrade(env, tmp_path)
    now = utcnow()
    seed(url, now)
    everything = left(url)

    dry = ucaas_sync(env, tmp_path, "db", "prune", "--older-than-days", "30", "--dry-run")
    [line] = dry.stdout.splitlines()
    assert line.startswith(
        "would prune 1,200 commands, 2,400 UCaaS calls, 1 dead letters and 0 published "
        "results finished before "
    ), line
    assert abs(cut_off(line) - (now - timedelta(days=30))) < timedelta(minutes=5)
    assert left(url) == everything

    done = ucaas_sync(env, tmp_path, "db", "prune", "--older-than-days", "30", "--batch", "500")
    [line] = done.stdout.splitlines()
    assert line.startswith(
        "pruned 1,200 commands, 2,400 UCaaS calls, 1 dead letters and 0 published "
        "results finished before "
    ), line
    assert left(url) == ([OLD_COMMANDS + 1, OLD_COMMANDS + 2], 4, 1)

    again = ucaas_sync(env, tmp_path, "db", "prune", "--older-than-days", "30", "--json")
    shown = orjson.loads(again.stdout)
    assert {k: shown[k] for k in ("dry_run", "commands", "calls", "dead_letters")} == {
        "dry_run": False,
        "commands": 0,
        "calls": 0,
        "dead_letters": 0,
    }
    assert cut_off(f"finished before {shown['before']}") > now - timedelta(days=31)

    refused = ucaas_sync(env, tmp_path, "db", "prune", "--older-than-days", "0", check=False)
    assert refused.returncode == 2
    assert ucaas_sync(env, tmp_path, "db", "prune", check=False).returncode == 2
    assert left(url) == ([OLD_COMMANDS + 1, OLD_COMMANDS + 2], 4, 1)
