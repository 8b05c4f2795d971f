"""The result events' schema: what the AsyncAPI document and docs/events.md describe.

The model (model.py) builds plain dicts; a test validates every shape it builds against
these models (extra fields forbidden), so the document cannot drift from what is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from service.domain.commands import PAYLOADS
from service.results.model import DEAD, HELD

D = TypeVar("D")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, description='how it was done: "adopted the existing user"')


class UserResult(_Data):
    tenant: str = Field(description="the customer's CRM id")
    employee_id: str
    ucaas_user_id: str | None = Field(description="null when UCaaS has no such user")
    email: str | None
    licences: list[Literal["vc", "wb"]] = Field(description="the apps the user is licensed for")
    app: Literal["vc", "wb"] | None = Field(None, description="licence assigned or revoked")
    old_email: str | None = None
    new_email: str | None = None
    rehire_of: str | None = Field(None, description="the leaver's employee id, on a rehire")


class CustomerResult(_Data):
    crm_id: str
    ucaas_customer_id: str | None
    status: Literal["C", "S"] | None = Field(None, description="closed or suspended")


class SubscriptionResult(_Data):
    crm_id: str
    purchase_id: str
    ucaas_subscription_id: str | None
    plan_id: str | None = None
    app: Literal["vc", "wb"] | None = None
    seats: int | None = None
    status: Literal["A", "S", "X"] | None = None
    start: str | None = Field(None, description="YYYY-MM-DD, on creation")


class MeetingResult(_Data):
    tenant: str
    ucaas_meeting_id: str | None
    meeting_key: str
    feed_id: str | None
    uid: str | None = Field(None, description="the iCalendar UID (null for a hashed key)")
    recurrence_id: str | None = Field(
        None, description="an occurrence of a series: its original start (UTC)"
    )
    organizer_email: str
    app: Literal["vc", "wb"]
    room_name: str | None = None
    start: str | None = Field(None, description="UTC, ISO 8601")
    zone: str | None = Field(None, description="the IANA zone it was planned in")
    duration_min: int | None = None
    join_url: str | None = Field(description="the link to join, from UCaaS's answer")
    moderator_pin: str | None = Field(None, description="only with results.include_pins")
    participant_pin: str | None = Field(None, description="only with results.include_pins")


class CommandDead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command_id: int
    kind: str
    entity: str
    tenant: str | None
    code: str = Field(description="the API's error code, or the service's")
    reason: str


class CommandHeld(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command_id: int = Field(description="what `ucaas-sync approve --id` takes")
    kind: str
    entity: str
    tenant: str | None
    reason: str


class ResultEnvelope(BaseModel, Generic[D]):
    """A result event: CloudEvents 1.0, structured JSON mode; the record key is `subject`."""

    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="stable: a re-sent result has the same id; dedupe on it")
    source: str = Field(description="results.source (default ucaas-sync)")
    type: str
    subject: str = Field(
        description="the entity: user:<tenant>:<employee id>, customer:<crm id>, …"
    )
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    commandid: int = Field(description="the outbox command this reports")
    causationid: str | None = Field(None, description="the id of the event that asked for it")
    causationsource: str | None = Field(None, description="that event's source")
    data: D


# The data's model by the type's second part: a new command kind of a family needs none.
FAMILIES: dict[str, type[BaseModel]] = {
    "user": UserResult,
    "customer": CustomerResult,
    "subscription": SubscriptionResult,
    "meeting": MeetingResult,
}


def result_types() -> dict[str, type[BaseModel]]:
    """Every result type the service publishes, with its data's model."""
    done = {m.result: FAMILIES[m.result.split(".")[1]] for m in PAYLOADS.values()}
    return dict(sorted(done.items())) | {DEAD: CommandDead, HELD: CommandHeld}
