"""Retries, Retry-After, pause-and-probe, waits, dead/held/retry/drop, lookups, secrets.

The dispatcher against the sandbox with its faults switched on.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from service.outbox.tables import CALLS, LOGINS, OUTBOX
from tests.support.sandbox_server import SandboxAdmin


async def run_for(service: Service, seconds: float) -> None:
    task = asyncio.create_task(service.dispatcher.run())
    await asyncio.sleep(seconds)
    await service.dispatcher.stop()
    await task


async def rows(service: Service) -> list[sa.Row[tuple[object, ...]]]:
    async with service.engine.connect() as conn:
        return list((await conn.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id))).all())


async def test_5xx_is_retried_with_backoff_until_it_works(
    service: Service, sandbox: SandboxAdmin
) -> None:
    sandbox.faults(error_rate=1.0, error_status=503, only=["POST /customers"])
    await service.uow.accept(c.event(), [c.create_customer("CRM-R")])
    await run_for(service, 0.6)
    [row] = await rows(service)
    assert row.status == "pending"
    assert row.attempts >= 2
    assert row.last_error_code == "503"
    assert row.in_doubt  # a 5xx may have acted: the next attempt looks first
    sandbox.faults(error_rate=0.0)
    await service.dispatcher.run_until_idle()
    [row] = await rows(service)
    assert row.status == "done"
    customers = [x for x in sandbox.state()["customers"] if x["customer_code"] == "CRM-R"]
    assert len(customers) == 1
    async with service.engine.connect() as conn:
        logged = (
            await conn.execute(sa.select(CALLS.c.status).where(CALLS.c.command_id == row.id))
        ).all()
    assert [s for (s,) in logged].count(503) >= 2  # the failed attempts are in the call log


async def test_retry_after_is_honoured(service: Service, sandbox: SandboxAdmin) -> None:
    sandbox.faults(rate_limit=2, retry_after_s=1)
    await service.uow.accept(c.event(), [c.create_customer(f"CRM-L{n}") for n in range(6)])
    await service.dispatcher.run_until_idle(timeout_s=30)
    assert await service.store.counts() == {"done": 6}
    async with service.engine.connect() as conn:
        calls = (
            await conn.execute(
                sa.select(CALLS.c.command_id, CALLS.c.status, CALLS.c.at, CALLS.c.latency_ms)
            )
        ).all()
    limited = [
        (cmd, at + timedelta(milliseconds=ms)) for cmd, status, at, ms in calls if status == 429
    ]
    assert limited, "the rate limit was hit"
    for command, answered in limited:
        # The command's next call waits for the Retry-After (1 s) of the 429 it got (allow
        # the event loop's timer slack).
        later = [at for cmd, _, at, _ in calls if cmd == command and at > answered]
        assert later, "the command was retried"
        assert min(later) - answered >= timedelta(seconds=0.9), (answered, later)
    # a 429 does not use up attempts
    assert all(r.attempts <= 2 for r in await rows(service))


async def test_outage_pauses_and_probes_instead_of_burning_attempts(
    service: Service, sandbox: SandboxAdmin
) -> None:
    sandbox.faults(error_rate=1.0, error_status=503)
    await service.uow.accept(c.event(), [c.create_customer(f"CRM-O{n:02d}") for n in range(40)])
    await run_for(service, 2.0)
    breaker = service.dispatcher.breaker
    assert breaker.opened >= 1
    calls = sandbox.calls()["total"]
    # without the breaker: 8 workers retrying every ~0.1 s for 2 s would be hundreds of calls
    assert calls < 40, calls
    assert all(r.status == "pending" and r.attempts <= 2 for r in await rows(service))
    sandbox.faults(error_rate=0.0)
    await service.dispatcher.run_until_idle(timeout_s=30)
    assert await service.store.counts() == {"done": 40}
    assert not breaker.paused()


async def test_dead_holds_followers_until_retried(service: Service, sandbox: SandboxAdmin) -> None:
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    batch = [
        c.create_customer("CRM-D"),
        c.update_customer("CRM-D", customer_name="Renamed"),
        c.create_customer("CRM-OK"),
    ]
    await service.uow.accept(c.event(), batch)
    await service.dispatcher.run_until_idle()
    dead, held, ok = await rows(service)
    assert dead.status == "dead"
    assert dead.last_error_code == "4030"
    assert "HTTP 403" in dead.last_error
    assert (held.status, held.hold_reason) == ("held", f"blocked by #{dead.id}")
    assert ok.status in {"done", "dead"}  # another entity: never blocked by CRM-D
    # a command accepted later behind the dead one is held too
    await service.uow.accept(c.event(), [c.close_customer("CRM-D")])
    late = (await rows(service))[-1]
    assert (late.status, late.hold_reason) == ("held", f"blocked by #{dead.id}")

    sandbox.faults(error_rate=0.0)
    assert await service.store.retry(dead.id)
    assert not await service.store.retry(dead.id)  # only a dead command can be retried
    await service.dispatcher.run_until_idle()
    statuses = {r.id: r.status for r in await rows(service)}
    assert statuses[dead.id] == "done"
    assert statuses[held.id] == "done"
    assert statuses[late.id] == "done"


async def test_drop_gives_up_and_releases_followers(
    service: Service, sandbox: SandboxAdmin
) -> None:
    sandbox.faults(error_rate=1.0, error_status=400, only=["POST /customers"])
    await service.uow.accept(
        c.event(), [c.create_customer("CRM-X"), c.update_customer("CRM-X", customer_name="New")]
    )
    await service.dispatcher.run_until_idle()
    dead, follower = await rows(service)
    assert dead.status == "dead"
    assert follower.status == "held"
    assert await service.store.drop(dead.id)
    await service.dispatcher.run_until_idle(idle_s=0.3)
    dead, follower = await rows(service)
    assert dead.status == "dropped"
    # released, it now waits: its customer will never exist
    assert follower.status == "waiting"
    assert follower.hold_reason == "customer CRM-X is not created yet"


async def test_a_dead_customer_holds_its_tenants_waiting_commands(
    service: Service, sandbox: SandboxAdmin
) -> None:
    tenant = "CRM-DC"
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    await service.uow.accept(
        c.event(),
        [
            c.create_customer(tenant),
            c.create_subscription(tenant, seats=5),
            c.create_user(tenant, "E1"),
            c.assign(tenant, "E1"),
        ],
    )
    await service.dispatcher.run_until_idle(idle_s=0.3, timeout_s=10)
    dead, subscription, user, licence = await rows(service)
    assert dead.status == "dead"
    assert (subscription.status, subscription.hold_reason) == ("held", f"blocked by #{dead.id}")
    # not waiting for a customer no one will make until an operator acts: held behind it
    assert (user.status, user.hold_reason) == ("held", f"blocked by #{dead.id}")
    # behind its user in the entity's queue, not stepped over by every claim
    assert (licence.status, licence.hold_reason) == ("held", f"queued behind #{user.id}")
    assert licence.attempts == 0
    # one accepted later waits once, then is held behind the same command
    await service.uow.accept(c.event(), [c.create_user(tenant, "E2")])
    await service.dispatcher.run_until_idle(idle_s=0.3, timeout_s=10)
    late = (await rows(service))[-1]
    assert (late.status, late.hold_reason) == ("held", f"blocked by #{dead.id}")
    assert late.attempts <= 1

    sandbox.faults(error_rate=0.0)
    assert await service.store.retry(dead.id)
    await service.dispatcher.run_until_idle(idle_s=0.3)
    assert await service.store.counts() == {"done": 5}
    made = {u["email"] for u in sandbox.state()["users"]}
    assert {c.email_of(tenant, "E1"), c.email_of(tenant, "E2")} <= made


async def test_missing_prerequisites_wait_then_proceed(
    service: Service, sandbox: SandboxAdmin
) -> None:
    tenant = "CRM-W"
    await service.uow.accept(c.event(), [c.create_user(tenant, "E1"), c.assign(tenant, "E1")])
    await run_for(service, 0.3)
    first, second = await rows(service)
    assert first.status == "waiting"
    assert first.hold_reason == f"tenant {tenant} has no UCaaS customer yet"
    assert first.attempts == 0  # waiting is not failing
    # its entity's next command is held queued behind it: claims do not step over it
    assert (second.status, second.hold_reason) == ("held", f"queued behind #{first.id}")

    # the customer arrives (one seat), then the subscription
    await service.uow.accept(
        c.event(), [c.create_customer(tenant), c.create_subscription(tenant, seats=1)]
    )
    await service.uow.accept(c.event(), [c.create_user(tenant, "E2"), c.assign(tenant, "E2")])
    await service.dispatcher.run_until_idle(idle_s=0.5)
    assigns = {
        r.entity.split(":")[-1]: r for r in await rows(service) if r.kind == "assign_licence"
    }
    # one seat for two: one licence lands, the other waits for a seat (whichever came first)
    holder = next(e for e, r in assigns.items() if r.status == "done")
    seatless = assigns["E2" if holder == "E1" else "E1"]
    assert seatless.status == "waiting"
    assert seatless.hold_reason.startswith("1262:")

    # a leaver frees the seat; the waiting licence goes through
    await service.uow.accept(c.event(), [c.revoke(tenant, holder)])
    await service.dispatcher.run_until_idle(idle_s=0.5)
    assert (await service.store.counts()) == {"done": 7}


async def test_lookup_after_an_ambiguous_create_adopts_instead_of_duplicating(
    service: Service, sandbox: SandboxAdmin
) -> None:
    tenant = "CRM-A"
    await service.uow.accept(c.event(), [c.create_customer(tenant)])
    await service.dispatcher.run_until_idle()
    # The user is created, but the answer is lost.
    sandbox.faults(drop_rate=1.0, drop_phase="after", only=["POST /users"])
    await service.uow.accept(c.event(), [c.create_user(tenant, "E1")])
    await service.dispatcher.run_until_idle()  # every POST /users answer is still lost
    _, user_row = await rows(service)
    assert (user_row.status, user_row.in_doubt, user_row.attempts) == ("done", True, 2)
    assert user_row.hold_reason == "adopted the existing user"
    users = [u for u in sandbox.state()["users"] if u["email"] == c.email_of(tenant, "E1")]
    assert len(users) == 1
    assert sandbox.calls()["calls"]["POST /users"] == 1  # looked up, not created again


async def test_a_clean_run_spends_no_lookup_call(service: Service, sandbox: SandboxAdmin) -> None:
    await service.uow.accept(c.event(), c.onboarding("CRM-C", employees=5))
    await service.dispatcher.run_until_idle()
    assert await service.store.counts() == {"done": 12}
    calls = sandbox.calls()["calls"]
    assert "GET /users" not in calls
    assert "GET /customers" not in calls
    assert "GET /subscriptions" not in calls


async def test_tenant_login_is_captured_encrypted_and_used(
    service: Service, sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    tenant = "CRM-S"
    await service.uow.accept(c.event(), c.onboarding(tenant, employees=1))
    await service.dispatcher.run_until_idle()
    async with service.engine.connect() as conn:
        login = (await conn.execute(sa.select(LOGINS).where(LOGINS.c.tenant == tenant))).one()
    assert service.store.vault is not None
    password = service.store.vault.open(login.secret).get_secret_value()
    assert password not in login.secret
    if service.settings.is_sqlite:
        files = await asyncio.to_thread(lambda: list(tmp_path.glob("ucaas-sync.db*")))
        raw = b"".join([await asyncio.to_thread(p.read_bytes) for p in files])
        assert password.encode() not in raw
    # the tenant's own login made the user (the customer admin logged in), not the admin
    admins = [u for u in sandbox.state()["users"] if u["email"] == login.username]
    assert admins[0]["last_login_time"] is not None
    assert password not in repr(service.accounts)


async def test_a_configured_tenant_login_is_used_for_an_adopted_customer(
    database_url: str, sandbox: SandboxAdmin
) -> None:
    """The customer exists before the service: create_customer adopts it (no login is
    handed over), and the login from configuration acts for the tenant."""
    from service.app.bootstrap import bootstrap
    from service.settings import TenantLogin
    from tests.integration.conftest import service_settings
    from tests.integration.ucaas.factories import new_customer, portal_auth

    existing = new_customer(sandbox, customer_code="CRM-CFG")
    username, password = portal_auth(existing)
    settings = service_settings(database_url, sandbox).model_copy(
        update={
            "tenant_logins": {"CRM-CFG": TenantLogin(username=username, password=password)},
            "admin_acts_for_tenants": False,
        }
    )
    svc = await bootstrap(settings, migrate=True)
    try:
        await svc.uow.accept(
            c.event(), [c.create_customer("CRM-CFG"), c.create_user("CRM-CFG", "E1")]
        )
        await svc.dispatcher.run_until_idle()
        customer_row, user_row = await rows(svc)
    finally:
        await svc.aclose()
    assert (customer_row.status, customer_row.hold_reason) == (
        "done",
        "adopted the existing customer",
    )
    assert user_row.status == "done"
    state = sandbox.state()
    made = next(u for u in state["users"] if u["email"] == c.email_of("CRM-CFG", "E1"))
    assert made["customer_id"] == existing["customer"]["customer_id"]
    portal = next(u for u in state["users"] if u["email"] == username)
    assert portal["last_login_time"] is not None  # the configured login did the work
