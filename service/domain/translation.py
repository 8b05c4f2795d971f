"""Translation: (event, what earlier events asked for) -> (commands, what is asked now).

Pure functions, no I/O: the consumers and the dry-run `plan` command run the same code.
The state they read and return is the *desired* state of one entity (an employee or a
company) as accepted so far, kept with the outbox; it makes a repeated event (the same
content under a new id) produce no command, and decides what a lifecycle step means
(a leave for someone already on leave is nothing to do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel

from service.domain.commands import Command


class DesiredState(BaseModel):
    """What the events accepted so far ask of one entity (an employee, a company, a
    calendar feed): translation reads it and returns the new one."""

    entity_kind: ClassVar[str]  # its name in the entity_state table

    def match_keys(self) -> tuple[str | None, str | None]:
        """What else finds the entity (entity_state.natural_key, alt_key): a user's
        e-mail and employee number, for matching a rehire under a new id."""
        return (None, None)


@dataclass(frozen=True)
class Translation:
    commands: list[Command] = field(default_factory=list)
    state: DesiredState | None = None  # the entity's new desired state; None: unchanged
    note: str | None = None  # why nothing (or less) happened, for the inbox and logs
    # The entity's commands dated ahead and not yet run are withdrawn (dropped) before
    # these are queued: a later event replaced or cancelled the change they make.
    withdraw: bool = False
    # The entity the commands run under (and withdrawals apply to), when not the event's:
    # a rehire under a new employee id queues behind the UCaaS user's first employee id.
    entity: str | None = None
