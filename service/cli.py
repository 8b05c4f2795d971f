"""`ucaas-sync`: the service's command line."""

from __future__ import annotations

from typing import Annotated

import typer

from service.demo import main as run_demo

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.command()
def demo(
    serve: Annotated[bool, typer.Option(help="keep the sandbox running afterwards")] = False,
    port: Annotated[int | None, typer.Option(help="sandbox port (default: a free one)")] = None,
) -> None:
    """Start the UCaaS sandbox and run the scripted scenario through the client."""
    raise typer.Exit(run_demo(serve=serve, port=port))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("ucaas-sync 0.1.0")


def main() -> None:
    app()
