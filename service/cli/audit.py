"""`ucaas-sync audit`: the operator actions recorded, newest first (who, role, what, on
what, with what result), through the admin API and through this CLI alike."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
import uvloop

from service.cli.database import opened
from service.settings import Settings

if TYPE_CHECKING:
    from service.outbox.audit import AuditView

UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


def since_of(given: str, now: datetime) -> datetime:
    """`2h`, `30min`, `7d` (ago), or an ISO 8601 time (UTC when it names no zone)."""
    text = given.strip()
    for unit in sorted(UNITS, key=len, reverse=True):
        number = text.removesuffix(unit)
        if number != text and number.strip().isdigit():
            return now - timedelta(seconds=int(number) * UNITS[unit])
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{given!r}: not 2h, 30min, 7d or an ISO time") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _entries(since: datetime | None, actor: str | None, limit: int) -> list[AuditView]:
    from service.outbox.audit import AuditView, entries  # noqa: PLC0415 - CLI start-up time

    async with opened(Settings()) as engine:
        found = await entries(engine, since=since, actor=actor, limit=limit)
    return [AuditView.model_validate(e.model_dump()) for e in found]


def audit(
    since: Annotated[
        str | None, typer.Option(help="only since then: 2h, 30min, 7d, or an ISO time")
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="only this actor: a token's name, or cli:<user>")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Operator actions, newest first: retry, drop, approve, deny, repair, and refusals."""
    start = None if since is None else since_of(since, datetime.now(UTC))
    found = uvloop.run(_entries(start, actor, limit))
    if as_json:
        for entry in found:
            typer.echo(orjson.dumps(entry.model_dump(mode="json")).decode())
        return
    # --json needs no rich: CLI start-up time
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"{len(found)} audited action(s)")
    for column in ("at", "actor", "role", "action", "target", "result", "detail"):
        table.add_column(column)
    for e in found:
        at = f"{e.at:%Y-%m-%d %H:%M:%S}"
        table.add_row(at, e.actor, e.role, e.action, e.target, e.result, e.detail or "")
    # piped output is not cut to 80 columns: one action, one line
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200).print(table)
