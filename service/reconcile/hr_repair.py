"""Findings to the commands that deprovision them: what a leaver gets from the intake's
`left` rule (service/intake/hr.py), revoke each licence the service mapped, then
suspend_user. Pure.

    orphan, active                  revoke_licence per mapped licence, then suspend_user
    orphan, suspended, licences     revoke_licence per mapped licence
    orphan, suspended, none         nothing (already deprovisioned)
    leaver still active             revoke_licence per mapped licence, then suspend_user

The suspend runs under the employee id that holds the licences, after their revokes (one
entity: the outbox runs them in order). A user with unfinished commands on any of its
employee ids gets none: a leaver's own commands held for approval, say, are not doubled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from service.domain.commands import Command, RevokeLicence, SuspendUser
from service.reconcile.hr_drift import ACTIVE
from service.reconcile.hr_model import Finding
from service.reconcile.model import SOURCE, OpenCommand, RepairStatus


def deprovisioning(finding: Finding) -> tuple[Command, ...]:
    user = finding.user
    first = user.employee_ids[0]
    # the other ids' revokes, then the suspend's own id: its revokes, then the suspend
    licences = sorted(user.licences, key=lambda held: (held[0] == first, held))
    commands = [
        Command.of(RevokeLicence(tenant=user.tenant, employee_id=employee, app=app))
        for employee, app in licences
    ]
    if finding.status == ACTIVE:
        commands.append(Command.of(SuspendUser(tenant=user.tenant, employee_id=first)))
    return tuple(commands)


def with_repairs(
    findings: Iterable[Finding], open_commands: Mapping[str, OpenCommand]
) -> list[Finding]:
    """Each finding with its commands and status (`planned` until queued)."""
    out: list[Finding] = []
    for finding in findings:
        commands = deprovisioning(finding) if finding.needs else ()
        if not commands:
            out.append(replace(finding, repair=None, repair_status=RepairStatus.NONE))
            continue
        pending = first_open(finding, open_commands)
        if pending is not None:
            mine = pending.source == SOURCE
            out.append(
                replace(
                    finding,
                    repair=None,
                    repair_status=RepairStatus.ALREADY_QUEUED if mine else RepairStatus.WAITS,
                    reason=f"repair #{pending.id} queued" if mine else f"waits for #{pending.id}",
                )
            )
            continue
        out.append(replace(finding, repair=commands, repair_status=RepairStatus.PLANNED))
    return out


def first_open(finding: Finding, open_commands: Mapping[str, OpenCommand]) -> OpenCommand | None:
    """The user's first unfinished command over all its employee ids (a reconcile repair
    preferred, as `open_commands` does per entity)."""
    found = [open_commands[e] for e in sorted(finding.user.entities) if e in open_commands]
    if not found:
        return None
    return min(found, key=lambda c: (c.source != SOURCE, c.id))
