"""`ucaas-sync`: the service's command line."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Annotated

import typer
import uvloop

from service.bootstrap import bootstrap
from service.config import Settings
from service.demo import main as run_demo
from service.outbox import db

log = logging.getLogger("ucaas_sync")
app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")


@app.command()
def demo(
    serve: Annotated[bool, typer.Option(help="keep the sandbox running afterwards")] = False,
    port: Annotated[int | None, typer.Option(help="sandbox port (default: a free one)")] = None,
) -> None:
    """Start the UCaaS sandbox and run the scripted scenario through the client."""
    raise typer.Exit(run_demo(serve=serve, port=port))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the migrations (SQLite is also upgraded automatically on start)."""
    settings = Settings()
    db.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {db.current_revision(settings.database_url)}")


@app.command()
def dispatch() -> None:
    """Run the dispatcher until SIGTERM or SIGINT (then finish or release in-flight work)."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call is noise

    async def main() -> None:
        service = await bootstrap()
        log.info(
            "dispatcher %s started: %d workers, lease %.0f s, database %s",
            service.dispatcher.owner,
            service.settings.dispatch.workers,
            service.settings.dispatch.lease_s,
            service.engine.url.render_as_string(hide_password=True),
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(service.dispatcher.stop()))
        try:
            await service.dispatcher.run()
        finally:
            await service.aclose()

    uvloop.run(main())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("ucaas-sync 0.1.0")


def main() -> None:
    app()
