"""The status page's actions in headless Chromium, against `ucaas-sync run` (no Kafka: the
dispatcher and the admin API) with named tokens: an operator's and a reader's.

Two companies are refused by UCaaS (two dead commands). The operator types her token
once, clicks "retry" by one: the page says it is queued, the dispatcher does it, and the
audit log names her. The reader types his and clicks "retry" by the other: the page shows
the refusal, the command stays dead, and the refusal is audited under his name.

Two leavers' suspensions are held for approval (as the deprovisioning guard holds them).
The operator clicks "approve" by one and "deny" by the other: the page says so each time
and redraws without their buttons, the approved one runs (the user is suspended in UCaaS),
the denied one is dropped (the other keeps access), and the audit log names her for both.
A tab still showing a command denied meanwhile does not claim to have approved it.

Skipped like test_status_page.py where Chromium is missing (a failure under `make test`).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.devtools import sample_commands as c
from service.devtools.service_processes import BIN, Outbox
from service.domain.commands import APPROVAL
from tests.e2e.test_status_page import ADMIN_URL, browser  # noqa: F401 - the fixture
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import TenantInSandbox, accept, db_upgrade, dispatch_env

ADMIN_TOKEN = "page-admin-token-51d0e2"
ANN = "page-operator-token-ann-8f3c"
RITA = "page-reader-token-rita-27b9"
TOKENS = {"ann": {"token": ANN, "role": "operator"}, "rita": {"token": RITA, "role": "reader"}}


def dead_ids(outbox: Outbox) -> list[int]:
    return sorted(r.id for r in outbox.rows("id", "status") if r.status == "dead")


async def until(what: str, check: Any, log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            tail = await asyncio.to_thread(log.read_text, errors="replace")
            raise AssertionError(f"not within {timeout_s} s: {what}\n{tail[-4000:]}")
        await asyncio.sleep(0.2)


def start_run(env: dict[str, str], folder: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`ucaas-sync run` without Kafka: the dispatcher and the admin API."""
    log = folder / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [str(BIN / "ucaas-sync"), "run", "--no-consumers", "--no-poller"],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return run, log


async def page_env(folder: Path, sandbox: SandboxAdmin) -> dict[str, str]:
    """The environment of `ucaas-sync run` with the named tokens, its database upgraded."""
    env = dispatch_env(f"sqlite+aiosqlite:///{folder / 'page.db'}", sandbox.base_url)
    env.update(
        UCAAS_SYNC_ADMIN_TOKEN=ADMIN_TOKEN,
        UCAAS_SYNC_ADMIN_TOKENS=json.dumps(TOKENS),
        UCAAS_SYNC_LOG_FORMAT="console",
    )
    await asyncio.to_thread(db_upgrade, env, folder)
    return env


def admin_url(log: Path) -> str:
    text = log.read_text(errors="replace")
    found = ADMIN_URL.search(text)
    assert found, text
    return found.group(1)


def statuses(outbox: Outbox) -> dict[int, str]:
    return {r.id: r.status for r in outbox.rows("id", "status")}


@pytest.fixture
async def served(
    tmp_path: Path, sandbox: SandboxAdmin
) -> AsyncIterator[tuple[str, Outbox, list[int], Path]]:
    env = await page_env(tmp_path, sandbox)
    sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
    batches = [[c.create_customer("CRM-P1")], [c.create_customer("CRM-P2")]]
    await asyncio.to_thread(accept, env["UCAAS_SYNC_DATABASE_URL"], batches)
    outbox = Outbox(env["UCAAS_SYNC_DATABASE_URL"])
    run, log = start_run(env, tmp_path)
    try:
        await until("two dead commands", lambda: len(dead_ids(outbox)) == 2, log)
        sandbox.faults(error_rate=0.0)
        yield await asyncio.to_thread(admin_url, log), outbox, dead_ids(outbox), log
    finally:
        run.terminate()
        run.wait(timeout=30)
        outbox.close()


TENANT = "CRM-H"
LEAVERS = ("E0000", "E0001")
HOLD = f"{APPROVAL}2 people suspended/revoked in tenant {TENANT} within 60 min (limit 1)"


