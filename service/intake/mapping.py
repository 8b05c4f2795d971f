"""Wire data to domain events: the checks every source's mapping shares.

A CloudEvent whose data cannot become a domain event (missing or invalid fields, an id
longer than the outbox keeps, a name longer than the API takes, control characters)
raises `InvalidEventError`; the consumer sends its record to the dead-letter topic with
the reason. Each source maps its own data (intake/hr.py, crm.py, feeds.py) with these.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as DataError

from connectors.events.cloudevents import Envelope, has_control

# The UCaaS API's limits on user fields (docs/api-notes.md).
NAME_MAX = 50
TEXT_MAX = 100
CUSTOMER_CODE_MAX = 50  # the CRM id is the customer_code (1310 beyond 50)
FEED_ID_MAX = 150  # with the UID and start, meeting keys fit the outbox's 255 characters
EMPLOYEE_ID_MAX = 100  # with the tenant, the entity key fits the outbox's 255 characters
M = TypeVar("M", bound=BaseModel)


class InvalidEventError(Exception):
    """The event cannot become commands: `error` is unknown_type or invalid_data."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(f"{error}: {reason}")
        self.error = error
        self.reason = reason[:500]


def invalid(reason: str) -> InvalidEventError:
    return InvalidEventError("invalid_data", reason)


def validate(model: type[M], data: Any) -> M:
    """The event's data as its wire model, or InvalidEventError naming the first problem."""
    if not isinstance(data, dict):
        raise invalid(f"data must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except DataError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise invalid(f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from None


def entity_id(given: str | None, envelope: Envelope, limit: int) -> str:
    """The entity's id: the data's own, else the CloudEvent subject; both must agree."""
    found = (given or envelope.subject or "").strip()
    if not found:
        raise invalid("no entity id: set the subject or the id field")
    if has_control(found):
        raise invalid("the entity id holds control characters")
    if len(found) > limit:
        raise invalid(f"entity id {found[:20]!r}... is longer than {limit} characters")
    if envelope.subject and given and given != envelope.subject:
        raise invalid(f"subject {envelope.subject!r} and data id {given!r} differ")
    return found


def plain(value: str, what: str) -> str:
    """`value`, refused when it holds control characters (a NUL is valid JSON, but
    PostgreSQL refuses it: it must not reach the database)."""
    if has_control(value):
        raise invalid(f"{what} holds control characters")
    return value
