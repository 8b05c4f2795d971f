"""`ucaas-sync reconcile` as an operator runs it: a process against a sandbox process.

Provisioned through the outbox and a dispatcher; then a meeting is cancelled behind the
service's back. Exit codes: 0 in step, 1 drift, 0 after --repair queued it, 2 misuse.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import orjson

from service.app.bootstrap import bootstrap
from service.devtools import sample_commands as c
from service.outbox.outcomes import MappingKey
from service.settings import Settings
from tests.integration.conftest import service_settings
from tests.support.databases import sqlite_url
from tests.support.processes import BIN
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import dispatch_env

TENANT = "CRM-1"
KEY = "feed1:uid1:20260301"


def settings(tmp_path: Path, sandbox: SandboxAdmin) -> Settings:
    return service_settings(sqlite_url(tmp_path), sandbox)


def dispatch(tmp_path: Path, sandbox: SandboxAdmin, *, provision: bool) -> str:
    """Accept the onboarding (if asked) and run the dispatcher until idle; the meeting id."""

    async def run() -> str:
        service = await bootstrap(settings(tmp_path, sandbox), migrate=True)
        try:
            if provision:
                ann = c.email_of(TENANT, "E0000")
                batch = [*c.onboarding(TENANT, employees=2), c.schedule(TENANT, KEY, ann)]
                assert await service.uow.accept(c.event(), batch)
            # A command waiting for its prerequisite does not keep run_until_idle going: on
            # a loaded machine one may still wait when it returns.
            for _ in range(20):
                await service.dispatcher.run_until_idle()
                if set(await service.store.counts()) == {"done"}:
                    break
            assert set(await service.store.counts()) == {"done"}
            mapping = await service.store.mapping(MappingKey("meeting", TENANT, KEY))
            assert mapping is not None
            return mapping.ucaas_id
        finally:
            await service.aclose()

    return asyncio.run(run())


def cli(tmp_path: Path, sandbox: SandboxAdmin, *args: str) -> subprocess.CompletedProcess[str]:
    env = dispatch_env(sqlite_url(tmp_path), sandbox.base_url)
    return subprocess.run(
        [str(BIN / "ucaas-sync"), "reconcile", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_reconcile_reports_repairs_and_exits_by_drift(
    tmp_path: Path, sandbox: SandboxAdmin
) -> None:
    meeting_id = dispatch(tmp_path, sandbox, provision=True)

    clean = cli(tmp_path, sandbox)
    assert clean.returncode == 0, clean.stderr
    assert "checked 7 objects: 7 in step, 0 drifted, 0 repairable" in clean.stdout

    cancelled = sandbox.api("DELETE", f"/meetings/{meeting_id}", headers={"X-App-Type": "vc"})
    assert cancelled.status_code == 200

    found = cli(tmp_path, sandbox)
    assert found.returncode == 1, found.stderr
    assert "cancelled-or-gone" in found.stdout
    assert meeting_id in found.stdout
    assert "would queue: update_meeting" in found.stdout
    assert "checked 7 objects: 6 in step, 1 drifted, 1 repairable" in found.stdout

    as_json = cli(tmp_path, sandbox, "--json", "--kind", "meeting", "--tenant", TENANT)
    assert as_json.returncode == 1, as_json.stderr
    drift, summary = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert (drift["kind"], drift["entity"], drift["ucaas_id"]) == ("meeting", KEY, meeting_id)
    assert (drift["drift"], drift["repair"]) == ("cancelled-or-gone", "planned")
    assert [x["kind"] for x in drift["commands"]] == ["update_meeting"]
    assert (summary["checked"], summary["drifted"], summary["unresolved"]) == (1, 1, 1)

    repaired = cli(tmp_path, sandbox, "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "queued: update_meeting" in repaired.stdout
    assert "1 drifted, 1 repaired/queued" in repaired.stdout

    again = cli(tmp_path, sandbox, "--repair")
    assert again.returncode == 0, again.stderr
    assert "already queued" in again.stdout
    assert "0 repaired/queued" in again.stdout

    misuse = cli(tmp_path, sandbox, "--kind", "users")
    assert misuse.returncode == 2
    assert "unknown kind(s) users" in misuse.stderr

    dispatch(tmp_path, sandbox, provision=False)
    after = cli(tmp_path, sandbox)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "checked 7 objects: 7 in step, 0 drifted" in after.stdout


def test_ucaas_unreachable_is_a_configuration_error(tmp_path: Path, sandbox: SandboxAdmin) -> None:
    dispatch(tmp_path, sandbox, provision=True)
    env = dispatch_env(sqlite_url(tmp_path), "http://127.0.0.1:9/ucaas/v1")
    done = subprocess.run(
        [str(BIN / "ucaas-sync"), "reconcile"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert "sandbox-admin" not in done.stderr  # no credentials in the message
