"""The operator's commands: `status`, `dead list|retry|drop`, `approve`, `deny`, `history`,
`find`, `config`. The actions (retry, drop, approve, deny) are audited as `cli:<OS user>`.

Each opens the database named by the configuration (and asks the broker for the lag),
answers, and closes: they run beside a running service, from any machine that can reach
its database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import orjson
import typer
import uvloop

from service.cli.database import opened
from service.cli.settings_reference import as_markdown
from service.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from service.views import Operations, StatusReport

T = TypeVar("T")
dead_app = typer.Typer(no_args_is_help=True, help="Dead commands: list, retry, drop.")


@cache
def console() -> Console:
    from rich.console import Console  # noqa: PLC0415 - CLI start-up time: `config` needs no rich

    return Console()


@asynccontextmanager
async def operations() -> AsyncIterator[Operations]:
    # the database's side, imported on use: CLI start-up time
    from service.outbox.store import OutboxStore  # noqa: PLC0415
    from service.views import Operations  # noqa: PLC0415

    settings = Settings()
    async with opened(settings) as engine:
        yield Operations(engine, OutboxStore(engine), settings)


def _run(action: Callable[[Operations], Awaitable[T]]) -> T:
    async def go() -> T:
        async with operations() as ops:
            return await action(ops)

    return uvloop.run(go())


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def status(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
    lag: Annotated[bool, typer.Option(help="ask the broker for the consumer lag")] = True,
) -> None:
    """What the service owes: outbox by status and age, lag, dead letters, held, feeds."""
    found: StatusReport = _run(lambda ops: ops.status(with_lag=lag))
    if as_json:
        typer.echo(_json(found.as_json()))
        return
    from rich.table import Table  # noqa: PLC0415 - CLI start-up time: --json needs no rich

    table = Table(title="ucaas-sync status", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, count in sorted(found.outbox.items()):
        table.add_row(f"commands {name}", str(count))
    table.add_row("oldest open command", _age(found.oldest_open_age_s))
    table.add_row("held for approval", str(found.held_for_approval))
    for outcome, count in sorted(found.events.items()):
        table.add_row(f"events {outcome}", str(count))
    for topic, count in sorted(found.dead_letters.items()):
        table.add_row(f"dead letters from {topic}", str(count))
    for state, count in sorted(found.feeds.items()):
        table.add_row(f"feeds {state}", str(count))
    if found.results is not None:
        r = found.results
        oldest = f" (oldest {_age(r.oldest_unpublished_age_s)})" if r.unpublished else ""
        table.add_row(
            "results unpublished / published last hour",
            f"{r.unpublished}{oldest} / {r.published_last_hour}",
        )
    if found.consumer_lag is None:
        table.add_row("consumer lag", found.lag_error or "unknown")
    else:
        for (topic, partition), count in sorted(found.consumer_lag.items()):
            table.add_row(f"lag {topic}[{partition}]", str(count))
    console().print(table)


@dead_app.command("list")
def dead_list(
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Dead commands and dead-lettered records, newest first, with their reasons."""

    async def both(ops: Operations) -> tuple[list[Any], list[Any]]:
        return await ops.commands(status="dead", limit=limit), await ops.dead_letters(limit=limit)

    commands, letters = _run(both)
    if as_json:
        for item in [*commands, *letters]:
            typer.echo(_json({"type": type(item).__name__, **item.model_dump(mode="json")}))
        return
    from rich.table import Table  # noqa: PLC0415 - CLI start-up time: --json needs no rich

    table = Table(title=f"{len(commands)} dead command(s)")
    for column in ("id", "kind", "entity", "attempts", "error"):
        table.add_column(column)
    for c in commands:
        error = f"{c.last_error_code or ''} {c.last_error or ''}".strip()
        table.add_row(str(c.id), c.kind, c.entity, str(c.attempts), error)
    console().print(table)
    letters_table = Table(title=f"{len(letters)} dead-lettered record(s)")
    for column in ("record", "event id", "error", "reason", "replayed"):
        letters_table.add_column(column)
    for d in letters:
        record = f"{d.topic}[{d.partition}]@{d.offset}"
        replayed = f"{d.replayed_at:%Y-%m-%d %H:%M:%S}" if d.replayed_at else "-"
        letters_table.add_row(record, d.event_id or "-", d.error, d.reason, replayed)
    console().print(letters_table)


CommandId = Annotated[int, typer.Argument(min=1, max=2**63 - 1, help="a command's id")]


@dead_app.command("retry")
def dead_retry(command_id: CommandId) -> None:
    """Run a dead command again with a fresh attempt budget (the commands it held follow).
    Recorded in the audit log as cli:<your OS user>."""
    from service.outbox.audit import cli_actor  # noqa: PLC0415 - CLI start-up time

    found = _run(lambda ops: ops.store.operator.retry(command_id, cli_actor()))
    if found != "ok":
        why = "no such command" if found == "not_found" else "it is not dead"
        typer.echo(f"error: command #{command_id}: {why}", err=True)
        raise typer.Exit(1)
    typer.echo(f"command #{command_id} queued again")


