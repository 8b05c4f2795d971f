"""`ucaas-sync keys new|rotate`: the vault's keys (tenant logins and feed URLs at rest).

Rotation, without downtime: the new key becomes UCAAS_SYNC_SECRET_KEY and the old one goes
to UCAAS_SYNC_SECRET_KEYS_PREVIOUS (both are read); deploy; `keys rotate` seals every
stored value again under the new key; then the old key is removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import orjson
import typer
import uvloop

from service.cli.database import opened
from service.settings import Settings

if TYPE_CHECKING:
    from service.outbox.rotation import RotationReport

keys_app = typer.Typer(no_args_is_help=True, help="The vault's keys: a new one, rotation.")


@keys_app.command("new")
def keys_new() -> None:
    """Print a new key (for UCAAS_SYNC_SECRET_KEY)."""
    from service.outbox.vault import new_key  # noqa: PLC0415 - CLI start-up time: SQLAlchemy

    typer.echo(new_key())


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option(min=1, help="rows rewritten per transaction")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Seal every tenant login and feed URL again under the current key.

    Runs beside the service; a second run changes nothing. Refuses, changing nothing, when
    some value opens with none of the configured keys."""
    from service.outbox.rotation import UnopenableSecretsError  # noqa: PLC0415 - CLI start-up time
    from service.outbox.vault import MissingSecretKeyError  # noqa: PLC0415 - CLI start-up time

    try:
        report = uvloop.run(_rotate(Settings(), batch))
    except (UnopenableSecretsError, MissingSecretKeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(orjson.dumps({"resealed": report.resealed, "current": report.current}).decode())
        return
    typer.echo(summary(report))


def summary(report: RotationReport) -> str:
    """`sealed again under the current key: 2 tenant logins, 5 feed URLs (already: ...)`"""
    done = ", ".join(f"{n:,} {what}" for what, n in report.resealed.items())
    already = ", ".join(f"{n:,} {what}" for what, n in report.current.items())
    return f"sealed again under the current key: {done} (already under it: {already})"


async def _rotate(settings: Settings, batch: int) -> RotationReport:
    from service.outbox.rotation import rotate  # noqa: PLC0415 - CLI start-up time
    from service.outbox.vault import vault_for  # noqa: PLC0415 - CLI start-up time

    vault = vault_for(settings)
    async with opened(settings) as engine:
        return await rotate(engine, vault, batch=batch)
