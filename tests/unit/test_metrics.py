"""Metrics: counters move, labels stay bounded, gauges follow a status, the text parses.

The registry is process-wide, so every test compares values before and after."""

from __future__ import annotations

from datetime import UTC, datetime

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.events.cloudevents import Envelope, Record
from connectors.ucaas import CallRecord
from service import views
from service.intake.licences import LicencePolicy
from service.intake.shell import Intake
from service.observability import metrics
from service.outbox.dispatcher import record_call
from service.outbox.unit_of_work import UnitOfWork
from service.settings import IntakeSettings

RECORD = Record("hr.events", 0, 0, None, b"{}")


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def status_of(
    outbox: dict[str, int] | None = None,
    oldest_open_age_s: float | None = None,
    held_for_approval: int = 0,
    dead: int = 0,
    consumer_lag: dict[tuple[str, int], int] | None = None,
) -> views.StatusReport:
    """The lead's status with the fields `observe_status` does not read left empty."""
    return views.StatusReport(
        at=datetime.now(UTC),
        outbox=outbox or {},
        oldest_open_age_s=oldest_open_age_s,
        held_for_approval=held_for_approval,
        dead=dead,
        dead_letters={},
        events={},
        feeds={},
        consumer_lag=consumer_lag,
    )


@pytest.mark.parametrize(
    ("route", "template"),
    [
        ("/users/{user_id}", "/users/{user_id}"),
        ("/meetings/permanent/{room_id}", "/meetings/permanent/{room_id}"),
        ("/contact-groups", "/contact-groups"),
        ("/users/4711", "/users/{id}"),
        ("/users/ann@acme.example", "/users/{id}"),
        ("/meetings/3f2a9c1e-1111-2222-3333-444455556666/lobby", "/meetings/{id}/lobby"),
        ("/customers/deadbeefcafebabe0042", "/customers/{id}"),
        ("/users/ann%40acme.example", "/users/{id}"),
        ("/customers?search_by=customer_code&search_string=CRM-1", "/customers"),
    ],
)
def test_route_template(route: str, template: str) -> None:
    assert metrics.route_template(route) == template


def test_a_call_counts_once_with_its_latency() -> None:
    labels = {"method": "GET", "route": "/users/{user_id}"}
    calls = value("ucaas_sync_ucaas_calls_total", **labels, status="200")
    count = value("ucaas_sync_ucaas_call_seconds_count", **labels)
    total = value("ucaas_sync_ucaas_call_seconds_sum", **labels)
    under_50ms = value("ucaas_sync_ucaas_call_seconds_bucket", **labels, le="0.05")
    metrics.ucaas_call("GET", "/users/{user_id}", 200, 0.03)
    metrics.ucaas_call("GET", "/users/{user_id}", 200, 0.7)
    assert value("ucaas_sync_ucaas_calls_total", **labels, status="200") == calls + 2
    assert value("ucaas_sync_ucaas_call_seconds_count", **labels) == count + 2
    assert value("ucaas_sync_ucaas_call_seconds_sum", **labels) == pytest.approx(total + 0.73)
    assert value("ucaas_sync_ucaas_call_seconds_bucket", **labels, le="0.05") == under_50ms + 1


def test_a_call_without_an_answer_is_an_error_and_a_concrete_path_is_templated() -> None:
    labels = {"method": "PUT", "route": "/users/{id}", "status": "error"}
    before = value("ucaas_sync_ucaas_calls_total", **labels)
    metrics.ucaas_call("PUT", "/users/123456", None, 10.0)
    assert value("ucaas_sync_ucaas_calls_total", **labels) == before + 1
    exposed = metrics.render()[0].decode()
    # in no label (a sample's value, a timestamp, may hold those digits by chance)
    assert "/users/123456" not in exposed
    labels_shown = [line.partition("}")[0] for line in exposed.splitlines() if "{" in line]
    assert not [shown for shown in labels_shown if "123456" in shown]


def test_the_dispatcher_call_hook_counts_every_call() -> None:
    labels = {"method": "POST", "route": "/customers", "status": "201"}
    before = value("ucaas_sync_ucaas_calls_total", **labels)
    now = datetime.now(UTC)
    record_call(CallRecord("POST", "/customers", "/customers", 201, None, 0.01, None, now))
    assert value("ucaas_sync_ucaas_calls_total", **labels) == before + 1


def test_events_by_source_type_and_outcome() -> None:
    known = {"source": "/hr", "type": "hr.user.joined", "outcome": "accepted"}
    before = value("ucaas_sync_events_total", **known)
    metrics.event_taken("/hr", "hr.user.joined", "accepted")
    assert value("ucaas_sync_events_total", **known) == before + 1


async def test_the_intake_counts_types_it_does_not_know_as_unknown() -> None:
    """A producer inventing a type per event must not create a series per event: the
    intake, which holds the table of types, labels every other type `unknown`."""
    unknown = {"source": "/hr", "type": "unknown", "outcome": "invalid"}
    before = value("ucaas_sync_events_total", **unknown)
    # made-up types are refused before any database statement: the engine is never used
    intake = Intake(
        UnitOfWork(create_async_engine("sqlite+aiosqlite://")), LicencePolicy(), IntakeSettings()
    )
    made_up = [
        Envelope(f"e{n}", "/hr", f"made.up.type.{n}", "E1", None, {}, RECORD) for n in (1, 2)
    ]
    taken = await intake.take(made_up)
    assert [t.outcome for t in taken] == ["invalid", "invalid"]
    assert value("ucaas_sync_events_total", **unknown) == before + 2
    for n in (1, 2):
        assert (
            value(
                "ucaas_sync_events_total", source="/hr", type=f"made.up.type.{n}", outcome="invalid"
            )
            == 0
        )


