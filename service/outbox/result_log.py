"""The port through which the outbox writes result events (service/results/ implements
it; bootstrap wires it in): in the same transaction as the outcome or hold they report,
so a result exists if and only if what it reports does. Without one, none are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from service.outbox.outcomes import Outcome


@dataclass(frozen=True)
class CommandRef:
    """A command as its result reports it: the row, and the event that asked for it."""

    id: int
    kind: str
    entity: str
    tenant: str | None
    payload: dict[str, Any]
    event_source: str | None
    event_id: str | None


class ResultLog(Protocol):
    async def finished(
        self, conn: AsyncConnection, items: Sequence[tuple[CommandRef, Outcome]], now: datetime
    ) -> None:
        """Commands done or dead (others, retried or waiting, report nothing yet)."""
        ...

    async def held(
        self, conn: AsyncConnection, items: Sequence[tuple[CommandRef, str]], now: datetime
    ) -> None:
        """Commands queued held for a person, with the reason."""
        ...
