"""What an attempt at a command came to. Executors return these (or raise WaitForError);
the store records them (with the id mappings and captured logins) in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr


@dataclass(frozen=True)
class MappingKey:
    kind: str  # customer, subscription, user, licence, meeting
    tenant: str  # "" for objects that belong to no tenant
    external_id: str


@dataclass(frozen=True)
class MappingWrite:
    key: MappingKey
    ucaas_id: str
    natural_key: str | None = None
    state: dict[str, Any] = field(default_factory=dict)  # what the service last pushed


@dataclass(frozen=True)
class CapturedLogin:
    """A tenant's UCaaS login, as create_customer's `portal_access` hands it over once."""

    tenant: str
    username: str
    password: SecretStr


@dataclass(frozen=True)
class Done:
    mappings: tuple[MappingWrite, ...] = ()
    forget: tuple[MappingKey, ...] = ()
    login: CapturedLogin | None = None
    note: str | None = None  # e.g. "adopted existing user" or "already cancelled"
    # What the API answered that the result event carries and no mapping keeps: a
    # meeting's join link (and PINs, published only if the operator turns them on).
    learned: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Retry:
    code: str
    message: str
    delay_s: float
    ambiguous: bool  # the call may have acted: look up before creating next time
    count: bool = True  # False while the API is down for everyone: keep the attempt


class WaitForError(Exception):
    """A prerequisite is missing: the command waits with this reason, it does not fail."""


@dataclass(frozen=True)
class Wait:
    """A prerequisite is missing (no customer, subscription, seat or login yet)."""

    reason: str
    delay_s: float


@dataclass(frozen=True)
class Dead:
    code: str
    message: str


Outcome = Done | Retry | Wait | Dead
