"""The `data` of calendar.feed.registered / calendar.feed.removed CloudEvents."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field

MAX_INTERVAL_S = 7 * 24 * 3600.0


class FeedData(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    feed_id: str | None = Field(None, description="defaults to the event subject")
    url: str | None = Field(None, max_length=2000, description="https://, http:// or webcal://")
    organizer_email: EmailStr | None = Field(None, description="the organiser's UCaaS user")
    aliases: list[EmailStr] = Field(
        default_factory=list, max_length=20, description="the owner's other addresses"
    )
    schedule_attended: bool = Field(
        False, description="schedule the events the owner only attends too"
    )
    tenant: str | None = Field(None, min_length=1, max_length=50)
    # At most a week: a feed polled less often is stale, and an interval of centuries made
    # the next fetch time overflow the calendar, failing every poll of the feed.
    interval_s: float | None = Field(
        None, ge=60, le=MAX_INTERVAL_S, description="between fetches; default 5 min"
    )