@pytest.fixture
async def held(
    tmp_path: Path, sandbox: SandboxAdmin
) -> AsyncIterator[tuple[str, Outbox, list[int], Path]]:
    """A tenant onboarded (done), then its two leavers' suspensions held for approval."""
    env = await page_env(tmp_path, sandbox)
    database_url = env["UCAAS_SYNC_DATABASE_URL"]
    await asyncio.to_thread(accept, database_url, [c.onboarding(TENANT, len(LEAVERS))])
    leavers = [[c.suspend(TENANT, e) for e in LEAVERS]]
    await asyncio.to_thread(accept, database_url, leavers, dict.fromkeys((0, 1), HOLD))
    outbox = Outbox(database_url)
    run, log = start_run(env, tmp_path)
    try:
        await until(
            "the onboarding done, the suspensions held",
            lambda: sorted(statuses(outbox).values()) == ["done"] * 6 + ["held"] * 2,
            log,
        )
        ids = sorted(i for i, status in statuses(outbox).items() if status == "held")
        yield await asyncio.to_thread(admin_url, log), outbox, ids, log
    finally:
        run.terminate()
        run.wait(timeout=30)
        outbox.close()


async def open_page(chromium: Any, url: str, token: str) -> tuple[Any, Any, list[str]]:
    """A fresh tab; the token typed into the page's form, once."""
    context = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(url + "/")
    await page.get_by_test_id("token-input").fill(token)
    await page.get_by_test_id("token-input").press("Enter")
    await page.get_by_test_id("dashboard").wait_for(state="visible", timeout=15_000)
    return context, page, errors


