"""Metrics and logs of a real run: commands dispatched against the sandbox over HTTP move
the command, call and latency series by exactly what happened, and every log line of a
command names it. Events taken by the intake are counted by outcome."""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import structlog
from prometheus_client.parser import text_string_to_metric_families

from connectors.events.cloudevents import Envelope, Record, parse
from connectors.hr.scim import ENTERPRISE
from sandbox.seed import DEFAULT_ADMIN_PASSWORD
from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from service.observability import logs, metrics
from service.outbox.tables import CallLog
from tests.support.sandbox_server import SandboxAdmin

_offsets = itertools.count()
CALL_LOG = CallLog.__table__
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(*families: str) -> Samples:
    """Every sample of the named families, from the text a scrape would get."""
    text = metrics.render()[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        if f.name in families
        for s in f.samples
    }


def moved(before: Samples, after: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """How much each labelled series of `name` moved (series that did not move left out)."""
    return {
        labels: v - before.get((n, labels), 0.0)
        for (n, labels), v in after.items()
        if n == name and v != before.get((n, labels), 0.0)
    }


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure("json", "DEBUG", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


async def test_dispatch_moves_command_call_and_latency_series(
    service: Service, sandbox: SandboxAdmin, log_lines: io.StringIO
) -> None:
    families = ("ucaas_sync_commands", "ucaas_sync_ucaas_calls", "ucaas_sync_ucaas_call_seconds")
    batch = [
        *c.onboarding("CRM-7", employees=2),
        c.update_user("CRM-7", "E0001", designation="Lead"),
    ]
    before = samples(*families)
    assert await service.uow.accept(c.event(), batch)
    await service.dispatcher.run_until_idle()
    after = samples(*families)
    assert await service.store.counts() == {"done": len(batch)}

    # Each command done once; a command that ran before its prerequisite was done (the
    # subscription before its customer, say) counts an attempt told to wait, and no other.
    kinds = Counter(command.kind.value for command in batch)
    attempts = {
        (dict(labels)["kind"], dict(labels)["outcome"]): int(n)
        for labels, n in moved(before, after, "ucaas_sync_commands_total").items()
    }
    assert {kind: n for (kind, outcome), n in attempts.items() if outcome == "done"} == kinds
    assert {outcome for _, outcome in attempts} <= {"done", "waiting"}
    assert sum(attempts.values()) == len(batch) + service.dispatcher.stats.outcomes["wait"]

    # Every HTTP request the sandbox answered was counted once, and timed once.
    calls = moved(before, after, "ucaas_sync_ucaas_calls_total")
    answered = sandbox.calls()["total"]
    assert answered > len(batch)  # searches before creates, a login
    assert sum(calls.values()) == answered
    assert all(dict(labels)["status"].isdigit() for labels in calls)
    routes = {dict(labels)["route"] for labels in calls}
    assert {"/login", "/customers", "/users"} <= routes
    assert not any(ch.isdigit() for route in routes for ch in route)  # templates, no ids
    timed = moved(before, after, "ucaas_sync_ucaas_call_seconds_count")
    per_route: Counter[tuple[str, str]] = Counter()
    for labels, n in calls.items():
        per_route[dict(labels)["method"], dict(labels)["route"]] += int(n)
    assert {(dict(k)["method"], dict(k)["route"]): int(v) for k, v in timed.items()} == per_route
    seconds = moved(before, after, "ucaas_sync_ucaas_call_seconds_sum")
    assert sum(seconds.values()) > 0

    # The call log agrees, call by call.
    async with service.engine.connect() as conn:
        logged = (await conn.execute(sa.select(CALL_LOG))).all()
    assert Counter((row.method, row.route, str(row.status)) for row in logged) == {
        (dict(k)["method"], dict(k)["route"], dict(k)["status"]): int(n) for k, n in calls.items()
    }

    # The client's line for each call names the command it was made for.
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    call_lines = [line for line in lines if line["logger"] == "ucaas_sync.ucaas"]
    assert Counter((line["command_id"], line["entity"]) for line in call_lines) == Counter(
        (row.command_id, row.entity) for row in logged
    )
    assert {line["kind"] for line in call_lines} == set(kinds)
    assert DEFAULT_ADMIN_PASSWORD not in log_lines.getvalue()


def cloudevent(event_id: str, type_: str, data: Any) -> Envelope:
    document = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/metrics-test",
        "type": type_,
        "subject": "E1",
        "data": data,
    }
    return parse(Record("hr.events", 0, next(_offsets), b"E1", orjson.dumps(document)))


async def test_intake_counts_events_by_outcome(service: Service) -> None:
    joined = cloudevent(
        "m-1",
        "hr.user.joined",
        {
            "userName": "e1@acme.example",
            "name": {"givenName": "Emp", "familyName": "One"},
            ENTERPRISE: {"employeeNumber": "E1", "department": "Finance"},
            "tenant": "CRM-1",
        },
    )
    unknown = cloudevent("m-2", "hr.user.teleported", {})
    before = samples("ucaas_sync_events")
    taken = await service.intake.take([joined, unknown])
    taken += await service.intake.take([joined])  # the same id again
    assert [t.outcome for t in taken] == ["accepted", "invalid", "duplicate"]
    source = ("source", "/metrics-test")
    assert moved(before, samples("ucaas_sync_events"), "ucaas_sync_events_total") == {
        (("outcome", "accepted"), source, ("type", "hr.user.joined")): 1.0,
        (("outcome", "invalid"), source, ("type", "unknown")): 1.0,
        (("outcome", "duplicate"), source, ("type", "hr.user.joined")): 1.0,
    }
