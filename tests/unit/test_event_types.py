"""The table of event types: one row per CloudEvent type, agreeing per domain event."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.intake import events
from service.intake.events import BY_DOMAIN, EVENT_TYPES, KNOWN_TYPES


def test_every_type_has_one_row_and_every_domain_event_one_translation() -> None:
    assert len(KNOWN_TYPES) == len(EVENT_TYPES)
    assert {row.domain for row in EVENT_TYPES} == set(BY_DOMAIN)


def test_rows_of_one_domain_event_that_translate_differently_are_refused() -> None:
    first = EVENT_TYPES[0]
    odd = replace(first, name="hr.user.odd", translate=lambda event, state, context: None)
    with pytest.raises(TypeError, match=r"hr\.user\.odd translates HrEvent unlike"):
        events._by_domain([first, odd])
