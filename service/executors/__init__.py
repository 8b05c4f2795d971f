"""One idempotent executor per command kind, registered with `@executes(Payload)`."""

from __future__ import annotations

# Imported for their registrations: each module's executors fill EXECUTORS.
from service.executors import customers, meetings, subscriptions, users  # noqa: F401
from service.executors.registry import EXECUTORS, Executors, registry_of

REGISTRY = registry_of(EXECUTORS)

__all__ = ["EXECUTORS", "REGISTRY", "Executors"]
