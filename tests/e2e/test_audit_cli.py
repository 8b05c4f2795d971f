"""The CLI's actions land in the audit log as `cli:<OS user>`, refusals and misses too, and
`ucaas-sync audit` shows them: as a table, as JSON lines, by actor, since a time."""

from __future__ import annotations

import getpass
from pathlib import Path

import orjson
import pytest

from service.devtools import sample_commands as c
from tests.support.service_processes import accept, db_upgrade, dispatch_env, ucaas_sync


@pytest.mark.parametrize("user", ["ops-ann"])
def test_cli_actions_are_audited_and_listed(tmp_path: Path, user: str) -> None:
    # no UCaaS is called: these commands only touch the database
    env = dispatch_env(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", "http://127.0.0.1:9/")
    env.update(USER=user, LOGNAME=user)  # getpass reads these first
    db_upgrade(env, tmp_path)
    accept(env["UCAAS_SYNC_DATABASE_URL"], [[c.create_customer("CRM-AUD")]])

    dropped = ucaas_sync(env, tmp_path, "dead", "drop", "1", check=False)
    assert dropped.returncode == 0, dropped.stderr
    again = ucaas_sync(env, tmp_path, "dead", "retry", "1", check=False)
    assert (again.returncode, "it is not dead" in again.stderr) == (1, True)
    missing = ucaas_sync(env, tmp_path, "dead", "retry", "777", check=False)
    assert (missing.returncode, "no such command" in missing.stderr) == (1, True)
    nobody = ucaas_sync(env, tmp_path, "approve", "--tenant", "NOBODY", check=False)
    assert (nobody.returncode, "nothing known of NOBODY" in nobody.stderr) == (1, True)
    too_big = ucaas_sync(env, tmp_path, "dead", "retry", str(2**63), check=False)
    assert too_big.returncode == 2  # refused by the argument's range, before the database

    listed = ucaas_sync(env, tmp_path, "audit", "--json")
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["actor"], r["action"], r["target"], r["result"]) for r in rows] == [
        (f"cli:{user}", "approve", "tenant NOBODY", "not_found"),
        (f"cli:{user}", "retry", "command 777", "not_found"),
        (f"cli:{user}", "retry", "command 1", "conflict"),
        (f"cli:{user}", "drop", "command 1", "ok"),
    ]
    assert {r["role"] for r in rows} == {"operator"}

    table = ucaas_sync(env, tmp_path, "audit", "--limit", "2")
    assert "4 audited" not in table.stdout and "2 audited action(s)" in table.stdout
    assert f"cli:{user}" in table.stdout
    assert ucaas_sync(env, tmp_path, "audit", "--json", "--actor", "ann").stdout == ""
    assert len(ucaas_sync(env, tmp_path, "audit", "--json", "--since", "1h").stdout.split()) >= 4
    future = ucaas_sync(env, tmp_path, "audit", "--json", "--since", "2999-01-01T00:00:00")
    assert future.stdout == ""
    bad = ucaas_sync(env, tmp_path, "audit", "--since", "yesterday", check=False)
    assert bad.returncode == 2
    assert getpass.getuser()  # the test's own user exists too (the default actor)