@dead_app.command("drop")
def dead_drop(command_id: CommandId) -> None:
    """Give up on a command (dead, held or waiting); the commands it held run. Audited."""
    from service.outbox.audit import cli_actor  # noqa: PLC0415 - CLI start-up time

    found = _run(lambda ops: ops.store.operator.drop(command_id, cli_actor()))
    if found != "ok":
        why = "no such command" if found == "not_found" else "it is not dead, held or pending"
        typer.echo(f"error: command #{command_id}: {why}", err=True)
        raise typer.Exit(1)
    typer.echo(f"command #{command_id} dropped")


Feed = Annotated[str | None, typer.Option(help="every cancel held for this calendar feed")]


def approve(
    command_id: Annotated[int | None, typer.Argument(help="a held command's id")] = None,
    tenant: Annotated[str | None, typer.Option(help="every held command of this tenant")] = None,
    feed: Feed = None,
) -> None:
    """Let held deprovisioning (suspends, revokes) or a feed's held cancels run. Without
    arguments: list what is held."""
    _decide("approve", command_id, tenant, feed)


def deny(
    command_id: Annotated[int | None, typer.Argument(help="a held command's id")] = None,
    tenant: Annotated[str | None, typer.Option(help="every held command of this tenant")] = None,
    feed: Feed = None,
) -> None:
    """Drop held commands: the users keep their access, the meetings stay."""
    _decide("deny", command_id, tenant, feed)


def _decide(
    action: Literal["approve", "deny"], command_id: int | None, tenant: str | None, feed: str | None
) -> None:
    from service.outbox.audit import cli_actor  # noqa: PLC0415 - CLI start-up time

    if command_id is None and tenant is None and feed is None:
        held = _run(lambda ops: ops.held())
        for c in held:
            typer.echo(f"#{c.id} {c.kind} {c.entity}: {c.hold_reason}")
        typer.echo(f"{len(held)} command(s) held for approval")
        return

    async def decide(ops: Operations) -> tuple[int, str]:
        return await ops.decide(
            action, command_id=command_id, tenant=tenant, feed=feed, actor=cli_actor()
        )

    changed, found = _run(decide)
    if found == "not_found":
        what = f"command #{command_id}" if command_id is not None else (tenant or feed)
        typer.echo(f"error: nothing known of {what}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{action}d {changed} command(s)")


def history(
    entity: Annotated[
        str, typer.Argument(help="user:TENANT:EMPLOYEE, customer:CRM, subscriptions:CRM, ...")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Every event, command, UCaaS call and result event of one employee, company or
    meeting (`find` finds the entity)."""
    found = _run(lambda ops: ops.history(entity))
    if as_json:
        typer.echo(found.model_dump_json())
        return
    if not (found.events or found.commands or found.calls or found.results):
        typer.echo(f"nothing known of {entity}", err=True)
        raise typer.Exit(1)
    lines: list[tuple[Any, str]] = [
        (e.received_at, f"event   {e.type} {e.event_id} ({e.source}): {e.outcome}")
        for e in found.events
    ]
    for c in found.commands:
        error = f" - {c.last_error_code} {c.last_error}" if c.last_error else ""
        lines.append((c.created_at, f"command #{c.id} {c.kind}: {c.status}{error}"))
    for call in found.calls:
        answer = call.status if call.status is not None else call.error
        code = f" code {call.api_code}" if call.api_code else ""
        lines.append(
            (
                call.at,
                f"call    #{call.command_id} {call.method} {call.route} -> {answer}{code} "
                f"({call.latency_ms:.0f} ms)",
            )
        )
    for r in found.results:
        sent = f"published {r.published_at:%H:%M:%S}" if r.published_at else "not published yet"
        lines.append((r.at, f"result  {r.type} {r.event_id} (#{r.command_id}): {sent}"))
    for at, line in sorted(lines, key=lambda item: item[0]):
        typer.echo(f"{at:%Y-%m-%d %H:%M:%S} {line}")
    for m in found.mappings:
        typer.echo(f"mapped  {m.kind} {m.external_id} -> UCaaS {m.ucaas_id}")


def find(
    query: Annotated[
        str, typer.Argument(help="an e-mail or employee id, a CRM id or name, a feed id or UID")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """The entities (at most 20) a query finds, for `history`."""
    found = _run(lambda ops: ops.find(query))
    for m in found:
        typer.echo(_json(m.model_dump()) if as_json else f"{m.entity}\t{m.kind}\t{m.label}")
    if not found:
        typer.echo(f"nothing found for {query!r}", err=True)
        raise typer.Exit(1)


def config(
    reference: Annotated[
        bool, typer.Option("--reference", help="every setting, its variables and default")
    ] = False,
) -> None:
    """Print the effective configuration as JSON, secrets masked.

    Read from the environment, `.env`, the configuration file and the defaults."""
    if reference:
        typer.echo(as_markdown())
        return
    typer.echo(orjson.dumps(Settings().effective(), option=orjson.OPT_INDENT_2).decode())
