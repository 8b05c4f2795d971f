"""Prometheus metrics: what the code counts as it runs, and gauges set at scrape time.

Everything lives in `REGISTRY`, not the client's global default registry, so tests and
several services in one process stay apart. The code calls the small functions below
rather than touching the metric objects, so label values stay bounded in one place: a
label fed by producers (an event's source or type) or by a path cannot grow without limit.

Counters are monotonic and process-wide: readers compare two scrapes (`rate()`), tests
compare before and after. The gauges of the outbox, the consumer lag and the held and dead
commands, and of the feeds held, are set from the database by `observe_status()` just
before a scrape renders.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from connectors.calendar.isolate import KINDS as SKIP_KINDS  # why an event was skipped

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "ucaas_sync_events_total",
    "Events taken by the intake, by source, type and outcome",
    ["source", "type", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "ucaas_sync_dead_letters_total",
    "Records sent to <topic>.dlq, by the topic they came from and the error",
    ["topic", "error"],
    registry=REGISTRY,
)
COMMANDS = Counter(
    "ucaas_sync_commands_total",
    "Command attempts finished by the dispatcher, by kind and outcome",
    ["kind", "outcome"],
    registry=REGISTRY,
)
UCAAS_CALLS = Counter(
    "ucaas_sync_ucaas_calls_total",
    "UCaaS HTTP calls, by method, route template and status ('error': no response)",
    ["method", "route", "status"],
    registry=REGISTRY,
)
UCAAS_CALL_SECONDS = Histogram(
    "ucaas_sync_ucaas_call_seconds",
    "UCaaS HTTP call latency, by method and route template",
    ["method", "route"],
    # From a loopback sandbox (milliseconds) to the client's default 10 s timeout.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
FEED_POLLS = Counter(
    "ucaas_sync_feed_polls_total",
    "Calendar feed fetches, by outcome (ok, unchanged, failed, superseded)",
    ["outcome"],
    registry=REGISTRY,
)
FEED_EVENTS_NOT_SCHEDULED = Counter(
    "ucaas_sync_feed_events_not_scheduled_total",
    "Calendar feed occurrences not scheduled: the owner only attends, or another feed has it",
    ["reason"],
    registry=REGISTRY,
)
FEED_VERSIONS_HELD = Counter(
    "ucaas_sync_feed_versions_held_total",
    "Calendar feed versions whose cancels the mass-cancel guard held for approval",
    registry=REGISTRY,
)
FEED_EVENTS_SKIPPED = Counter(
    "ucaas_sync_feed_events_skipped_total",
    "Calendar events skipped as unusable at an expansion of their feed, by reason kind",
    ["reason"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "ucaas_sync_outbox_depth",
    "Commands in the outbox, by status (at the last scrape)",
    ["status"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "ucaas_sync_outbox_oldest_age_seconds",
    "Age of the oldest command not done or dropped (0 when there is none)",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "ucaas_sync_consumer_lag",
    "Records not yet taken, by topic and partition",
    ["topic", "partition"],
    registry=REGISTRY,
)
CONSUMER_LAG_TOTAL = Gauge(
    "ucaas_sync_consumer_lag_total",
    "Records not yet taken, summed over partitions (the autoscaling signal)",
    registry=REGISTRY,
)
HELD_COMMANDS = Gauge(
    "ucaas_sync_held_commands",
    "Commands held for an operator's approval",
    registry=REGISTRY,
)
FEEDS_HELD = Gauge(
    "ucaas_sync_feeds_held",
    "Calendar feeds with cancels held for an operator's approval",
    registry=REGISTRY,
)
DEAD_COMMANDS = Gauge(
    "ucaas_sync_dead_commands",
    "Commands parked as dead, waiting for an operator",
    registry=REGISTRY,
)
RESULTS_PUBLISHED = Counter(
    "ucaas_sync_results_published_total",
    "Result events the relay published (a re-send after a lost acknowledgement counts again)",
    registry=REGISTRY,
)
RESULTS_RELAY_FAILURES = Counter(
    "ucaas_sync_results_relay_failures_total",
    "Relay rounds the broker did not acknowledge (sent again after a pause)",
    registry=REGISTRY,
)
RESULTS_UNPUBLISHED = Gauge(
    "ucaas_sync_results_unpublished",
    "Result events written but not yet acknowledged by the broker (the relay's lag)",
    registry=REGISTRY,
)
RESULTS_OLDEST_AGE = Gauge(
    "ucaas_sync_results_oldest_unpublished_seconds",
    "Age of the oldest result event not yet published (0 when there is none)",
    registry=REGISTRY,
)

# Every status a command can have, so a status that empties shows 0 rather than its last count.
OUTBOX_STATUSES = ("pending", "in_flight", "waiting", "held", "dead", "done", "dropped")
# Distinct values kept for a label fed from outside before the rest become OTHER.
MAX_LABEL_VALUES = 100
OTHER = "other"
# A literal route word: letters, `_` and `-`, not too long, and not a run of hex (an id).
_LITERAL_SEGMENT = re.compile(r"^(?![0-9a-fA-F-]{16,}$)[A-Za-z][A-Za-z_-]{0,39}$")


class StatusLike(Protocol):
    """What `observe_status` reads: `service.views.StatusReport` has these fields."""

    @property
    def outbox(self) -> Mapping[str, int]: ...
    @property
    def oldest_open_age_s(self) -> float | None: ...
    @property
    def held_for_approval(self) -> int: ...
    @property
    def dead(self) -> int: ...
    @property
    def feeds(self) -> Mapping[str, int]: ...
    @property
    def consumer_lag(self) -> Mapping[tuple[str, int], int] | None: ...


class BoundedLabel:
    """The first `limit` distinct values pass; later ones become OTHER (a producer sending
    a new source per event must not create a series per event)."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value[:120]
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


