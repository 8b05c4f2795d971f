"""`ucaas-sync plan`: what an event would do, without doing it.

The same parsing, mapping and translation the consumers run, against no prior state (as
for an entity the service has not seen) and with no I/O but reading the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.events.cloudevents import InvalidRecordError, Record, parse
from service.config import IntakeSettings
from service.domain.events import InvalidEventError, to_domain
from service.intake import translate
from service.outbox.tables import utcnow
from service.translate.policy import LicencePolicy


class PlanError(Exception):
    """The input cannot be planned; the message is the one line to show."""


def plan_event(
    raw: bytes, policy: LicencePolicy | None = None, settings: IntakeSettings | None = None
) -> Iterator[dict[str, Any]]:
    """The commands a CloudEvent (structured JSON) implies, as plan prints them."""
    record = Record(topic="plan", partition=0, offset=0, key=None, value=raw)
    try:
        event = to_domain(parse(record))
    except (InvalidRecordError, InvalidEventError) as exc:
        raise PlanError(f"{exc.error}: {exc.reason}") from None
    translation = translate(
        event, None, policy or LicencePolicy(), settings or IntakeSettings(), utcnow()
    )
    for command in translation.commands:
        yield command.as_json()


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror}") from None