def test_a_label_fed_from_outside_is_bounded() -> None:
    bounded = metrics.BoundedLabel(limit=2)
    assert [bounded(v) for v in ("a", "b", "c", "a", "d")] == ["a", "b", "other", "a", "other"]
    assert bounded("x" * 500) == "other"


def test_commands_dead_letters_and_feed_polls() -> None:
    done = value("ucaas_sync_commands_total", kind="create_user", outcome="done")
    waiting = value("ucaas_sync_commands_total", kind="assign_licence", outcome="waiting")
    dlq = value("ucaas_sync_dead_letters_total", topic="hr.events", error="not_json")
    polls = value("ucaas_sync_feed_polls_total", outcome="unchanged")
    metrics.command_finished("create_user", "done")
    metrics.command_finished("assign_licence", "waiting")
    metrics.dead_lettered("hr.events", "not_json")
    metrics.feed_polled("unchanged")
    assert value("ucaas_sync_commands_total", kind="create_user", outcome="done") == done + 1
    assert (
        value("ucaas_sync_commands_total", kind="assign_licence", outcome="waiting") == waiting + 1
    )
    assert value("ucaas_sync_dead_letters_total", topic="hr.events", error="not_json") == dlq + 1
    assert value("ucaas_sync_feed_polls_total", outcome="unchanged") == polls + 1


def test_observe_status_sets_the_gauges() -> None:
    metrics.observe_status(
        status_of(
            outbox={"pending": 5, "done": 40, "held": 2, "dead": 1},
            oldest_open_age_s=93.5,
            held_for_approval=2,
            dead=1,
            consumer_lag={("hr.events", 0): 3, ("hr.events", 1): 4, ("crm.events", 0): 0},
        )
    )
    assert value("ucaas_sync_outbox_depth", status="pending") == 5
    assert value("ucaas_sync_outbox_depth", status="done") == 40
    assert metrics.REGISTRY.get_sample_value("ucaas_sync_outbox_depth", {"status": "waiting"}) == 0
    assert value("ucaas_sync_outbox_oldest_age_seconds") == 93.5
    assert value("ucaas_sync_held_commands") == 2
    assert value("ucaas_sync_dead_commands") == 1
    assert value("ucaas_sync_consumer_lag", topic="hr.events", partition="1") == 4
    assert value("ucaas_sync_consumer_lag_total") == 7

    # The queue empties, a partition is revoked.
    metrics.observe_status(status_of(outbox={"done": 45}, consumer_lag={("hr.events", 0): 1}))
    assert value("ucaas_sync_outbox_depth", status="pending") == 0
    assert value("ucaas_sync_outbox_oldest_age_seconds") == 0
    assert value("ucaas_sync_held_commands") == value("ucaas_sync_dead_commands") == 0
    lag = {"topic": "hr.events", "partition": "1"}
    assert metrics.REGISTRY.get_sample_value("ucaas_sync_consumer_lag", lag) is None
    assert value("ucaas_sync_consumer_lag_total") == 1

    # The broker does not answer: no partition series, the total keeps its last value.
    metrics.observe_status(status_of(consumer_lag=None))
    assert (
        metrics.REGISTRY.get_sample_value("ucaas_sync_consumer_lag", lag | {"partition": "0"})
        is None
    )
    assert value("ucaas_sync_consumer_lag_total") == 1


def test_render_parses_and_names_every_metric() -> None:
    metrics.ucaas_call("GET", "/plans", 200, 0.01)
    metrics.observe_status(status_of(consumer_lag={("crm.events", 0): 2}))
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    expected = {
        "ucaas_sync_events": "counter",
        "ucaas_sync_dead_letters": "counter",
        "ucaas_sync_commands": "counter",
        "ucaas_sync_ucaas_calls": "counter",
        "ucaas_sync_ucaas_call_seconds": "histogram",
        "ucaas_sync_feed_polls": "counter",
        "ucaas_sync_outbox_depth": "gauge",
        "ucaas_sync_outbox_oldest_age_seconds": "gauge",
        "ucaas_sync_consumer_lag": "gauge",
        "ucaas_sync_consumer_lag_total": "gauge",
        "ucaas_sync_held_commands": "gauge",
        "ucaas_sync_dead_commands": "gauge",
        "ucaas_sync_results_published": "counter",
        "ucaas_sync_results_relay_failures": "counter",
        "ucaas_sync_results_unpublished": "gauge",
        "ucaas_sync_results_oldest_unpublished_seconds": "gauge",
    }
    assert {name: families[name].type for name in expected} == expected
    samples = {s.name for s in families["ucaas_sync_ucaas_call_seconds"].samples}
    assert samples >= {
        "ucaas_sync_ucaas_call_seconds_bucket",
        "ucaas_sync_ucaas_call_seconds_count",
        "ucaas_sync_ucaas_call_seconds_sum",
    }


def test_the_default_registry_is_left_alone() -> None:
    metrics.command_finished("create_user", "done")
    labels = {"kind": "create_user", "outcome": "done"}
    assert prometheus_client.REGISTRY.get_sample_value("ucaas_sync_commands_total", labels) is None
