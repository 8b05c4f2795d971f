"""The demo's scenario and its expected numbers: pure, no I/O.

The expected numbers are folded from the events by the demo's own reading of
docs/events.md; these tests hold that reading to the contract (the service's translation
of the same events, its iCalendar expander on the same feed) so a wrong expectation
cannot make the demo pass or fail for the wrong reason.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from connectors.calendar.ics import parse_feed
from connectors.events.cloudevents import Record, parse
from service.devtools.demo.feed import vcalendar
from service.devtools.demo.scenario import DEPARTMENTS, build
from service.devtools.demo.summary import Found, asked, compare
from service.domain.events import HrEvent
from service.intake.events import to_domain

NOW = datetime(2026, 3, 27, 16, 0, tzinfo=UTC)  # the weekly series crosses Paris' DST change
URL = "http://127.0.0.1:8000/calendar.ics"


def test_the_scenario_is_the_same_for_the_same_seed_and_realistic() -> None:
    one, two = build(NOW, URL), build(NOW, URL)
    assert [e.body for e in one.events] == [e.body for e in two.events]
    assert len({e.body["id"] for e in one.events}) == len(one.events)  # ids unique
    staff = one.employees
    assert len(staff) == 50
    assert set(Counter(e.department for e in staff)) == set(DEPARTMENTS)
    assert {e.tenant for e in staff} == {c.crm_id for c in one.companies}
    assert len({c.address["country"] for c in one.companies}) == 2
    assert any(not (e.given + e.family).isascii() for e in staff)  # accents in names
    assert all(e.email.isascii() for e in staff)
    assert len({e.email for e in staff}) == 50
    assert Counter(e.type for e in one.events) == {
        "crm.company.created": 2,
        "crm.subscription.purchased": 2,
        "hr.user.joined": 50,
        "hr.user.updated": 3,
        "hr.user.leave_started": 1,
        "hr.user.leave_ended": 1,
        "hr.user.left": 2,
        "calendar.feed.registered": 1,
    }


def test_every_event_is_valid_for_the_service() -> None:
    for event in build(NOW, URL).events:
        body = event.body
        record = Record(
            topic=event.stream,
            partition=0,
            offset=0,
            key=body["subject"].encode(),
            value=orjson.dumps(body),
            headers=(("content-type", b"application/cloudevents+json"),),
        )
        domain = to_domain(parse(record))  # raises for anything the consumers refuse
        if isinstance(domain, HrEvent):
            assert domain.employee_id == body["subject"]


def test_what_the_events_ask_for() -> None:
    want = asked(build(NOW, URL))
    assert len(want.customers) == 2
    assert sum(want.purchases.values()) == 60
    assert len(want.users) == 50
    assert want.by_status("active") == 48  # the one on leave came back
    assert want.by_status("left") == 2
    assert (want.meetings_upcoming, want.meetings_cancelled) == (8, 1)


@pytest.mark.parametrize("version", [0, 1])
def test_the_feed_expands_to_the_occurrences_the_demo_expects(version: int) -> None:
    scenario = build(NOW, URL)
    series = scenario.calendar[version]
    body = vcalendar(series, scenario.organiser.email, "Demo")
    found = parse_feed(body, start=NOW, end=NOW + timedelta(days=30)).occurrences
    meetings = [o for o in found if not o.cancelled]
    expected = sorted(start.astimezone(UTC) for s in series for start in s.occurrences())
    assert sorted(o.start for o in meetings) == expected
    assert len(expected) == (9, 8)[version]


def test_a_mismatch_is_shown() -> None:
    scenario = build(NOW, URL)
    want = asked(scenario)
    users = {
        u.email: {
            "status": "A" if u.status == "active" else "S",
            "licence": u.status != "left",
            "given": u.given,
            "family": u.family,
            "department": u.department,
            "title": u.title,
        }
        for u in want.users.values()
    }
    got = Found(
        customers=dict(want.customers),
        subscriptions=2,
        seats=60,
        users=users,
        meetings_upcoming=8,
        meetings_cancelled=1,
    )
    assert all(row.ok for row in compare(want, got))
    # swap an active user and a leaver: the counts agree, the statuses do not
    leaver = next(e for e, u in users.items() if u["status"] == "S")
    active = next(e for e, u in users.items() if u["status"] == "A")
    users[leaver]["status"], users[active]["status"] = "A", "S"
    failed = {row.what.strip() for row in compare(want, got) if not row.ok}
    assert failed == {"active", "suspended (on leave or left)"}
    users[active]["department"] = "Nowhere"
    assert "profiles as last sent by HR" in {r.what.strip() for r in compare(want, got) if not r.ok}
