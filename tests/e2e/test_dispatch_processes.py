"""Two `ucaas-sync dispatch` processes on one PostgreSQL database drain a backlog into one
sandbox process: every command runs, and runs once, even when one of them is SIGKILLed.

Exactly once is checked where it shows: the sandbox's state (one user per e-mail, one
licence each, seats_used) and its call counters (`POST /users`, licence assigns).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.devtools import sample_commands as c
from service.devtools.service_processes import DispatchProcess, Outbox
from service.outbox import db
from tests.support.databases import fresh_postgres
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import (
    Processes,
    TenantInSandbox,
    accept,
    db_upgrade,
    dispatch_env,
)

pytestmark = pytest.mark.postgres

TENANTS = ("CRM-A", "CRM-B", "CRM-C")
EMPLOYEES = 60
USER_POST = "POST /users"
ASSIGN = "PATCH /users/{user_id} [X-License: assign]"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def outbox(database: str) -> Iterator[Outbox]:
    reader = Outbox(database)
    yield reader
    reader.close()


def named(url: str, name: str) -> str:
    """The database URL with a libpq application_name, to see who is connected."""
    return (
        sa.engine.make_url(url)
        .update_query_dict({"application_name": name})
        .render_as_string(hide_password=False)
    )


def wait_connected(outbox: Outbox, names: set[str], processes: list[DispatchProcess]) -> None:
    """Until every named dispatcher has polled the database (it is up and claiming)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with outbox.engine.connect() as conn:
            seen = set(
                conn.scalars(
                    sa.text(
                        "SELECT application_name FROM pg_stat_activity "
                        "WHERE datname = current_database()"
                    )
                )
            )
        if names <= seen:
            return
        for process in processes:
            assert process.returncode is None, process.tail()
        time.sleep(0.05)
    raise AssertionError(f"dispatchers {names} never connected")


def backlog(tenants: tuple[str, ...]) -> list[list[c.Command]]:
    return [c.onboarding(tenant, EMPLOYEES, seats=EMPLOYEES) for tenant in tenants]


def check_sandbox(sandbox: SandboxAdmin) -> Counter[str]:
    """One customer, subscription, user and licence per thing asked for; the call counts."""
    state = sandbox.state()
    for tenant in TENANTS:
        mine = TenantInSandbox.of(state, tenant)
        assert len(mine.customers) == 1, tenant
        assert len(mine.subscriptions) == 1, tenant
        emails = Counter(u["email"] for u in mine.users)
        duplicated = {e: n for e, n in emails.items() if n > 1}
        assert not duplicated, f"{tenant}: users made twice: {duplicated}"
        assert set(emails) == {c.email_of(tenant, f"E{n:04d}") for n in range(EMPLOYEES)}
        assert len(mine.licensed()) == EMPLOYEES, tenant
        assert mine.subscriptions[0]["seats_used"] == EMPLOYEES, tenant
    calls = Counter(sandbox.calls()["calls"])
    users = len(TENANTS) * EMPLOYEES
    assert calls["POST /customers"] == len(TENANTS)
    assert calls["POST /subscriptions"] == len(TENANTS)
    assert calls[USER_POST] == users, "a create_user ran twice"
    return calls


def leased_by(outbox: Outbox, process: DispatchProcess) -> set[int]:
    rows = outbox.rows("id", "status", "lease_owner")
    return {i for i, status, owner in rows if status == "in_flight" and process.owns(owner)}


def owned(outbox: Outbox, process: DispatchProcess) -> int:
    return sum(1 for (owner,) in outbox.rows("lease_owner") if process.owns(owner))


