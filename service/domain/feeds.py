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
    # The owner's other addresses: events they organise under these are theirs too.
    aliases: tuple[str, ...] = ()
    # The rare feed whose attended events are to be scheduled too (a team calendar).
    schedule_attended: bool = False

    def owns(self, organizer: str | None) -> bool:
        """Whether an event organised by `organizer` is the owner's (an event without an
        ORGANIZER is the owner's own)."""
        if organizer is None:
            return True
        mine = {self.organizer_email.lower(), *(a.lower() for a in self.aliases)}
        return organizer.lower() in mine


def feed_entity(feed_id: str) -> str:
    """The entity of a feed's desired state (the meetings it last asked for)."""
    return f"feed:{feed_id}"
