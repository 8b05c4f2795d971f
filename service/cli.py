"""`ucaas-sync`: the service's command line."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("ucaas-sync 0.1.0")


def main() -> None:
    app()
