"""`ucaas-sync db upgrade|prune`: the database's schema, and pruning what has finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
import uvloop

from service.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from service.outbox.prune import PruneReport

db_app = typer.Typer(no_args_is_help=True, help="Database schema and history.")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the migrations (SQLite is also upgraded automatically on start)."""
    from service.outbox import db  # noqa: PLC0415 - CLI start-up time: alembic, SQLAlchemy

    settings = Settings()
    db.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {db.current_revision(settings.database_url)}")


@db_app.command("prune")
def db_prune(
    older_than_days: Annotated[
        int, typer.Option("--older-than-days", min=1, help="keep what finished since then")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, delete nothing")] = False,
    batch: Annotated[int, typer.Option(min=1, help="rows deleted per transaction")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Delete old finished commands with their UCaaS calls, old dead letters and old
    published result events.

    Done and dropped commands finished before the cut-off go; open and dead commands, the
    mappings and the inbox stay. Runs beside a running service: a short transaction per
    batch."""
    report = uvloop.run(_prune(timedelta(days=older_than_days), dry_run=dry_run, batch=batch))
    before = f"{report.before:%Y-%m-%dT%H:%M:%SZ}"
    if as_json:
        document = {
            "dry_run": dry_run,
            "before": before,
            "commands": report.commands,
            "calls": report.calls,
            "dead_letters": report.dead_letters,
            "results": report.results,
        }
        typer.echo(orjson.dumps(document).decode())
        return
    typer.echo(
        f"{'would prune' if dry_run else 'pruned'} {report.commands:,} commands, "
        f"{report.calls:,} UCaaS calls, {report.dead_letters:,} dead letters and "
        f"{report.results:,} published results finished before {before}"
    )


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The configured database for one command: SQLite upgraded first (it upgrades itself
    on start), two connections, closed afterwards."""
    from service.outbox import db  # noqa: PLC0415 - CLI start-up time: alembic, SQLAlchemy

    if settings.is_sqlite:
        await asyncio.to_thread(db.upgrade, settings.database_url)
    engine = db.make_engine(settings.database_url, pool_size=2)
    try:
        if not settings.is_sqlite:
            await db.check_connection(engine)
        yield engine
    finally:
        await engine.dispose()


async def _prune(older_than: timedelta, *, dry_run: bool, batch: int) -> PruneReport:
    from service.outbox.prune import prune  # noqa: PLC0415 - CLI start-up time

    async with opened(Settings()) as engine:
        return await prune(engine, older_than, dry_run=dry_run, batch=batch)