def test_two_dispatchers_share_a_backlog_and_run_each_command_once(
    database: str,
    sandbox: SandboxAdmin,
    outbox: Outbox,
    processes: Processes,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    db_upgrade(dispatch_env(database, sandbox.base_url), tmp_path)
    total = accept(database, backlog(TENANTS[:1]))  # accepted before they run

    a = processes.start("a", dispatch_env(named(database, "dispatch-a"), sandbox.base_url))
    b = processes.start("b", dispatch_env(named(database, "dispatch-b"), sandbox.base_url))
    wait_connected(outbox, {"dispatch-a", "dispatch-b"}, [a, b])
    total += accept(database, backlog(TENANTS[1:]))  # and while they run

    outbox.wait_settled([a, b], timeout_s=60)
    drained = time.monotonic() - started
    assert (a.stop(), b.stop()) == (0, 0), processes.tails()

    assert outbox.counts() == {"done": total}, outbox.stuck()
    assert len(outbox.owners("done")) == 2  # the last lease owner stays on a done row
    by_a, by_b = owned(outbox, a), owned(outbox, b)
    assert by_a > 0 and by_b > 0, f"one dispatcher did everything: a={by_a} b={by_b}"
    assert by_a + by_b == total
    calls = check_sandbox(sandbox)
    users = len(TENANTS) * EMPLOYEES
    assert calls[ASSIGN] == users, "an assign_licence ran twice"
    print(
        f"\n2 dispatchers: {total} commands in {drained:.1f} s (a ran {by_a}, b ran {by_b}); "
        f"compared {users} users, {calls[ASSIGN]} licences, {len(TENANTS)} customers, "
        f"{len(TENANTS)} subscriptions with the sandbox's state and calls"
    )


def test_a_killed_dispatcher_is_replaced_and_nothing_runs_twice(
    database: str,
    sandbox: SandboxAdmin,
    outbox: Outbox,
    processes: Processes,
) -> None:
    # A short lease: the killed process's rows come back after 2 s, not a minute.
    env = dispatch_env(database, sandbox.base_url, lease_s=2.0)
    db.upgrade(database)
    total = accept(database, backlog(TENANTS))
    a = processes.start("a", env)
    b = processes.start("b", env)

    # Kill `a` while it holds leases, once a fair part of the backlog is done.
    deadline = time.monotonic() + 30
    while len(leased_by(outbox, a)) < 3 or outbox.counts().get("done", 0) < total // 5:
        assert time.monotonic() < deadline, f"a never held leases: {outbox.counts()}"
        assert a.returncode is None and b.returncode is None, processes.tails()
        time.sleep(0.02)
    assert a.stop(signal.SIGKILL) == -signal.SIGKILL
    orphans = leased_by(outbox, a)
    killed_at = outbox.counts().get("done", 0)
    restarted = processes.start("a2", env)
    restarted.wait_started()  # a SIGTERM before it runs would end it with -15, not 0

    outbox.wait_settled([b, restarted], timeout_s=60)
    assert (b.stop(), restarted.stop()) == (0, 0), processes.tails()

    assert outbox.counts() == {"done": total}, outbox.stuck()
    rows = outbox.rows("id", "kind", "lease_owner", "in_doubt")
    assert orphans, "a was killed holding no lease: nothing was reclaimed"
    finished_by = {owner for i, _, owner, _ in rows if i in orphans}
    assert not any(a.owns(owner) for owner in finished_by), "a dead lease was never reclaimed"
    assert orphans <= {i for i, _, _, doubt in rows if doubt}, "a reclaimed row not in doubt"
    in_doubt = Counter(kind for _, kind, _, doubt in rows if doubt)

    calls = check_sandbox(sandbox)
    users = len(TENANTS) * EMPLOYEES
    # An assign whose answer died with `a` is sent again and told "already assigned": one
    # licence in the state, and at most one more call per assign that was in doubt.
    assert users <= calls[ASSIGN] <= users + in_doubt["assign_licence"]
    work = Counter(
        name
        for _, _, owner, _ in rows
        for name, process in (("a", a), ("b", b), ("a2", restarted))
        if process.owns(owner)
    )
    assert work["b"], work  # and `a` had claimed the orphans
    print(
        f"\nkilled a after {killed_at}/{total} done holding {len(orphans)} leases; "
        f"last runs: {dict(work)}; in doubt: {dict(in_doubt)}; compared {users} users, "
        f"{calls[ASSIGN]} assign calls for {users} licences, {len(TENANTS)} customers"
    )


def test_a_dispatcher_stopped_mid_run_gives_its_rows_back_and_they_run_once(
    database: str,
    sandbox: SandboxAdmin,
    outbox: Outbox,
    processes: Processes,
) -> None:
    """SIGTERM with no grace: running commands are cut short and their rows released, in
    doubt (the call may have gone out). The next dispatcher must look before creating."""
    db.upgrade(database)
    tenant, employees = TENANTS[0], 10
    organisers = [c.email_of(tenant, f"E{n:04d}") for n in range(employees)]
    meetings = [
        c.schedule(tenant, f"feed:{n}", organisers[n % employees], c.meeting_spec(f"Sync {n}"))
        for n in range(3 * employees)
    ]
    # The organisers and their licences first: a meeting scheduled before its organiser's
    # licence is refused (1617) and would make nothing for the redo to find.
    total = accept(database, [c.onboarding(tenant, employees, seats=employees)])
    env = dispatch_env(database, sandbox.base_url, shutdown_grace_s=0)
    first = processes.start("first", env)
    outbox.wait_settled([first], timeout_s=60)
    # Slow creations: a call cut short has reached the sandbox, which still carries it out
    # (it counts a call as it comes in, then waits out the latency, then acts).
    sandbox.faults(latency_ms=500, only=["POST /meetings", "POST /users"])
    total += accept(database, [meetings])

    deadline = time.monotonic() + 30
    while not sandbox.calls()["calls"].get("POST /meetings"):
        assert time.monotonic() < deadline, outbox.counts()
        assert first.returncode is None, first.tail()
        time.sleep(0.01)
    assert first.stop() == 0, first.tail()
    counts = outbox.counts()
    assert "in_flight" not in counts, counts
    released = {i for i, doubt in outbox.rows("id", "in_doubt") if doubt}
    assert released, "nothing was cut short"

    second = processes.start("second", env)
    outbox.wait_settled([second], timeout_s=60)
    assert second.stop() == 0, second.tail()

    assert outbox.counts() == {"done": total}, outbox.stuck()
    mine = TenantInSandbox.of(sandbox.state(), tenant)
    names = Counter(m["room_name"] for m in mine.meetings)
    assert {n: k for n, k in names.items() if k > 1} == {}, "meetings scheduled twice"
    assert len(names) == len(meetings)
    assert Counter(u["email"] for u in mine.users) == Counter(organisers)
    assert Counter(sandbox.calls()["calls"])[USER_POST] == employees, "users POSTed twice"
    # The redo found what the cut-short call had made (the latency makes that certain).
    notes = Counter(note for i, note in outbox.rows("id", "hold_reason") if i in released)
    assert notes["adopted the existing meeting"], f"no redo looked first: {notes}"
    print(
        f"\nSIGTERM with no grace released {len(released)} rows in doubt ({counts}); redo: "
        f"{dict(notes)}; compared {len(mine.users)} users, {len(names)} meetings"
    )
