"""`ucaas-sync`: the service's command line."""

# The docstring above is the app's help. Here: the app, running the service (`run`,
# `dispatch`) and the developer's commands (`demo`, `broker`, `asyncapi`); the
# operator's in operations.py, `db` in database.py, `reconcile` in reconcile.py, `plan`
# in plan.py. What only some commands need (the service, Kafka, SQL, HTTP, rich) is
# imported inside them: `--help`, `config` and `status` start in a fraction of the time.

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvloop
from pydantic import ValidationError

from service.cli.audit import audit
from service.cli.database import db_app
from service.cli.dlq import dlq_app
from service.cli.keys import keys_app
from service.cli.operations import approve, dead_app, deny, find, history, status
from service.cli.operations import config as show_config
from service.cli.plan import plan
from service.cli.reconcile import reconcile_command
from service.settings import CONFIG_FILE_VARIABLE, ConfigFileError, Settings

if TYPE_CHECKING:
    from service.app.runner import Parts

log = logging.getLogger("ucaas_sync")
# `run`: a Kafka broker answered but refused the TLS or SASL settings (README, "Connecting
# to a managed Kafka"); 2 stays "the configuration cannot be used as it is"
KAFKA_REFUSED_EXIT = 3
app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(db_app, name="db")
app.add_typer(dead_app, name="dead")
app.add_typer(dlq_app, name="dlq")
app.add_typer(keys_app, name="keys")
app.command("plan")(plan)
app.command("status")(status)
app.command("find")(find)
app.command("history")(history)
app.command("config")(show_config)
app.command("audit")(audit)


@app.callback()
def _options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            exists=True,
            dir_okay=False,
            help=f"a TOML configuration file (or {CONFIG_FILE_VARIABLE})",
        ),
    ] = None,
) -> None:
    """Keeps the UCaaS platform in step with HR, CRM and calendar systems."""
    if config is not None:
        os.environ[CONFIG_FILE_VARIABLE] = str(config)


@app.command()
def demo(
    serve: Annotated[bool, typer.Option(help="keep everything running until Ctrl-C")] = False,
    port: Annotated[int | None, typer.Option(help="sandbox port (default: a free one)")] = None,
) -> None:
    """The main job on embedded defaults: broker, sandbox and service, a scenario, a summary."""
    from service.devtools.demo.main import main as run_demo  # noqa: PLC0415 - rich's progress: only here

    raise typer.Exit(run_demo(serve=serve, port=port))


def _logging(settings: Settings | None = None) -> None:
    from service.observability.logs import configure as configure_logging  # noqa: PLC0415 - CLI start-up time

    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)


async def _serve(parts: Parts) -> None:
    from service.app import gc_thresholds  # noqa: PLC0415 - CLI start-up time
    from service.app.bootstrap import bootstrap  # noqa: PLC0415 - CLI start-up time
    from service.app.runner import serve  # noqa: PLC0415 - CLI start-up time

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # first: a SIGTERM while starting ends it cleanly
    service = await bootstrap()
    gc_thresholds.tune()  # a long-running process: see gc_thresholds.py
    await serve(service, parts, stop)


@app.command()
def run(
    consumers: Annotated[bool, typer.Option(help="read HR, CRM and feed events from Kafka")] = True,
    dispatcher: Annotated[bool, typer.Option(help="execute the outbox's commands")] = True,
    poller: Annotated[bool, typer.Option(help="fetch the calendar feeds")] = True,
    admin: Annotated[
        bool, typer.Option(help="serve the admin API (UCAAS_SYNC_ADMIN_HOST/_PORT/_TOKEN)")
    ] = True,
    relay: Annotated[
        bool, typer.Option(help="publish the result events to Kafka (when results.enabled)")
    ] = True,
) -> None:
    """Run the service until SIGTERM or SIGINT; each part alone with a flag, to scale apart."""
    # the service and the errors it reports, imported on use: CLI start-up time
    from connectors.events.kafka_failures import KafkaSettingsError  # noqa: PLC0415
    from service.app.runner import Parts  # noqa: PLC0415
    from service.calendar.registry import FeedFileError  # noqa: PLC0415
    from service.entrypoints.admin_host import AdminRefusedError  # noqa: PLC0415
    from service.intake.licences import PolicyError  # noqa: PLC0415

    _logging()
    parts = Parts(
        consumers=consumers, dispatcher=dispatcher, poller=poller, admin=admin, relay=relay
    )
    try:
        uvloop.run(_serve(parts))
    except (PolicyError, FeedFileError, AdminRefusedError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KafkaSettingsError as exc:  # the broker refused TLS or SASL: fix, then start again
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(KAFKA_REFUSED_EXIT) from None


@app.command()
def dispatch() -> None:
    """Run only the dispatcher (the same as `run --no-consumers --no-poller --no-admin`)."""
    from service.app.runner import Parts  # noqa: PLC0415 - CLI start-up time

    _logging()
    uvloop.run(_serve(Parts(consumers=False, poller=False, admin=False)))


@app.command()
def broker(
    port: Annotated[int | None, typer.Option(help="Tansu port (default: a free one)")] = None,
    run: Annotated[
        list[str] | None, typer.Argument(help="a command to run with KAFKA_BOOTSTRAP_SERVERS set")
    ] = None,
) -> None:
    """Start a local Kafka-protocol broker with the service's topics and print its address.

    With a command after `--`, run it against the broker and stop the broker afterwards.
    """
    from service.devtools.local_broker import (  # noqa: PLC0415 - CLI start-up time
        LocalBroker,
        with_dead_letters,
    )

    settings = Settings()
    kafka = settings.kafka
    topics = [*with_dead_letters(kafka.topics, kafka.dlq_suffix), *settings.results.topics()]
    local = LocalBroker.start(topics, port=port, kafka=kafka)
    try:
        if run:
            env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": local.bootstrap}
            raise typer.Exit(subprocess.call(run, env=env))  # noqa: S603 - the caller's command
        typer.echo(f"Kafka-protocol broker ({local.kind}) at {local.bootstrap}")
        typer.echo(f"topics: {', '.join(topics)}")
        typer.echo(f"export KAFKA_BOOTSTRAP_SERVERS={local.bootstrap}")
        if local.process is None:
            return
        typer.echo("Ctrl-C stops it.")
        with contextlib.suppress(KeyboardInterrupt):
            local.process.wait()
    finally:
        local.stop()


app.command("approve")(approve)
app.command("deny")(deny)


@app.command()
def asyncapi(yaml: Annotated[bool, typer.Option(help="YAML instead of JSON")] = False) -> None:
    """Print the AsyncAPI document of the topics."""
    from service.entrypoints.asyncapi import as_json, as_yaml  # noqa: PLC0415 - CLI start-up time

    settings = Settings()
    kafka, results = settings.kafka, settings.results
    typer.echo(as_yaml(kafka, results) if yaml else as_json(kafka, results))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("ucaas-sync 0.1.0")


app.command("reconcile")(reconcile_command)


def main() -> None:
    try:
        app()
    except ConfigFileError as exc:  # the configuration cannot be read: one line, no trace
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except ValidationError as exc:  # a setting refused (a TLS/SASL combination, say): one line
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or exc.title
        said = str(first.get("msg", "")).removeprefix("Value error, ")
        typer.echo(f"error: configuration: {where}: {said}", err=True)
        raise SystemExit(2) from None
