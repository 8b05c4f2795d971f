"""The CLI starts without the service: `--help`, `config` and the operator's commands are
run as subprocesses by many e2e tests and by operators, and each start used to import the
whole service (Kafka, SQL, HTTP, iCalendar) for ~1 s before doing anything.

A command imports what it needs when it runs; at import time service.cli.main may load
only typer, pydantic and the settings. A new module-level import of something heavy in
service/cli/ fails here rather than slowing every start down unnoticed.
"""

from __future__ import annotations

import subprocess
import sys

from service.cli import reconcile as reconcile_cli
from service.reconcile import KINDS

# What `import service.cli.main` must not load: each costs tens to hundreds of ms.
HEAVY = (
    "aiohttp",
    "aiokafka",
    "alembic",
    "asyncpg",
    "cryptography",
    "faststream",
    "fastapi",
    "httpx",
    "icalendar",
    "prometheus_client",
    "recurring_ical_events",
    "rich",
    "sqlalchemy",
    "sqlmodel",
    "starlette",
    "structlog",
    "uvicorn",
    "connectors.ucaas",
    "connectors.calendar",
    "connectors.events",
    "service.app",
    "service.entrypoints",
    "service.intake",
    "service.outbox",
    "service.reconcile",
    "service.views",
)

LOADED = """
import sys
import service.cli.main
print("\\n".join(sorted(sys.modules)))
"""


def test_importing_the_cli_loads_nothing_heavy() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=True
    ).stdout.split()
    found = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not found, f"imported by `import service.cli.main`: {found}"


def test_the_kinds_in_reconcile_help_are_the_kinds_reconciled() -> None:
    # spelled out in service/cli/reconcile.py so that --help does not import service.reconcile
    assert reconcile_cli.KINDS == KINDS
