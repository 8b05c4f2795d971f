"""The status page in headless Chromium, against `ucaas-sync run` as an operator starts it:
a real broker, the sandbox, SQLite, and the admin API behind a token.

HR and CRM events go through, one record is not JSON (a dead letter), one company is
refused by the API (a dead command), a leaver's deprovisioning waits for approval and a
calendar feed fails. The page then has to show what the database holds: the counts in
the pipeline boxes, the dead letter's reason, the dead command's error, the held
commands, a throughput chart with lines and points; without the token, only the prompt.

Skipped, with the reason, where /usr/bin/chromium is missing or playwright cannot start it;
under `make test` (which installs it) that fails instead.
Set STATUS_PAGE_SCREENSHOT=PATH to keep a screenshot (docs/status-page.png is made so).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connectors.hr.scim import CORE, ENTERPRISE
from service.devtools.local_broker import Topics
from service.devtools.service_processes import BIN, MOVING, Outbox
from tests.support.databases import sqlite_url
from tests.support.feeds import FeedServer
from tests.support.kafka import EventProducer, cloudevent
from tests.support.sandbox_server import SandboxAdmin
from tests.support.service_processes import dispatch_env

CHROMIUM = Path("/usr/bin/chromium")
ODD_FEED = Path(__file__).resolve().parents[1] / "fixtures/ics/real/odd_good_and_broken_events.ics"
TOKEN = "status-page-token-93be1f"
TENANT = "CRM-PAGE"
REFUSED = "CRM-REFUSED"
ADMIN_URL = re.compile(r"admin API on (http://127\.0\.0\.1:\d+)")
OUTBOX_STATUSES = ("pending", "in_flight", "waiting", "held", "dead", "done", "dropped")

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright not installed")


# -- events ------------------------------------------------------------------------------------
def company(crm_id: str) -> dict[str, Any]:
    return cloudevent(
        "crm.company.created",
        crm_id,
        {
            "company_id": crm_id,
            "name": f"Acme {crm_id}",
            "legal_name": f"Acme {crm_id} SAS",
            "contact": {"name": "Paul Martin", "email": "billing@acme.example"},
            "office_address": {"line1": "12 rue de la Paix", "city": "Paris", "country": "FR"},
        },
    )


def purchase(crm_id: str) -> dict[str, Any]:
    data = {
        "purchase_id": "P-vc",
        "plan": "vc-basic",
        "app": "vc",
        "seats": 10,
        "start": datetime.now(UTC).date().isoformat(),
    }
    return cloudevent("crm.subscription.purchased", crm_id, data)


def employee(kind: str, employee_id: str) -> dict[str, Any]:
    email = f"{employee_id.lower()}@{TENANT.lower()}.example"
    user = {
        "schemas": [CORE, ENTERPRISE],
        "externalId": employee_id,
        "userName": email,
        "name": {"givenName": "Ann", "familyName": f"Lee {employee_id}"},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE: {"employeeNumber": employee_id, "department": "Sales"},
        "tenant": TENANT,
    }
    return cloudevent(f"hr.user.{kind}", employee_id, user)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the service, as `ucaas-sync run` ----------------------------------------------------------
class RunProcess:
    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.log = folder / "run.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "ucaas-sync"), "run"],
                env=env,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def admin_url(self, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.tail()
            found = ADMIN_URL.search(self.log.read_text(errors="replace"))
            if found:
                return found.group(1)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no admin URL in the log within {timeout_s} s\n{self.tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def until(
    what: str, check: Callable[[], bool], run: RunProcess, timeout_s: float = 40
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        assert run.process.poll() is None, run.tail()
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}\n{run.tail()}"
        await asyncio.sleep(0.2)


def scalar(outbox: Outbox, query: str) -> int:
    with outbox.engine.connect() as conn:
        return int(conn.scalar(sa.text(query)) or 0)


def grouped(outbox: Outbox, query: str) -> dict[str, int]:
    with outbox.engine.connect() as conn:
        return {str(k): int(n) for k, n in conn.execute(sa.text(query))}


# -- Chromium ----------------------------------------------------------------------------------
def no_browser(reason: str) -> None:
    """Skip, unless the run requires the browser (`make test` installs it, so there a
    missing one is a failure, not a test that silently does not exist)."""
    if os.environ.get("UCAAS_SYNC_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():  # noqa: ASYNC240 - one stat, before anything runs
        no_browser(f"{CHROMIUM} not found (Debian's chromium package)")
    async with playwright_api.async_playwright() as p:
        try:
            launched = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        except Exception as exc:  # any launch failure means: no browser here
            no_browser(f"playwright cannot start {CHROMIUM}: {type(exc).__name__}: {exc}")
        yield launched
        await launched.close()


@pytest.fixture
async def running(
    tmp_path: Path, sandbox: SandboxAdmin, kafka: str
) -> AsyncIterator[tuple[str, Outbox, RunProcess, Topics]]:
    database = sqlite_url(tmp_path)
    topics = Topics.fresh("page")
    await topics.create(kafka, partitions=2)
    env = dispatch_env(database, sandbox.base_url, lease_s=2.0)
    env.update(topics.env())
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        UCAAS_SYNC_KAFKA_SESSION_TIMEOUT_MS="6000",
        UCAAS_SYNC_ADMIN_TOKEN=TOKEN,
        UCAAS_SYNC_INTAKE_GUARD_THRESHOLD="1",  # a second leaver waits for approval
        UCAAS_SYNC_CALENDAR_ALLOW_PRIVATE_ADDRESSES="true",
    )
    run = RunProcess(env, tmp_path)
    outbox = Outbox(env["UCAAS_SYNC_DATABASE_URL"])
    try:
        url = await run.admin_url()
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 60
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, f"not ready\n{run.tail()}"
                await asyncio.sleep(0.2)
        yield url, outbox, run, topics
    finally:
        run.stop()
        outbox.close()


async def make_history(
    kafka: str,
    sandbox: SandboxAdmin,
    outbox: Outbox,
    run: RunProcess,
    topics: Topics,
    feeds: FeedServer,
) -> None:
    """Work that went through, work that failed for each reason, work that waits; a feed
    that fails and one with events it cannot use."""
    async with EventProducer(kafka) as producer:
        await producer.event(topics.crm, company(TENANT))
        await producer.event(topics.crm, purchase(TENANT))
        for n in range(1, 6):
            await producer.event(topics.hr, employee("joined", f"E{n}"))
        await until("onboarding done", lambda: outbox.counts() == {"done": 12}, run)

        await producer.raw(topics.hr, b"this is not JSON", key=b"E9")  # a dead letter
        feed = {
            "url": f"http://127.0.0.1:{closed_port()}/cal.ics",
            "tenant": TENANT,
            "organizer_email": f"e1@{TENANT.lower()}.example",
        }
        await producer.event(topics.calendar, cloudevent("calendar.feed.registered", "team", feed))
        odd = feed | {"url": feeds.publish(ODD_FEED.read_bytes(), path="/odd.ics")}
        await producer.event(topics.calendar, cloudevent("calendar.feed.registered", "odd", odd))
        await producer.event(topics.hr, employee("left", "E4"))
        await producer.event(topics.hr, employee("left", "E5"))  # over the guard: held

        sandbox.faults(error_rate=1.0, error_status=403, only=["POST /customers"])
        try:
            await producer.event(topics.crm, company(REFUSED))
            await until(
                "the refused company is dead",
                lambda: scalar(outbox, "SELECT count(*) FROM outbox WHERE status = 'dead'") == 1,
                run,
            )
        finally:
            sandbox.faults(error_rate=0.0)
    await until(
        "dead letter, failing feed, nothing moving",
        lambda: (
            scalar(outbox, "SELECT count(*) FROM dead_letter") == 1
            and scalar(outbox, "SELECT count(*) FROM calendar_feed WHERE last_status = 'failed'")
            == 1
            and scalar(outbox, "SELECT count(*) FROM calendar_feed WHERE skipped_events = 5") == 1
            and not any(outbox.counts().get(s) for s in MOVING)
        ),
        run,
    )


async def value(page: Any, testid: str) -> int:
    text = await page.locator(f'[data-testid="{testid}"] .value').inner_text()
    cleaned = text.replace(",", "").strip()
    return int(cleaned) if cleaned.isdigit() else -1


async def test_the_status_page_shows_what_the_database_holds(
    running: tuple[str, Outbox, RunProcess, Topics],
    browser: Any,
    sandbox: SandboxAdmin,
    kafka: str,
    tmp_path: Path,
) -> None:
    url, outbox, run, topics = running
    feeds = FeedServer()
    try:
        await make_history(kafka, sandbox, outbox, run, topics, feeds)
    finally:
        feeds.close()

    # -- without the token: the prompt, and no data ------------------------------------------------
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    await page.goto(url + "/")
    prompt = page.get_by_test_id("token-prompt")
    await prompt.wait_for(state="visible", timeout=10_000)
    assert await page.get_by_test_id("dashboard").is_hidden()
    assert await page.locator('[data-testid="outbox-done"]').count() == 0  # nothing drawn
    await page.get_by_test_id("token-input").fill("not-the-token")
    await page.get_by_test_id("token-input").press("Enter")
    await page.get_by_test_id("token-refused").wait_for(state="visible", timeout=10_000)
    assert await page.get_by_test_id("dashboard").is_hidden()
    await context.close()

    # -- with the token in the fragment ----------------------------------------------------------
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    failed_requests: list[str] = []
    page.on("requestfailed", lambda r: failed_requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{url}/#token={TOKEN}")
    await page.get_by_test_id("dashboard").wait_for(state="visible", timeout=15_000)
    # a locator, not wait_for_function: the page's CSP forbids the eval that polls it
    await page.locator("body[data-loaded]").wait_for(state="attached", timeout=15_000)
    assert "token" not in page.url, page.url  # taken out of the address bar
    assert await page.get_by_test_id("token-prompt").is_hidden()

    # the pipeline boxes against the database
    outbox_counts = outbox.counts()
    shown_outbox = {s: await value(page, f"outbox-{s}") for s in OUTBOX_STATUSES}
    assert shown_outbox == {s: outbox_counts.get(s, 0) for s in OUTBOX_STATUSES}
    assert shown_outbox["dead"] == 1
    assert shown_outbox["held"] >= 1
    events = grouped(outbox, "SELECT outcome, count(*) FROM inbox GROUP BY outcome")
    assert await value(page, "events-accepted") == events["accepted"]
    notes = sum(n for outcome, n in events.items() if outcome != "accepted")
    assert notes >= 1, "the feed registration is taken without a command"
    assert await value(page, "events-no-change") == notes
    total_events = await page.get_by_test_id("events-total").inner_text()
    assert int(total_events) == scalar(outbox, "SELECT count(*) FROM inbox")
    assert await value(page, "dead-letters-total") == 1
    assert await value(page, "feeds-failed") == 1
    calls = scalar(outbox, "SELECT count(*) FROM call_log")
    assert int((await page.get_by_test_id("calls-total").inner_text()).replace(",", "")) == calls
    assert await value(page, "calls-2xx") > 0

    # failures with their reasons
    letter_reason = grouped(outbox, "SELECT reason, 1 FROM dead_letter")
    dead_error = grouped(outbox, "SELECT last_error, 1 FROM outbox WHERE status = 'dead'")
    failures = page.get_by_test_id("failure-list")
    text = await failures.inner_text()
    for reason in [*letter_reason, *dead_error]:
        assert reason in text, (reason, text)
    assert "HTTP 403" in text
    kinds = await page.locator('[data-testid="failure"]').evaluate_all(
        "items => items.map(i => i.dataset.what)"
    )
    assert {"command", "dead_letter", "feed"} <= set(kinds), kinds

    # the feeds, with the events skipped as unusable and their reasons
    assert await page.locator('[data-testid="feed-row"]').count() == 2
    odd_row = page.locator('[data-testid="feed-row"][data-feed="odd"]')
    odd_text = await odd_row.inner_text()
    with outbox.engine.connect() as conn:
        sample = conn.scalar(
            sa.text("SELECT skipped_sample FROM calendar_feed WHERE feed_id = 'odd'")
        )
    reasons = [f"{s['uid']}: {s['reason']}" for s in json.loads(sample)]
    assert len(reasons) == 5 and all(r in odd_text for r in reasons), (reasons, odd_text)
    shown = await odd_row.locator("td.num").all_inner_texts()
    assert shown[-1] == "5", shown
    team_text = await page.locator('[data-testid="feed-row"][data-feed="team"]').inner_text()
    assert "failed: " in team_text, team_text
    assert await page.get_by_test_id("feeds-skipped-total").inner_text() == "5 events skipped"

    # held approvals
    held = scalar(
        outbox,
        "SELECT count(*) FROM outbox WHERE status = 'held' AND hold_reason LIKE 'approval: %'",
    )
    assert held >= 1
    assert await page.locator('[data-testid="held-row"]').count() == held

    # the chart: three series, lines through every minute, points where work was done
    for series in ("events", "done", "failed"):
        path = await page.get_by_test_id(f"line-{series}").get_attribute("d")
        assert path is not None and path.startswith("M") and path.count("L") >= 60, series
        points = page.locator(f'[data-testid="series-{series}"] circle')
        assert await points.count() >= 1, series
    assert await page.locator('[data-testid="x-axis"] text').count() >= 3
    assert await page.locator('[data-testid="y-axis"] text').count() >= 2
    legend = await page.get_by_test_id("legend").inner_text()
    assert "events/min" in legend and "failures/min" in legend

    wide = tmp_path / "status-page.png"
    await page.screenshot(path=str(wide), full_page=True)
    keep = os.environ.get("STATUS_PAGE_SCREENSHOT")
    if keep:
        shutil.copyfile(wide, keep)

    # narrow: the pipeline runs top to bottom, nothing wider than the window
    await page.set_viewport_size({"width": 420, "height": 900})
    await asyncio.sleep(0.3)
    boxes = [
        await page.get_by_test_id(f"stage-{name}").bounding_box()
        for name in ("topics", "outbox", "ucaas")
    ]
    assert all(b is not None for b in boxes)
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]  # type: ignore[index]
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 420, scroll_width
    await page.screenshot(path=str(tmp_path / "status-page-narrow.png"), full_page=True)

    assert errors == [], errors
    assert not [u for u in failed_requests if u.startswith(url)], failed_requests
    await context.close()
    print(f"\ncompared: outbox {outbox_counts}, events {events}, calls {calls}, held {held}")
