"""`ucaas-sync reconcile`: drift between what the service pushed and what UCaaS holds.

Exit codes: 0 no drift (or every drift has a repair queued), 1 drift left without a
queued repair, 2 a usage or configuration error, or UCaaS / the database not answering.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
import uvloop
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from connectors.ucaas import UCaaSError
from service.app.bootstrap import bootstrap
from service.outbox.vault import MissingSecretKeyError
from service.reconcile import KINDS, Drift, RepairStatus, Report, kinds_of, reconcile
from service.settings import Settings

REPAIR_LABELS = {
    RepairStatus.PLANNED: "would queue",
    RepairStatus.QUEUED: "queued",
    RepairStatus.ALREADY_QUEUED: "already queued",
    RepairStatus.WAITS: "waits",
    RepairStatus.NONE: "none",
}


async def _run(tenant: str | None, kinds: tuple[str, ...], repair: bool) -> Report:
    service = await bootstrap(Settings())
    try:
        return await reconcile(service, tenant=tenant, kinds=kinds, repair=repair)
    finally:
        await service.aclose()


def reconcile_command(
    tenant: Annotated[str | None, typer.Option(help="only this tenant (its CRM id)")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help=f"only these kinds ({', '.join(KINDS)}); repeatable"),
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="queue the commands that fix the drift")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Read users, licences, customers, subscriptions and meetings back from UCaaS and
    report drift from what the service last pushed; --repair queues the fixing commands.

    Exit code 0: in step, or every drift has a repair queued; 1: drift left; 2: error."""
    try:
        kinds = kinds_of(kind)
        report = uvloop.run(_run(tenant, kinds, repair))
    except (ValueError, ValidationError, MissingSecretKeyError, UCaaSError, SQLAlchemyError) as exc:
        # Messages name the setting or the route, never a body or a credential.
        typer.echo(f"error: {_one_line(exc)}", err=True)
        raise typer.Exit(2) from None
    if json:
        for drift in report.drifts:
            typer.echo(orjson.dumps(drift.as_json(), default=str).decode())
        typer.echo(orjson.dumps(_summary(report)).decode())
    else:
        _table(report)
    raise typer.Exit(1 if report.unresolved else 0)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"configuration: {where}: {first.get('msg')}"
    if isinstance(exc, SQLAlchemyError):
        return f"database: {type(exc.__cause__ or exc).__name__}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _summary(report: Report) -> dict[str, Any]:
    return {
        "summary": report.summary(),
        "checked": report.checked,
        "in_step": report.in_step,
        "drifted": len(report.drifts),
        "queued_commands": report.queued,
        "unresolved": len(report.unresolved),
    }


def _fields(drift: Drift) -> str:
    shown = [f"{name}: {pushed!r} → {actual!r}" for name, (pushed, actual) in drift.fields.items()]
    return "; ".join(shown)


def _table(report: Report) -> None:
    # Piped output is not cut to 80 columns: a drift's fields belong on one row.
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240)
    if report.drifts:
        table = Table("kind", "tenant", "entity", "ucaas id", "drift", "repair")
        for drift in report.drifts:
            what = drift.what.value + (f" ({_fields(drift)})" if drift.fields else "")
            commands = ", ".join(c.kind.value for c in drift.repair or ())
            repair = REPAIR_LABELS[drift.status] + (f": {commands}" if commands else "")
            if drift.reason:
                repair += f" ({drift.reason})"
            table.add_row(drift.kind, drift.tenant, drift.external_id, drift.ucaas_id, what, repair)
        console.print(table)
    console.print(report.summary(), highlight=False)
