"""Limits on feed registrations. One registered with an interval of centuries was taken,
then every successful poll failed computing its next fetch time (past year 9999) and left
the feed leased and retried for ever. The interval is capped at a week: invalid data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from connectors.calendar.schema import MAX_INTERVAL_S
from connectors.events.cloudevents import Record, parse
from service.intake.events import to_domain
from service.intake.mapping import InvalidEventError


def registered(interval_s: float) -> Record:
    event = {
        "specversion": "1.0",
        "id": "f-1",
        "source": "/tests",
        "type": "calendar.feed.registered",
        "subject": "team",
        "data": {
            "url": "https://calendar.example.com/team.ics",
            "organizer_email": "ann@acme.example",
            "tenant": "CRM-1",
            "interval_s": interval_s,
        },
    }
    return Record("calendar.feeds", 0, 0, None, orjson.dumps(event))


@pytest.mark.parametrize("interval_s", [MAX_INTERVAL_S + 1, 1e12, 1e300])
def test_an_interval_past_the_cap_is_invalid_data(interval_s: float) -> None:
    with pytest.raises(InvalidEventError) as caught:
        to_domain(parse(registered(interval_s)))
    assert caught.value.error == "invalid_data"
    assert caught.value.reason.startswith("interval_s:")


def test_the_cap_itself_is_taken_and_its_next_fetch_is_a_date() -> None:
    event = to_domain(parse(registered(MAX_INTERVAL_S)))
    assert event.feed.interval_s == MAX_INTERVAL_S  # type: ignore[union-attr]
    # the poller's next fetch, with its 10% jitter at most
    assert datetime.now(UTC) + timedelta(seconds=MAX_INTERVAL_S * 1.1) > datetime.now(UTC)
    with pytest.raises(OverflowError):  # what the uncapped interval did
        datetime.now(UTC) + timedelta(seconds=1e12)


def test_a_tenant_with_control_characters_is_invalid_data() -> None:
    record = registered(600)
    value = (record.value or b"").replace(b'"CRM-1"', b'"CRM\\u00001"')
    with pytest.raises(InvalidEventError) as caught:
        to_domain(parse(Record(record.topic, 0, 0, None, value)))
    assert (caught.value.error, caught.value.reason) == (
        "invalid_data",
        "tenant holds control characters",
    )
