"""`ucaas-sync dlq replay TOPIC.dlq`: dead-lettered records sent back to their topic.

Exit codes: 0 done (or nothing to replay), 1 the broker did not acknowledge some replays
(those acknowledged before are marked), 2 a usage or configuration error, or the broker or
the database not answering. A real run is recorded in the audit log (`cli:<OS user>`,
action `dlq-replay`); --dry-run changes nothing and records nothing.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.dlq.model import Filters, Report

dlq_app = typer.Typer(no_args_is_help=True, help="Dead-letter topics: replay.")


@dlq_app.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="the dead-letter topic, e.g. hr.events.dlq")],
    since: Annotated[
        str | None,
        typer.Option(help="only dead-lettered since then: 2h, 30min, 7d, or an ISO time"),
    ] = None,
    error: Annotated[
        list[str] | None,
        typer.Option(
            "--error",
            metavar="KIND",
            help="only this error (dlq.error), e.g. invalid_data; repeatable",
        ),
    ] = None,
    include_unrecorded: Annotated[
        bool,
        typer.Option(
            "--include-unrecorded",
            help="also replay dead letters whose dead_letter row is gone (pruned)",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, send and mark nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, then a summary")] = False,
) -> None:
    """Send dead-lettered records back to their source topic, with their key and headers
    (without the dlq.* ones, with ucaas-sync-replayed-from), and mark them replayed so a
    second replay skips them. Reads the topic up to its end at the start; no group."""
    from service.cli.audit import since_of  # noqa: PLC0415 - the CLI starts fast
    from service.dlq.model import Filters  # noqa: PLC0415

    filters = Filters(
        since=None if since is None else since_of(since, datetime.now(UTC)),
        errors=frozenset(error or ()),
        include_unrecorded=include_unrecorded,
    )
    report = _replay(topic, filters, dry_run)
    if as_json:
        _json(report)
    else:
        _table(report)
    if report.failed:
        typer.echo(
            f"error: {len(report.failed)} replay(s) not acknowledged by the broker: "
            f"{next(iter(report.failed.values()))}",
            err=True,
        )
        raise typer.Exit(1)


def _replay(topic: str, filters: Filters, dry_run: bool) -> Report:
    import uvloop  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from connectors.events.replay import TopicError  # noqa: PLC0415
    from service.cli.database import opened  # noqa: PLC0415
    from service.dlq.shell import NotADeadLetterTopicError, replay  # noqa: PLC0415
    from service.outbox.audit import cli_actor  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    async def go() -> Report:
        settings = Settings()
        kafka = settings.kafka
        broker = kafka.connection(kafka.bootstrap_servers or _local_broker())
        async with opened(settings) as engine:
            return await replay(
                engine,
                broker,
                topic,
                suffix=kafka.dlq_suffix,
                filters=filters,
                dry_run=dry_run,
                actor=cli_actor(),
            )

    try:
        return uvloop.run(go())
    except (TopicError, NotADeadLetterTopicError) as exc:
        typer.echo(f"error: {exc}", err=True)
    except SQLAlchemyError as exc:  # no URL, no password: the kind of failure
        typer.echo(f"error: database: {type(exc.__cause__ or exc).__name__}", err=True)
    except ValidationError:
        raise  # main() words a refused setting in one line
    except (OSError, ValueError) as exc:
        typer.echo(
            f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True
        )
    raise typer.Exit(2)


def _local_broker() -> str:
    # bootstrap's import costs a second: only when KAFKA_BOOTSTRAP_SERVERS is not set
    from service.app.bootstrap import DEFAULT_KAFKA  # noqa: PLC0415

    return DEFAULT_KAFKA


def _json(report: Report) -> None:
    import orjson  # noqa: PLC0415

    for decision in report.decisions:
        typer.echo(orjson.dumps(report.line(decision)).decode())
    typer.echo(orjson.dumps(report.as_json()).decode())


def _table(report: Report) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    # piped output is not cut to 80 columns: one dead letter, one line
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    if report.decisions:
        table = Table("record", "from", "key", "error", "dead-lettered", "outcome")
        for d in report.decisions:
            letter = d.letter
            outcome = report.outcome(d)
            why = d.skip.value if d.skip else report.failed.get(letter.where)
            table.add_row(
                letter.where,
                str(letter.origin or "-"),
                letter.key or "-",
                letter.error or "-",
                f"{letter.at:%Y-%m-%d %H:%M:%S}" if letter.at else "-",
                f"{outcome}: {why}" if why else outcome,
            )
        console.print(table)
    console.print(report.summary(), highlight=False)
