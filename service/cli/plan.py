"""`ucaas-sync plan`: what events or a calendar file would do, as JSON lines, doing
nothing. `--events` applies a file of CloudEvents in order from an empty state; `--live`
asks the running service's database what one event would do now (nothing is written)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from service.cli.database import opened
from service.settings import Settings

if TYPE_CHECKING:
    from service.intake.licences import LicencePolicy


def plan(
    event: Annotated[
        Path | None, typer.Option("--event", help="a CloudEvent (structured JSON)")
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option("--events", help="CloudEvents, one per line, applied in order"),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="--event against the database's state")
    ] = False,
    ics: Annotated[Path | None, typer.Option("--ics", help="an iCalendar file")] = None,
    previous: Annotated[
        Path | None,
        typer.Option("--previous", help="with --ics: the feed's version before it"),
    ] = None,
    now: Annotated[datetime | None, typer.Option(help="ISO 8601; default: now")] = None,
    horizon_days: Annotated[float | None, typer.Option(help="default: 30")] = None,
    organizer: Annotated[
        str | None,
        typer.Option(help="the feed owner's e-mail: only what they organise is planned"),
    ] = None,
) -> None:
    """Print the commands events or a calendar file would produce, as JSON lines.

    Each line has kind, entity and payload; for events also the event's id, not_before
    when the command waits for a date, and held when a person would have to approve it.
    With --events, a line that cannot be planned is one error on stderr naming its line
    number; the others are still planned, and the exit code is 2. With --ics, each event
    skipped as unusable is a line on stderr (skipped: UID: reason); the exit code is 0
    when anything in the file could be used."""
    # the intake and the calendar, imported on use: CLI start-up time
    from service.intake.history import LineError  # noqa: PLC0415
    from service.intake.licences import LicencePolicy, PolicyError  # noqa: PLC0415
    from service.intake.plan import PlanError, plan_calendar, plan_event, read  # noqa: PLC0415

    settings = Settings()
    errors: list[str] = []
    try:
        if now is not None and now.tzinfo is None:
            raise PlanError("--now needs a time zone, e.g. 2026-12-01T09:00:00Z")
        if sum(1 for given in (event, events, ics) if given) != 1 or (live and event is None):
            raise PlanError("give one of --event FILE [--live], --events FILE or --ics FILE")
        if previous is not None and ics is None:
            raise PlanError("--previous goes with --ics")
        if ics is not None:
            planned = plan_calendar(
                read(ics),
                settings.calendar,
                now=now,
                horizon_days=horizon_days,
                organizer=organizer,
                previous=read(previous) if previous is not None else None,
            )
            for each in planned.skipped:
                typer.echo(f"skipped: {each}", err=True)
            for note in planned.notes:
                typer.echo(f"note: {note}", err=True)
            if not planned.plannable:
                raise PlanError(f"no usable event: all {len(planned.skipped)} were skipped")
            commands = planned.commands
        elif events is not None:
            commands, errors = _history(read(events), settings, now)
        elif event is not None:
            policy = LicencePolicy.load(settings.intake.licence_policy)
            if live:
                commands = asyncio.run(_live(read(event), policy, settings))
            else:
                commands = list(plan_event(read(event), policy, settings.intake))
        lines = [orjson.dumps(c).decode() for c in commands]
    except (PlanError, PolicyError, LineError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in lines:
        typer.echo(line)
    if errors:
        raise typer.Exit(2)


def _history(
    raw: bytes, settings: Settings, now: datetime | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """--events: the commands still queued at the end; notes and errors go to stderr."""
    from service.intake.history import plan_events  # noqa: PLC0415 - CLI start-up time
    from service.intake.licences import LicencePolicy  # noqa: PLC0415 - CLI start-up time

    policy = LicencePolicy.load(settings.intake.licence_policy)
    history, errors = plan_events(raw.splitlines(), policy, settings.intake, now)
    for note in history.notes:
        typer.echo(f"note: {note}", err=True)
    for gone in history.withdrawals:
        typer.echo(
            f"note: {gone.event} withdraws {gone.count} dated command(s) of {gone.entity}",
            err=True,
        )
    for error in errors:
        typer.echo(f"error: {error}", err=True)
    return history.lines, errors


async def _live(raw: bytes, policy: LicencePolicy, settings: Settings) -> list[dict[str, Any]]:
    from service.intake.history import plan_live  # noqa: PLC0415 - CLI start-up time

    async with opened(settings) as engine:
        return list(await plan_live(raw, engine, policy, settings.intake))
