"""Events a feed has but that cannot be used: said in the log, counted in the metrics and
kept on the feed's row (how many, and the first few with their reasons), while their
meetings stay as they were."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from connectors.calendar.ics import Skipped
from service.observability import metrics

log = logging.getLogger("ucaas_sync.calendar")

SHOWN = 5  # skipped events kept on the feed's row, with their reasons


def report(feed_id: str, skipped: Sequence[Skipped]) -> None:
    """One log line for a parse that skipped events, and the count by kind."""
    if not skipped:
        return
    for each in skipped:
        metrics.feed_event_skipped(each.kind)
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    log.warning(
        "feed %s: %d event(s) skipped as unusable, their meetings kept: %s%s",
        feed_id,
        len(skipped),
        "; ".join(str(each) for each in skipped[:3]),
        more,
    )


def sample(skipped: Sequence[Skipped]) -> list[dict[str, Any]]:
    """The first few, as the feed's row keeps them (JSON)."""
    return [{"uid": s.uid[:255], "reason": s.reason[:300]} for s in skipped[:SHOWN]]
