"""The result event of a command: pure, from what the outbox knows when it records the
outcome (the command, its cause, the outcome, and the id mappings around its batch).

Every kind's success publishes the type its payload model declares (`@command(result=…)`
in domain/commands.py); a command that died publishes `ucaas.command.dead`, one held for
a person `ucaas.command.held`. The data is shaped by the payload's family (user,
customer, purchase, meeting), so a new kind of a family needs no code here.

No secrets: the results carry ids, e-mail addresses and the meeting's join link; a
meeting's moderator and participant PINs only when `include_pins` is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, get_args
from uuid import uuid4

from service.domain.commands import (
    App,
    Kind,
    MeetingPayload,
    Payload,
    PurchasePayload,
    UserPayload,
    parse_payload,
)
from service.outbox.outcomes import Dead, Done, MappingKey
from service.outbox.result_log import CommandRef

DEAD = "ucaas.command.dead"
HELD = "ucaas.command.held"
CONTENT_TYPE = "application/cloudevents+json"
# `<topic>.<suffix>` by the second part of the type, when results go to a topic per domain
DOMAIN_TOPICS = {
    "user": "users",
    "customer": "customers",
    "subscription": "subscriptions",
    "meeting": "meetings",
    "command": "commands",
}
APPS: tuple[str, ...] = get_args(App)
PINS = ("mpin", "ppin")


@dataclass(frozen=True)
class ResultPolicy:
    """How results are published (the `[results]` settings the model needs)."""

    source: str = "ucaas-sync"
    topic: str = "ucaas.results"
    per_domain: bool = False
    include_pins: bool = False

    def topic_for(self, event_type: str) -> str:
        if not self.per_domain:
            return self.topic
        return f"{self.topic}.{DOMAIN_TOPICS[event_type.split('.')[1]]}"


@dataclass(frozen=True)
class Known:
    """An id mapping as results need it: the UCaaS id and the natural key (an e-mail)."""

    ucaas_id: str
    natural_key: str | None = None


Mappings = Mapping[MappingKey, Known]


@dataclass(frozen=True)
class ResultEvent:
    event_id: str
    type: str
    subject: str
    command_id: int | None
    topic: str
    cloudevent: dict[str, Any]

    def row(self, now: datetime) -> dict[str, Any]:
        """The `result` table's row."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "subject": self.subject,
            "command_id": self.command_id,
            "topic": self.topic,
            "cloudevent": self.cloudevent,
            "created_at": now,
        }


def payload_of(c: CommandRef) -> Payload | None:
    """The command's payload parsed (once per command: callers pass it on to `keys_read`
    and `on_done`), or None for an unknown kind or a bad payload (it dies; its result
    says so)."""
    try:
        return parse_payload(c.kind, c.payload)
    except (ValueError, KeyError):
        return None


class _Given(Enum):
    NOTHING = 0  # no payload given: the function parses it


_PARSE = _Given.NOTHING
MaybeParsed = Payload | Literal[_Given.NOTHING] | None


def keys_read(c: CommandRef, payload: MaybeParsed = _PARSE) -> list[MappingKey]:
    """The id mappings the result of `c` reads (before its batch writes)."""
    p = payload_of(c) if payload is _PARSE else payload
    if isinstance(p, UserPayload):
        licences = [MappingKey("licence", p.tenant, f"{p.employee_id}:{app}") for app in APPS]
        return [MappingKey("user", p.tenant, p.employee_id), *licences]
    if isinstance(p, MeetingPayload):
        return [MappingKey("meeting", p.tenant, p.meeting_key)]
    if isinstance(p, PurchasePayload):
        return [MappingKey("subscription", p.crm_id, p.purchase_id)]
    crm_id = getattr(p, "crm_id", None)
    return [MappingKey("customer", "", crm_id)] if isinstance(crm_id, str) else []


def after_batch(before: Mappings, done: Iterable[Done]) -> dict[MappingKey, Known]:
    """The mappings once the batch's writes and forgets are applied, in order."""
    after = dict(before)
    for outcome in done:
        for m in outcome.mappings:
            after[m.key] = Known(m.ucaas_id, m.natural_key)
        for key in outcome.forget:
            after.pop(key, None)
    return after


def on_done(
    c: CommandRef,
    outcome: Done,
    before: Mappings,
    after: Mappings,
    policy: ResultPolicy,
    now: datetime,
    new_id: Callable[[], str] = lambda: str(uuid4()),
    payload: MaybeParsed = _PARSE,
) -> ResultEvent | None:
    """The result of a command done; None for a kind that publishes none."""
    p = payload_of(c) if payload is _PARSE else payload
    if p is None:
        return None
    data = _data(p, before, after)
    if isinstance(p, MeetingPayload):
        data |= _meeting(p, outcome.learned, policy)
    if outcome.note:
        data["note"] = outcome.note
    return _event(c, type(p).result, data, policy, now, new_id)


def on_dead(
    c: CommandRef,
    outcome: Dead,
    policy: ResultPolicy,
    now: datetime,
    new_id: Callable[[], str] = lambda: str(uuid4()),
) -> ResultEvent:
    data = _command(c) | {"code": outcome.code, "reason": outcome.message}
    return _event(c, DEAD, data, policy, now, new_id)


