"""A dispatcher SIGKILLed right after a UCaaS write, before it could record the outcome,
is restarted and finishes the job: nothing lost, nothing made twice.

`UCAAS_SYNC_CRASH_AFTER_CALLS=k` kills the process after its k-th successful write. With
one worker the writes come in a fixed order, so each k lands in a known command kind. The
restarted dispatcher reclaims the dead lease (short on purpose), sees the row in doubt,
and looks the object up by its natural key before creating it.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import sqlalchemy as sa

from service.devtools import sample_commands as c
from service.devtools.service_processes import Outbox
from service.outbox import db
from tests.support.databases import fresh_postgres, sqlite_url
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import Processes, TenantInSandbox, accept, dispatch_env

TENANT = "CRM-Z"
EMPLOYEES = ("E0000", "E0001", "E0002")
# The crashing process's lease: the restarted one reclaims it as soon as it is up.
CRASH_LEASE_S = 1.0
LEASE_S = 2.0


class Crash(NamedTuple):
    calls: int  # UCAAS_SYNC_CRASH_AFTER_CALLS
    kind: str  # the command whose write was the last
    note: str | None  # what the redo after the crash recorded


# With one worker, commands run in id order and the writes are: 1 POST /customers,
# 2 POST /subscriptions, 3 POST /users (E0000), 4 assign (E0000), 5-8 the two other users,
# 9 POST /meetings (Planning), 10 PATCH it, 11 POST /meetings (Retro), 12 DELETE it,
# 13 PATCH /users (E0001).
CRASHES = [
    Crash(1, "create_customer", "adopted the existing customer"),
    Crash(2, "create_subscription", "adopted the existing subscription"),
    Crash(3, "create_user", "adopted the existing user"),
    Crash(4, "assign_licence", "already assigned"),
    Crash(9, "schedule_meeting", "adopted the existing meeting"),
    # More of the same machinery, for --run-slow: an update and a cancel redone.
    pytest.param(Crash(10, "update_meeting", None), marks=pytest.mark.slow),
    pytest.param(Crash(12, "cancel_meeting", "already cancelled"), marks=pytest.mark.slow),
]


def scenario() -> list[c.Command]:
    """Every creating kind, plus an update and a cancel: 13 commands, 13 writes."""
    organiser = c.email_of(TENANT, EMPLOYEES[0])
    planning = c.meeting_spec("Planning")
    return [
        *c.onboarding(TENANT, len(EMPLOYEES), seats=len(EMPLOYEES)),
        c.schedule(TENANT, "feed:planning:1", organiser, planning),
        c.update_meeting(
            TENANT, "feed:planning:1", organiser, planning.model_copy(update={"duration": 60})
        ),
        c.schedule(TENANT, "feed:retro:1", organiser, c.meeting_spec("Retro", days=3)),
        c.cancel(TENANT, "feed:retro:1", organiser),
        c.update_user(TENANT, EMPLOYEES[1], designation="Lead"),
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with fresh_postgres() as url:  # skips, with the reason, when no server answers
        yield url


@pytest.fixture
def outbox(database: str) -> Iterator[Outbox]:
    db.upgrade(database)
    reader = Outbox(database)
    yield reader
    reader.close()


def captured_logins(outbox: Outbox) -> int:
    with outbox.engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM tenant_credential")) or 0)


@pytest.mark.parametrize("crash", CRASHES, ids=lambda x: f"{x.calls}-{x.kind}")
def test_a_crash_after_a_write_loses_nothing_and_makes_nothing_twice(
    crash: Crash,
    database: str,
    outbox: Outbox,
    sandbox: SandboxAdmin,
    processes: Processes,
) -> None:
    started = time.monotonic()
    total = accept(database, [scenario()])

    # One worker: the writes come in command order, so the k-th is a known command's.
    crashing = processes.start(
        "crashing",
        dispatch_env(
            database,
            sandbox.base_url,
            crash_after_calls=crash.calls,
            workers=1,
            lease_s=CRASH_LEASE_S,
        ),
    )
    assert crashing.wait(timeout_s=30) == -signal.SIGKILL, crashing.tail()
    rows = outbox.rows("id", "kind", "status")
    leased = [(i, kind) for i, kind, status in rows if status == "in_flight"]
    assert [kind for _, kind in leased] == [crash.kind], f"the crash hit {leased}"
    crashed_id = leased[0][0]
    done_before = outbox.counts().get("done", 0)

    restarted = processes.start(
        "restarted", dispatch_env(database, sandbox.base_url, workers=4, lease_s=LEASE_S)
    )
    outbox.wait_settled([restarted], timeout_s=30)
    assert restarted.stop() == 0, restarted.tail()

    # Nothing lost: every command done, none dead, none left in flight.
    assert outbox.counts() == {"done": total}, outbox.stuck()
    redo = {i: (doubt, note) for i, doubt, note in outbox.rows("id", "in_doubt", "hold_reason")}
    assert redo[crashed_id] == (True, crash.note), "the redo did not reconcile as expected"

    # Nothing made twice: the sandbox holds exactly what was asked for.
    mine = TenantInSandbox.of(sandbox.state(), TENANT)
    assert len(mine.customers) == 1
    assert len(mine.subscriptions) == 1
    assert mine.subscriptions[0]["seats_used"] == len(EMPLOYEES)
    by_email = Counter(u["email"] for u in mine.users)
    assert by_email == Counter(c.email_of(TENANT, e) for e in EMPLOYEES)
    assert len(mine.licensed()) == len(EMPLOYEES)
    lead = next(u for u in mine.users if u["email"] == c.email_of(TENANT, EMPLOYEES[1]))
    assert lead["designation"] == "Lead"
    meetings = sorted(
        (m["room_name"], m["duration"], m["cancelled_at"] is not None) for m in mine.meetings
    )
    assert meetings == [("Planning", 60, False), ("Retro", 30, True)]
    # The sandbox keeps cancelled meetings: a second "Retro" or "Planning" would show above.
    # Its call counters confirm the creations that never fail for want of a prerequisite
    # (a meeting can: its organiser may have no licence yet, and is asked again later).
    calls = Counter(sandbox.calls()["calls"])
    creates = {"POST /customers": 1, "POST /subscriptions": 1, "POST /users": len(EMPLOYEES)}
    assert {route: calls[route] for route in creates} == creates

    # A customer adopted after the crash came without its portal login: the platform
    # admin acted for the tenant, and the users still landed in the tenant's customer.
    logins = captured_logins(outbox)
    assert logins == (0 if crash.kind == "create_customer" else 1)
    acting = "the platform admin" if logins == 0 else "the tenant's captured login"
    print(
        f"\ncrash after write {crash.calls} ({crash.kind}, {done_before}/{total} done): "
        f"redo noted {crash.note!r}; compared {len(mine.users)} users, "
        f"{len(mine.licensed())} licences, {len(mine.customers)} customer, "
        f"{len(mine.subscriptions)} subscription, {len(mine.meetings)} meetings, through "
        f"{acting}, in {time.monotonic() - started:.1f} s"
    )
