"""docs/examples/results_to_calendar.py, the README's consumer of result events, on a real
Google Calendar export: the results the service would publish for the feed's meetings
(translation and result model, as in production) put each join link on the right event,
a series' occurrence on an override of its own, and the file still expands to the same
occurrences."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from icalendar import Calendar

from connectors.calendar.ics import parse_feed
from service.calendar.translate import diff_feed
from service.domain.commands import Kind
from service.domain.feeds import Feed
from service.outbox.outcomes import Done, MappingKey, MappingWrite
from service.outbox.result_log import CommandRef
from service.results.model import ResultPolicy, after_batch, on_done

ROOT = Path(__file__).resolve().parents[2]
GOOGLE = ROOT / "tests" / "fixtures" / "ics" / "google_export.ics"
NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
FEED = Feed(
    feed_id="lena",
    url="https://x.example/a.ics",
    organizer_email="lena.fischer@example.de",
    tenant="acme",
)


def example() -> ModuleType:
    path = ROOT / "docs" / "examples" / "results_to_calendar.py"
    spec = importlib.util.spec_from_file_location("results_to_calendar", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def published(body: bytes) -> list[dict[str, object]]:
    """The scheduled results the service publishes for this feed, each twice (re-sent)."""
    occurrences = parse_feed(body, start=NOW, end=NOW + timedelta(days=30)).occurrences
    events = []
    for n, command in enumerate(diff_feed(FEED, occurrences, None, NOW).commands):
        assert command.kind is Kind.SCHEDULE_MEETING
        payload = command.payload.model_dump(mode="json", exclude_none=True)
        key = MappingKey("meeting", "acme", payload["meeting_key"])
        done = Done(
            mappings=(MappingWrite(key, f"m-{n}"),),
            learned={"join_url": f"https://meet.example/j/m-{n}"},
        )
        ref = CommandRef(
            n, command.kind.value, command.entity, "acme", payload, "calendar:lena", "v1"
        )
        made = on_done(ref, done, {}, after_batch({}, [done]), ResultPolicy(), NOW)
        assert made is not None
        events += [made.cloudevent, made.cloudevent]
    return events


def test_join_links_go_on_the_events_and_the_occurrences_they_were_made_for() -> None:
    module = example()
    body = GOOGLE.read_bytes()
    results = published(body)
    links = module.join_links(results)
    assert len(links) == len(results) // 2  # each result once
    patched, written = module.with_join_links(body, links)
    assert written == len(links)

    calendar = Calendar.from_ical(patched)
    single = [e for e in calendar.walk("VEVENT") if str(e["UID"]).startswith("5m2k8q1v")]
    assert [str(e["LOCATION"]) for e in single] == [
        links[("5m2k8q1v0c7p4r9s3t6u2w8x1y@google.com", None)]
    ]
    weekly = [e for e in calendar.walk("VEVENT") if str(e["UID"]).startswith("0q1w2e3r")]
    master = [e for e in weekly if e.get("RECURRENCE-ID") is None]
    assert len(master) == 1 and "CONFERENCE" not in master[0]
    overrides = {
        e.decoded("RECURRENCE-ID").astimezone(UTC): e for e in weekly if e.get("RECURRENCE-ID")
    }
    first = datetime(2026, 10, 2, 7, 0, tzinfo=UTC)  # 09:00 in Berlin, summer time
    url = links[("0q1w2e3r4t5y6u7i8o9p@google.com", "2026-10-02T07:00:00Z")]
    assert str(overrides[first]["CONFERENCE"]) == url
    assert overrides[first]["CONFERENCE"].params["FEATURE"] == "VIDEO"

    # the patched file means the same meetings: same occurrences, same times
    def plan(data: bytes) -> list[tuple[str, datetime, datetime]]:
        found = parse_feed(data, start=NOW, end=NOW + timedelta(days=30)).occurrences
        return sorted((o.key, o.start, o.end) for o in found)

    assert plan(patched) == plan(body)