async def test_an_operator_retries_by_clicking_and_a_reader_is_refused(
    served: tuple[str, Outbox, list[int], Path],
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    url, outbox, (first, second), log = served

    # -- the operator --------------------------------------------------------------------------
    context, page, errors = await open_page(browser, url, ANN)
    retry = page.get_by_test_id(f"retry-{first}")
    await retry.wait_for(state="visible", timeout=15_000)
    assert await page.get_by_test_id(f"drop-{first}").is_visible()
    await retry.click()
    result = page.get_by_test_id("action-result")
    # a locator, not wait_for_function: the page's CSP forbids the eval that polls it
    await page.locator('[data-testid=action-result][data-result="ok"]').wait_for(
        state="attached", timeout=10_000
    )
    assert await result.inner_text() == f"command #{first} queued again"
    await until("the retried command is done", lambda: first not in dead_ids(outbox), log)
    await until(
        "done",
        lambda: {r.id: r.status for r in outbox.rows("id", "status")}[first] == "done",
        log,
    )
    # the page redraws: the retried command is no longer offered
    await page.get_by_test_id(f"retry-{first}").wait_for(state="detached", timeout=15_000)
    # the token is in the tab's sessionStorage only: never in the address, nor localStorage
    assert ANN not in page.url
    assert await page.evaluate("window.localStorage.length") == 0
    assert errors == [], errors
    await context.close()

    # -- the reader ------------------------------------------------------------------------------
    context, page, errors = await open_page(browser, url, RITA)
    retry = page.get_by_test_id(f"retry-{second}")
    await retry.wait_for(state="visible", timeout=15_000)
    await retry.click()
    # a locator, not wait_for_function: the page's CSP forbids the eval that polls it
    await page.locator('[data-testid=action-result][data-result="refused"]').wait_for(
        state="attached", timeout=10_000
    )
    shown = await page.get_by_test_id("action-result").inner_text()
    assert shown.startswith(f"retry #{second} refused: "), shown
    assert "operator" in shown, shown
    assert await page.get_by_test_id("dashboard").is_visible()  # still reading
    assert errors == [], errors
    await context.close()
    assert dead_ids(outbox) == [second]

    # -- the audit log -----------------------------------------------------------------------------
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = await http.get("/api/audit", headers={"Authorization": f"Bearer {RITA}"})
    entries = [
        (e["actor"], e["role"], e["action"], e["target"], e["result"]) for e in answer.json()
    ]
    assert entries == [
        ("rita", "reader", "retry", f"/api/commands/{second}/retry", "refused"),
        ("ann", "operator", "retry", f"command {first}", "ok"),
    ], entries


async def test_an_operator_approves_one_held_command_and_denies_another_by_clicking(
    held: tuple[str, Outbox, list[int], Path],
    browser: Any,  # noqa: F811 - the fixture
    sandbox: SandboxAdmin,
) -> None:
    url, outbox, (approved, denied), log = held
    context, page, errors = await open_page(browser, url, ANN)
    rows = page.get_by_test_id("held-row")
    await page.get_by_test_id(f"approve-{approved}").wait_for(state="visible", timeout=15_000)
    assert await rows.count() == 2
    assert await page.get_by_test_id(f"deny-{approved}").is_visible()
    assert await page.get_by_test_id(f"approve-{denied}").is_visible()
    assert await page.get_by_test_id(f"deny-{denied}").is_visible()
    assert await page.get_by_test_id("held-count").inner_text() == "2 waiting"
    result = page.locator('[data-testid=action-result][data-result="ok"]')

    # approve: the page says so, the command runs, its row and buttons go
    await page.get_by_test_id(f"approve-{approved}").click()
    # locators, not wait_for_function: the page's CSP forbids the eval that polls it
    await result.wait_for(state="attached", timeout=10_000)
    assert await result.inner_text() == f"command #{approved} approved"
    await until("approved: done", lambda: statuses(outbox)[approved] == "done", log)
    assert statuses(outbox)[denied] == "held"  # one command decided, not the tenant's
    await page.get_by_test_id(f"approve-{approved}").wait_for(state="detached", timeout=15_000)
    assert await page.get_by_test_id(f"deny-{approved}").count() == 0
    assert await rows.count() == 1
    assert await page.get_by_test_id("held-count").inner_text() == "1 waiting"

    # deny: the page says so (a new text: the "ok" of the approval is still attached)
    await page.get_by_test_id(f"deny-{denied}").click()
    await result.filter(has_text=f"command #{denied} denied").wait_for(
        state="attached", timeout=10_000
    )
    assert await result.inner_text() == f"command #{denied} denied"
    await page.get_by_test_id(f"deny-{denied}").wait_for(state="detached", timeout=15_000)
    assert await page.get_by_test_id(f"approve-{denied}").count() == 0
    assert await rows.count() == 0
    await page.get_by_test_id("held-empty").wait_for(state="visible", timeout=5_000)
    assert errors == [], errors
    await context.close()

    rows_now = {r.id: (r.status, r.hold_reason) for r in outbox.rows("id", "status", "hold_reason")}
    assert rows_now[approved] == ("done", None)
    assert rows_now[denied] == ("dropped", "denied")
    # UCaaS: the approved leaver is suspended, the denied one keeps access
    users = {u["email"]: u["status"] for u in TenantInSandbox.of(sandbox.state(), TENANT).users}
    assert users == {c.email_of(TENANT, LEAVERS[0]): "S", c.email_of(TENANT, LEAVERS[1]): "A"}

    # the audit log names her for both, newest first
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = await http.get("/api/audit", headers={"Authorization": f"Bearer {ANN}"})
    entries = [
        (e["actor"], e["role"], e["action"], e["target"], e["result"], e["detail"])
        for e in answer.json()
    ]
    assert entries == [
        ("ann", "operator", "deny", f"command {denied}", "ok", "changed 1"),
        ("ann", "operator", "approve", f"command {approved}", "ok", "changed 1"),
    ], entries


async def test_a_stale_tab_does_not_claim_an_approval_that_decided_nothing(
    held: tuple[str, Outbox, list[int], Path],
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    """A tab still shows a command someone else has denied: approving it there is a 200
    with `changed: 0`, and the page must not say "approved"."""
    url, outbox, (_, decided), log = held
    context, page, errors = await open_page(browser, url, ANN)
    await page.get_by_test_id(f"approve-{decided}").wait_for(state="visible", timeout=15_000)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        stale = (await http.get("/api/held", headers={"Authorization": f"Bearer {ANN}"})).json()
        # the tab keeps showing it (its redraws get the list of before); the API denies it
        await page.route("**/api/held", lambda route: route.fulfill(json=stale))
        denied = await http.post(
            "/api/held/deny",
            json={"command_id": decided},
            headers={"Authorization": f"Bearer {ANN}"},
        )
        assert denied.json() == {"changed": 1}
        await page.get_by_test_id(f"approve-{decided}").click()
        await page.locator('[data-testid=action-result][data-result="error"]').wait_for(
            state="attached", timeout=10_000
        )
        shown = await page.get_by_test_id("action-result").inner_text()
        assert shown == f"approve #{decided} not done: command #{decided} is no longer held"
        assert errors == [], errors
        await context.close()
        assert statuses(outbox)[decided] == "dropped"
        answer = await http.get("/api/audit", headers={"Authorization": f"Bearer {ANN}"})
    entries = [(e["action"], e["target"], e["detail"]) for e in answer.json()]
    assert entries == [
        ("approve", f"command {decided}", "changed 0"),
        ("deny", f"command {decided}", "changed 1"),
    ], (entries, log)
