"""`ucaas-sync reconcile`: drift between what the service pushed and what UCaaS holds;
with --hr-snapshot, HR's whole population against the users the service manages.

Exit codes: 0 no drift (or every drift has a repair queued), 1 drift left without a
queued repair, 2 a usage or configuration error, UCaaS / the database / the broker not
answering, or --repair refused for a snapshot that looks empty or truncated.
A --repair is recorded in the audit log (`cli:<OS user>`, action `repair`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
import uvloop
from pydantic import ValidationError

from service.settings import Settings

# What reconciling needs (the service, the UCaaS client, SQL, rich) is imported where it is
# used: `ucaas-sync --help` and every other command would pay for it at start-up.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from service.outbox.audit import Result
    from service.reconcile import Drift, RepairStatus, Report
    from service.reconcile.hr_model import Finding, HrReport

# service.reconcile.KINDS, for --kind's help: importing that package costs start-up time
# (tests/unit/test_cli_startup.py keeps the two equal)
KINDS = ("customer", "subscription", "user", "licence", "meeting")


@cache
def _errors() -> tuple[type[Exception], ...]:
    """The errors reported in one line (exit code 2)."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - CLI start-up time

    from connectors.ucaas import UCaaSError  # noqa: PLC0415 - CLI start-up time
    from service.outbox.vault import MissingSecretKeyError  # noqa: PLC0415 - CLI start-up time

    return (ValueError, ValidationError, MissingSecretKeyError, UCaaSError, SQLAlchemyError)


@cache
def _repair_labels() -> dict[RepairStatus, str]:
    from service.reconcile import RepairStatus  # noqa: PLC0415 - CLI start-up time

    return {
        RepairStatus.PLANNED: "would queue",
        RepairStatus.QUEUED: "queued",
        RepairStatus.ALREADY_QUEUED: "already queued",
        RepairStatus.WAITS: "waits",
        RepairStatus.NONE: "none",
    }


async def _run(tenant: str | None, kinds: tuple[str, ...], repair: bool) -> Report:
    from service.app.bootstrap import bootstrap  # noqa: PLC0415 - CLI start-up time
    from service.reconcile import reconcile  # noqa: PLC0415 - CLI start-up time

    service = await bootstrap(Settings())
    try:
        if not repair:
            return await reconcile(service, tenant=tenant, kinds=kinds, repair=repair)
        target = f"reconcile {'tenant ' + tenant if tenant else 'all tenants'}"
        async with audited_repair(service.engine, target) as note:
            report = await reconcile(service, tenant=tenant, kinds=kinds, repair=repair)
            note.append(report.summary())
        return report
    finally:
        await service.aclose()


async def _run_hr(spec: str, tenant: str | None, repair: bool, force: bool) -> HrReport:
    # the service, imported on use: CLI start-up time
    from service.app.bootstrap import DEFAULT_KAFKA, bootstrap  # noqa: PLC0415
    from service.reconcile.hr_shell import load_snapshot, reconcile_hr  # noqa: PLC0415

    settings = Settings()
    # the snapshot first: a file or topic that cannot be read costs no connection
    broker = settings.kafka.connection(settings.kafka.bootstrap_servers or DEFAULT_KAFKA)
    snapshot = await load_snapshot(spec, tenant=tenant, bootstrap=broker)
    service = await bootstrap(settings)
    try:
        if not repair:
            return await reconcile_hr(
                service, snapshot, guard=settings.intake, tenant=tenant, repair=repair, force=force
            )
        target = f"hr snapshot {spec}"[:255]
        async with audited_repair(service.engine, target) as note:
            report = await reconcile_hr(
                service, snapshot, guard=settings.intake, tenant=tenant, repair=repair, force=force
            )
            note.append(f"refused: {report.refused}" if report.refused else report.summary())
        return report
    finally:
        await service.aclose()


