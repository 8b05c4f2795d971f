"""Accidental-deletion protection: a burst of deprovisioning waits for a person.

When the people a tenant's suspends and revokes touch within the window (already
accepted, plus the new ones) exceed the threshold, the new ones are held for approval
instead of run. People, not commands: a leaver is one person whether they held one
licence or two. One wrong HR export that "terminates" half the company then costs
nothing until someone looks; `ucaas-sync approve` or `deny` decides.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.domain.commands import APPROVAL, DEPROVISIONING, Command


def approvals(
    commands: Sequence[Command], *, recent: int, threshold: int, window_s: float
) -> dict[int, str]:
    """Which of `commands` (by index) to hold, with the reason, given `recent` people of
    the same tenant deprovisioned by commands accepted within the window."""
    indexes = [i for i, c in enumerate(commands) if c.kind in DEPROVISIONING]
    total = recent + people(commands)
    if not indexes or total <= threshold:
        return {}
    tenant = commands[indexes[0]].tenant
    reason = (
        f"{APPROVAL}{total} people suspended/revoked in tenant {tenant} within "
        f"{window_s / 60:.0f} min (limit {threshold})"
    )
    return dict.fromkeys(indexes, reason)


def people(commands: Sequence[Command]) -> int:
    """How many entities (people) the deprovisioning commands among `commands` touch."""
    return len({c.entity for c in commands if c.kind in DEPROVISIONING})
