"""Which executor runs each command kind, and the object the dispatcher calls.

Each executor names the payload model it runs, `@executes(SuspendUser)`, and so its kind
(the model declares it, domain/commands.py). EXECUTORS fills as the executor modules are
imported (the package's __init__ imports them all); the dispatcher's registry is derived
from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from service.domain.commands import PAYLOADS, Kind, Payload
from service.executors.base import Accounts, Exec, Executor, Registry, ZoneIds, healing
from service.outbox.claims import Claim
from service.outbox.outcomes import Outcome

P = TypeVar("P", bound=Payload)
ExecutorOf = Callable[[Exec, P], Awaitable[Outcome]]

EXECUTORS: dict[Kind, Executor] = {}  # kind -> its executor, filled by @executes


def executes(model: type[P]) -> Callable[[ExecutorOf[P]], ExecutorOf[P]]:
    """Register the decorated function as the executor of `model`'s kind."""

    def register(executor: ExecutorOf[P]) -> ExecutorOf[P]:
        if model.kind in EXECUTORS:
            raise TypeError(
                f"{model.kind} has two executors: {EXECUTORS[model.kind]} and {executor}"
            )
        EXECUTORS[model.kind] = executor
        return executor

    return register


def registry_of(executors: Mapping[Kind, Executor]) -> Registry:
    """kind -> (payload model, executor that heals after a replaced id or login)."""
    return {kind.value: (PAYLOADS[kind], healing(run)) for kind, run in executors.items()}


class Executors:
    """The executors as the dispatcher calls them (outbox.ports.CommandRunner): a kind's
    payload model, and one attempt at a claimed command with this process's accounts."""

    def __init__(self, accounts: Accounts, registry: Registry) -> None:
        self.accounts = accounts
        self.registry = registry
        self.zones = ZoneIds(accounts.platform)

    def payload_model(self, kind: str) -> type[Payload] | None:
        entry = self.registry.get(kind)
        return entry[0] if entry else None

    async def execute(self, claim: Claim, payload: Payload) -> Outcome:
        _, executor = self.registry[claim.kind]
        return await executor(Exec(claim, self.accounts.store, self.accounts, self.zones), payload)