def on_held(
    c: CommandRef,
    reason: str,
    policy: ResultPolicy,
    now: datetime,
    new_id: Callable[[], str] = lambda: str(uuid4()),
) -> ResultEvent:
    """A command held for a person (a burst of deprovisioning, an e-mail change)."""
    return _event(c, HELD, _command(c) | {"reason": reason}, policy, now, new_id)


def _command(c: CommandRef) -> dict[str, Any]:
    return {"command_id": c.id, "kind": c.kind, "entity": c.entity, "tenant": c.tenant}


def _data(p: Payload, before: Mappings, after: Mappings) -> dict[str, Any]:
    def ucaas_id(key: MappingKey) -> str | None:
        found = after.get(key) or before.get(key)  # a forgotten mapping: the id it had
        return found.ucaas_id if found else None

    if isinstance(p, UserPayload):
        user = after.get(MappingKey("user", p.tenant, p.employee_id))
        data: dict[str, Any] = {
            "tenant": p.tenant,
            "employee_id": p.employee_id,
            "ucaas_user_id": ucaas_id(MappingKey("user", p.tenant, p.employee_id)),
            "email": (user.natural_key if user else None) or _email_of(p),
            "licences": [
                app
                for app in APPS
                if MappingKey("licence", p.tenant, f"{p.employee_id}:{app}") in after
            ],
        }
        for field in ("app", "old_email", "new_email", "rehire_of"):
            if getattr(p, field, None) is not None:
                data[field] = getattr(p, field)
        return data
    if isinstance(p, MeetingPayload):
        key = MappingKey("meeting", p.tenant, p.meeting_key)
        return {"tenant": p.tenant, "ucaas_meeting_id": ucaas_id(key)}
    if isinstance(p, PurchasePayload):
        key = MappingKey("subscription", p.crm_id, p.purchase_id)
        data = {"crm_id": p.crm_id, "purchase_id": p.purchase_id}
        data["ucaas_subscription_id"] = ucaas_id(key)
        for field in ("plan_id", "app", "seats", "status"):
            if getattr(p, field, None) is not None:
                data[field] = getattr(p, field)
        if p.kind is Kind.CREATE_SUBSCRIPTION:
            data["start"] = p.model_dump(mode="json")["start"]
        return data
    crm_id = str(getattr(p, "crm_id", ""))
    data = {"crm_id": crm_id, "ucaas_customer_id": ucaas_id(MappingKey("customer", "", crm_id))}
    if p.kind is Kind.CLOSE_CUSTOMER:
        data["status"] = getattr(p, "status", None)
    return data


def _email_of(p: UserPayload) -> str | None:
    profile = getattr(p, "profile", None)
    found = getattr(profile, "email", None) or getattr(p, "new_email", None)
    found = found or getattr(p, "email", None)
    return found.lower() if isinstance(found, str) else None


def _meeting(p: MeetingPayload, learned: Mapping[str, Any], policy: ResultPolicy) -> dict[str, Any]:
    """Feed, UID and occurrence (from the meeting key), what was asked, and the join link."""
    data: dict[str, Any] = {
        "meeting_key": p.meeting_key,
        "feed_id": p.feed_id,
        "organizer_email": p.organizer_email,
        "app": p.app,
    }
    if p.feed_id is not None:
        data |= occurrence_of(p.meeting_key, p.feed_id)
    spec = getattr(p, "meeting", None)
    if spec is not None:
        data |= {
            "room_name": spec.room_name,
            "start": spec.start_time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "zone": spec.zone,
            "duration_min": spec.duration,
        }
    data["join_url"] = learned.get("join_url")
    if policy.include_pins:
        data |= {"moderator_pin": learned.get("mpin"), "participant_pin": learned.get("ppin")}
    return data


def occurrence_of(meeting_key: str, feed_id: str) -> dict[str, str | None]:
    """The iCalendar UID and, for an occurrence of a series, its original start (the
    RECURRENCE-ID) that a meeting key was made of; a hashed key keeps neither."""
    rest = meeting_key.removeprefix(f"{feed_id}:")
    if rest.startswith("#"):
        return {"uid": None, "recurrence_id": None}
    uid, at, original = rest.rpartition("@")
    if at and len(original) == 16 and original.endswith("Z") and original[8] == "T":
        stamp = datetime.strptime(original, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return {"uid": uid, "recurrence_id": stamp.isoformat().replace("+00:00", "Z")}
    return {"uid": rest, "recurrence_id": None}


def _event(
    c: CommandRef,
    event_type: str,
    data: dict[str, Any],
    policy: ResultPolicy,
    now: datetime,
    new_id: Callable[[], str],
) -> ResultEvent:
    event_id = new_id()
    cloudevent: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": policy.source,
        "type": event_type,
        "subject": c.entity,
        "time": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "commandid": c.id,
    }
    # CloudEvents extensions: the event that asked for this, so its sender can match it
    if c.event_id is not None:
        cloudevent["causationid"] = c.event_id
    if c.event_source is not None:
        cloudevent["causationsource"] = c.event_source
    cloudevent["data"] = data
    return ResultEvent(
        event_id, event_type, c.entity, c.id, policy.topic_for(event_type), cloudevent
    )