_sources = BoundedLabel()
_routes = BoundedLabel()
_errors = BoundedLabel()


def route_template(route: str) -> str:
    """A route as a template: `{...}` placeholders and literal words stay, anything that
    looks like an id (digits, a UUID, an e-mail, an encoded value) becomes `{id}`. The
    client already passes templates (`/users/{user_id}`); this guards a concrete path."""
    path = route.split("?", 1)[0].split("#", 1)[0]
    segments = [
        s if (s.startswith("{") and s.endswith("}")) or _LITERAL_SEGMENT.match(s) else "{id}"
        for s in path.split("/")
        if s
    ]
    return "/" + "/".join(segments)


def event_taken(source: str, type_: str, outcome: str) -> None:
    """`type_` is a known event type or "unknown": the intake, which knows the types, says
    which (a producer must not create a series per made-up type)."""
    EVENTS.labels(_sources(source), type_, outcome).inc()


def dead_lettered(topic: str, error: str) -> None:
    DEAD_LETTERS.labels(_sources(topic), _errors(error)).inc()


def command_finished(kind: str, outcome: str) -> None:
    COMMANDS.labels(kind, outcome).inc()


def ucaas_call(method: str, route: str, status: int | None, seconds: float) -> None:
    calls, latency = _call_metrics(method, route, status)
    calls.inc()
    latency.observe(max(0.0, seconds))


@lru_cache(maxsize=1024)  # a few dozen routes, each with a few statuses
def _call_metrics(method: str, route: str, status: int | None) -> tuple[Counter, Histogram]:
    """The labelled children of one call's metrics, looked up once: the route's template
    and prometheus' label lookup cost more than the increments (1% of the dispatcher)."""
    template = _routes(route_template(route))
    return (
        UCAAS_CALLS.labels(method, template, "error" if status is None else str(status)),
        UCAAS_CALL_SECONDS.labels(method, template),
    )


def feed_polled(outcome: str) -> None:
    FEED_POLLS.labels(outcome).inc()


def feed_events_not_scheduled(attended: int, elsewhere: int) -> None:
    FEED_EVENTS_NOT_SCHEDULED.labels("attended").inc(attended)
    FEED_EVENTS_NOT_SCHEDULED.labels("other_feed").inc(elsewhere)


def feed_version_held() -> None:
    FEED_VERSIONS_HELD.inc()


def feed_event_skipped(kind: str) -> None:
    FEED_EVENTS_SKIPPED.labels(kind if kind in SKIP_KINDS else OTHER).inc()  # a closed set


def results_published(count: int) -> None:
    RESULTS_PUBLISHED.inc(count)


def results_relay_failed() -> None:
    RESULTS_RELAY_FAILURES.inc()


def results_backlog(unpublished: int, oldest_age_s: float | None) -> None:
    RESULTS_UNPUBLISHED.set(unpublished)
    RESULTS_OLDEST_AGE.set(oldest_age_s or 0.0)


def observe_status(status: StatusLike) -> None:
    """Set the scrape-time gauges from one reading of the database and the broker."""
    for name in {*OUTBOX_STATUSES, *status.outbox}:
        OUTBOX_DEPTH.labels(name).set(status.outbox.get(name, 0))
    OUTBOX_OLDEST_AGE.set(status.oldest_open_age_s or 0.0)
    HELD_COMMANDS.set(status.held_for_approval)
    DEAD_COMMANDS.set(status.dead)
    FEEDS_HELD.set(status.feeds.get("held", 0))
    # Partitions revoked since the last scrape must not linger. An unknown lag (the broker
    # did not answer) leaves no per-partition series and the total at its last known
    # value, so an autoscaler sees neither a drop to 0 nor a NaN.
    CONSUMER_LAG.clear()
    lag = status.consumer_lag
    if lag is None:
        return
    for (topic, partition), behind in lag.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(behind)
    CONSUMER_LAG_TOTAL.set(sum(lag.values()))


def render() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
