"""The status page's search box in headless Chromium, against `ucaas-sync run` serving
only the admin API (no broker, no dispatcher: nothing moves the rows) on a SQLite
database written row by row (tests/support/stories.py): a person with her event, her
commands, a UCaaS call and two result events, one published.

Searched by e-mail and by employee id, she is one match; clicking it tells her story with
the result events' types; her name, which is markup, shows as text. A query that matches
nothing says so. The results tile shows the unpublished result and the relay's lag.

Skipped like test_status_page.py where Chromium is missing (a failure under `make test`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.outbox import db
from tests.e2e.test_status_page import RunProcess, browser  # noqa: F401 - the fixture
from tests.support import stories
from tests.support.service_processes import dispatch_env

TOKEN = "search-page-reader-token-7d21"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    path = tmp_path / "search.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(db.upgrade, url)
    await asyncio.to_thread(stories.seed, f"sqlite:///{path}")
    # no dispatcher: the UCaaS address is never called
    env = dispatch_env(url, "http://127.0.0.1:9/ucaas/v1")
    env.update(UCAAS_SYNC_ADMIN_READ_TOKEN=TOKEN, UCAAS_SYNC_LOG_FORMAT="console")
    env["UCAAS_SYNC_ADMIN_TOKEN"] = "search-page-operator-token-0b5e"
    # no relay either: it would publish the seeded result the tile counts as waiting
    env["UCAAS_SYNC_RESULTS_ENABLED"] = "false"
    run = RunProcess(env, tmp_path)
    try:
        yield await run.admin_url()
    finally:
        run.stop()


async def test_search_then_the_story_with_its_result_events(
    served: str,
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{served}/#token={TOKEN}")
    await page.get_by_test_id("dashboard").wait_for(state="visible", timeout=15_000)

    # the results tile: one result waits for the relay, one published this hour
    unpublished = page.get_by_test_id("results-unpublished")
    await unpublished.locator(".value").filter(has_text="1").wait_for(timeout=10_000)
    published = page.get_by_test_id("results-published").locator(".value")
    assert await published.inner_text() == "1"
    assert (await page.get_by_test_id("results-lag").inner_text()).startswith(
        "relay lag: oldest unpublished "
    )

    search = page.get_by_test_id("search-input")
    matches = page.get_by_test_id("search-match")
    message = page.get_by_test_id("search-message")
    # the same employee id in another tenant is another person
    for query, expected in (
        (stories.ANN_EMAIL.upper(), [stories.ANN]),
        ("e1001", [stories.ANN, "user:GLOBEX:E1001"]),
    ):
        await search.fill(query)
        await search.press("Enter")
        # each search empties the list first: this count is the new answer's
        await (
            page.get_by_test_id("search-count")
            .filter(has_text=f"{len(expected)} found")
            .wait_for(timeout=10_000)
        )
        entities = [await m.get_attribute("data-entity") for m in await matches.all()]
        assert entities == expected, (query, entities)
        assert await message.is_hidden()

    # the story: her event, commands, the UCaaS call and both result events, oldest first
    await matches.first.click()
    story = page.get_by_test_id("story")
    await story.wait_for(state="visible", timeout=10_000)
    assert await page.get_by_test_id("story-entity").inner_text() == stories.ANN
    rows = page.get_by_test_id("story-row")
    whats = [await r.get_attribute("data-what") for r in await rows.all()]
    assert sorted(whats) == ["call", "command", "command", "event", "result", "result"], whats
    results = rows.filter(has=page.locator("td.what", has_text="result"))
    shown = [await r.locator("td.detail").inner_text() for r in await results.all()]
    assert stories.PROVISIONED in shown[0] and "published" in shown[0], shown
    assert stories.LICENSED in shown[1] and "not published yet" in shown[1], shown
    assert '"ucaas_id":"u-1"' in shown[0], shown  # the CloudEvent's data

    # HR data is text, never markup: the name with a tag is shown as typed
    await search.fill(stories.ANN_EMAIL)
    await search.press("Enter")
    await matches.filter(has_text=stories.ANN_LAST_NAME).wait_for(timeout=10_000)
    assert await page.locator('[data-testid="injected"]').count() == 0

    # nothing found says so
    await search.fill("no-such-person@nowhere.example")
    await search.press("Enter")
    await message.filter(has_text="Nothing found").wait_for(timeout=10_000)
    assert await message.inner_text() == "Nothing found for “no-such-person@nowhere.example”."
    assert await matches.count() == 0
    assert await story.is_hidden()
    assert errors == [], errors
    await context.close()
