"""The object the dispatcher calls to run a command (outbox.ports.CommandRunner)."""

from __future__ import annotations

from service.domain.commands import Payload
from service.executors.base import Accounts, Exec, Registry, ZoneIds
from service.outbox.claims import Claim
from service.outbox.outcomes import Outcome


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
