"""What the operator is shown: the answers of `Operations` (service/views.py), as the
CLI prints them and the admin API documents them in its OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from service.outbox.vault import is_sealed


class CommandView(BaseModel):
    id: int
    entity: str
    kind: str
    tenant: str | None
    status: str
    attempts: int
    in_doubt: bool
    last_error_code: str | None
    last_error: str | None
    hold_reason: str | None
    event_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    done_at: datetime | None


class EventView(BaseModel):
    source: str
    event_id: str
    type: str
    subject: str | None
    tenant: str | None
    outcome: str
    commands: int
    received_at: datetime


class CallView(BaseModel):
    command_id: int | None
    method: str
    route: str
    status: int | None
    api_code: int | None
    latency_ms: float
    error: str | None
    at: datetime


class DeadLetterView(BaseModel):
    id: int
    topic: str
    partition: int
    offset: int
    key: str | None
    event_id: str | None
    error: str
    reason: str
    at: datetime
    replayed_at: datetime | None = None  # sent back to its topic by `dlq replay`


SEALED = "(sealed)"


def shown_url(url: str) -> str:
    """A feed URL without what may be a secret: private calendar addresses carry their
    key in the path (Google's `private-<key>/basic.ics`) or in the query, and a user's
    password may be in it (the host is shown, not the userinfo). A URL still sealed (read
    without the vault) shows as such."""
    if url == SEALED or is_sealed(url):
        return SEALED
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}/…" if len(segments) > 1 else parts.path
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{path}{'?…' if parts.query else ''}"


class SkippedEvent(BaseModel):
    """An event of a feed skipped as unusable at its last expansion."""

    uid: str
    reason: str


class FeedView(BaseModel):
    feed_id: str
    url: Annotated[str, AfterValidator(shown_url)]
    organizer_email: str
    tenant: str
    removed: bool
    last_status: str | None
    last_error: str | None
    failures: int
    occurrences: int
    last_fetch_at: datetime | None
    next_fetch_at: datetime
    held: str | None = None  # cancels held for approval by the mass-cancel guard: why
    skipped_events: int = Field(0, description="events of the last expansion skipped as unusable")
    skipped_sample: Annotated[list[SkippedEvent], BeforeValidator(lambda v: v or [])] = Field(
        default_factory=list, description="the first few, with their UIDs and reasons"
    )


class MappingView(BaseModel):
    kind: str
    tenant: str
    external_id: str
    ucaas_id: str
    state: dict[str, Any]
    updated_at: datetime


class ResultView(BaseModel):
    """A result event of the entity (`ucaas.results`): what one of its commands came to."""

    event_id: str = Field(description="the CloudEvent's id (stable across re-sends)")
    type: str
    command_id: int | None
    topic: str
    at: datetime = Field(description="when the outcome was committed")
    published: bool = Field(description="the relay has had the broker's ack for it")
    published_at: datetime | None
    data: Any = Field(None, description="the CloudEvent's data")


class History(BaseModel):
    entity: str
    events: list[EventView]
    commands: list[CommandView]
    calls: list[CallView]
    mappings: list[MappingView]
    results: list[ResultView] = Field(default_factory=list)


class Match(BaseModel):
    """One entity an operator's search found: its history is `GET /api/history/{entity}`."""

    entity: str = Field(description="user:T:E, customer:C, subscriptions:C or meeting:KEY")
    kind: str = Field(description="person, company, purchases or meeting")
    label: str = Field(description="what it is, in words (name, e-mail, tenant)")


class Bucket(BaseModel):
    """One minute of work."""

    minute: datetime
    events: int = 0
    commands_done: int = 0
    commands_failed: int = 0
    calls: int = 0


class CallCounts(BaseModel):
    since: datetime
    by_status: dict[str, int] = Field(description="HTTP status, or 'error' for no answer")


class Failure(BaseModel):
    what: str  # command, dead_letter, feed
    id: str
    reason: str
    at: datetime | None
    command_id: int | None = None  # a dead command's: what the status page retries or drops
