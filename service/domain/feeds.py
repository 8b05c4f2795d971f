"""A calendar feed as the service knows it: where to fetch it, whose meetings it holds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Feed(BaseModel):
    """A registered calendar feed."""

    model_config = ConfigDict(frozen=True)

    feed_id: str
    url: str
    organizer_email: str
    tenant: str
    interval_s: float | None = None


def feed_entity(feed_id: str) -> str:
    """The entity of a feed's desired state (the meetings it last asked for)."""
    return f"feed:{feed_id}"