@asynccontextmanager
async def audited_repair(engine: AsyncEngine, target: str) -> AsyncIterator[list[str]]:
    """One audit row for a --repair, after it: its commands are queued in many short
    transactions, so the row cannot share one. The body appends the outcome's summary;
    `refused: ...` makes the row a refusal, an exception a failure (and is re-raised)."""
    from service.outbox import audit  # noqa: PLC0415 - CLI start-up time
    from service.outbox.audit import cli_actor  # noqa: PLC0415 - CLI start-up time

    note: list[str] = []
    actor = cli_actor()
    try:
        yield note
    except Exception as exc:
        with contextlib.suppress(Exception):  # the database may be what failed
            await audit.record_alone(engine, actor, "repair", target, "failed", type(exc).__name__)
        raise
    detail = " ".join(note) or None
    result: Result = "refused" if detail and detail.startswith("refused: ") else "ok"
    await audit.record_alone(engine, actor, "repair", target, result, detail)


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
    hr_snapshot: Annotated[
        str | None,
        typer.Option(
            "--hr-snapshot",
            metavar="FILE|kafka:TOPIC",
            help="HR's whole population (a SCIM ListResponse, or a compacted topic of "
            "hr.user.* events): report orphans and leavers still active",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="--repair even a snapshot that looks empty or truncated"),
    ] = False,
) -> None:
    """Read users, licences, customers, subscriptions and meetings back from UCaaS and
    report drift from what the service last pushed; --repair queues the fixing commands.

    With --hr-snapshot: the UCaaS users the service manages that HR no longer has
    (orphans) or says are inactive while they are active (leavers still active);
    --repair revokes their licences and suspends them, through the deprovisioning guard.
    --tenant is then the tenant of records without one (and the only one reconciled).

    Exit code 0: in step, or every drift has a repair queued; 1: drift left; 2: error."""
    if hr_snapshot is not None:
        if kind:
            _usage("--kind does not apply to --hr-snapshot")
        _hr(hr_snapshot, tenant, repair=repair, force=force, json=json)
    if force:
        _usage("--force applies to --hr-snapshot only")
    from service.reconcile import kinds_of  # noqa: PLC0415 - CLI start-up time

    try:
        kinds = kinds_of(kind)
        report = uvloop.run(_run(tenant, kinds, repair))
    except _errors() as exc:
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
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - CLI start-up time

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
    from rich.console import Console  # noqa: PLC0415 - CLI start-up time
    from rich.table import Table  # noqa: PLC0415 - CLI start-up time

    # Piped output is not cut to 80 columns: a drift's fields belong on one row.
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240)
    if report.drifts:
        table = Table("kind", "tenant", "entity", "ucaas id", "drift", "repair")
        for drift in report.drifts:
            what = drift.what.value + (f" ({_fields(drift)})" if drift.fields else "")
            commands = ", ".join(c.kind.value for c in drift.repair or ())
            repair = _repair_labels()[drift.status] + (f": {commands}" if commands else "")
            if drift.reason:
                repair += f" ({drift.reason})"
            table.add_row(drift.kind, drift.tenant, drift.external_id, drift.ucaas_id, what, repair)
        console.print(table)
    console.print(report.summary(), highlight=False)


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# -- against HR ---------------------------------------------------------------------------
def _hr(spec: str, tenant: str | None, *, repair: bool, force: bool, json: bool) -> NoReturn:
    try:
        report = uvloop.run(_run_hr(spec, tenant, repair, force))
    except _errors() as exc:
        typer.echo(f"error: {_one_line(exc)}", err=True)
        raise typer.Exit(2) from None
    if json:
        for finding in report.findings:
            typer.echo(orjson.dumps(finding.as_json(), default=str).decode())
        for skipped in report.snapshot.skipped:
            line = {"skipped": skipped.ref, "employee_id": skipped.employee_id}
            typer.echo(orjson.dumps(line | {"reason": skipped.reason}).decode())
        typer.echo(orjson.dumps(report.as_json()).decode())
    else:
        _hr_table(report)
    if report.refused:
        typer.echo(f"error: --repair refused: {report.refused}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(1 if report.unresolved else 0)


def _hr_repair(finding: Finding) -> str:
    commands = ", ".join(c.kind.value for c in finding.repair or ())
    shown = _repair_labels()[finding.repair_status] + (f": {commands}" if commands else "")
    if finding.held:
        shown += f", held for approval ({finding.held})"
    if finding.reason:
        shown += f" ({finding.reason})"
    return shown


def _hr_table(report: HrReport) -> None:
    from rich.console import Console  # noqa: PLC0415 - CLI start-up time
    from rich.table import Table  # noqa: PLC0415 - CLI start-up time

    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240)
    if report.findings:
        table = Table("finding", "tenant", "employee id", "ucaas id", "e-mail", "status", "repair")
        for f in report.findings:
            table.add_row(
                f.what.value,
                f.user.tenant,
                ", ".join(f.user.employee_ids),
                f.user.ucaas_id,
                f.user.email or "",
                f.status or "-",
                _hr_repair(f),
            )
        console.print(table)
    for skipped in report.snapshot.skipped:
        who = f" ({skipped.employee_id})" if skipped.employee_id else ""
        console.print(f"skipped {skipped.ref}{who}: {skipped.reason}", highlight=False)
    for suspect in report.suspect:
        console.print(f"warning: {suspect}", highlight=False)
    console.print(report.summary(), highlight=False)
