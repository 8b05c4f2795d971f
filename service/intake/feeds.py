"""Feed registrations: calendar.feed.* CloudEvents to domain events, and what they ask.

Registering a feed asks nothing of UCaaS by itself (the poller fetches it soon); removing
one cancels its meetings that have not started (calendar/translate.py).
"""

from __future__ import annotations

from datetime import datetime

from connectors.calendar.fetch import FeedError, normalise
from connectors.calendar.schema import FeedData
from connectors.events.cloudevents import Envelope
from service.calendar.translate import FeedState, cancel_all
from service.domain.events import FeedEvent, FeedKind
from service.domain.feeds import Feed
from service.domain.translation import Translation
from service.intake.mapping import FEED_ID_MAX, entity_id, invalid, plain


def feed_event(kind: FeedKind, envelope: Envelope, data: FeedData) -> FeedEvent:
    """The domain event of a calendar.feed.* CloudEvent whose data is `data`; a removal
    may name the feed by its id alone."""
    feed_id = entity_id(data.feed_id, envelope, FEED_ID_MAX)
    if kind == "registered":
        missing = [n for n in ("url", "organizer_email", "tenant") if getattr(data, n) is None]
        if missing:
            raise invalid(f"a feed needs {', '.join(missing)}")
        plain(data.tenant or "", "tenant")  # as for HR events: not a CRM id, and a NUL
        try:
            normalise(data.url or "")
        except FeedError as exc:
            # the reason without the URL it quotes: it goes to the dead-letter topic, the
            # table and the logs, and a calendar's address may be its password
            why = exc.reason.split(" (")[0].split(":")[0]
            scheme = (data.url or "").partition(":")[0][:10]
            raise invalid(
                f"url: {why}: {scheme}:…" if scheme.isalnum() else f"url: {why}"
            ) from None
    feed = Feed(
        feed_id=feed_id,
        url=data.url or "",
        organizer_email=str(data.organizer_email or "").lower(),
        tenant=data.tenant or "",
        interval_s=data.interval_s,
        aliases=tuple(str(a).lower() for a in data.aliases),
        schedule_attended=data.schedule_attended,
    )
    return FeedEvent(kind, feed)


def translate_feed(event: FeedEvent, state: FeedState | None, now: datetime) -> Translation:
    if event.kind == "registered":
        return Translation(note="feed registered: fetched soon")
    return cancel_all(event.feed, state, now)
