"""The garbage collector is paused while feeds are parsed (collector.py): a parse must
leave little cyclic garbage, and the collector must be as it was once no parse runs."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.calendar import collector
from connectors.calendar.collector import collector_paused
from connectors.calendar.ics import parse_feed
from connectors.calendar.reuse import ParsedEvents
from tests.unit.test_ics_prescan import random_feed

NOW = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ics"


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def _left(body: bytes, reuse: ParsedEvents | None) -> int:
    """How many objects the collector finds after one parse of `body`. What was alive
    before is frozen: the collections walk only what the parse made (walking the whole
    test process each time made this file a minute long)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        with contextlib.suppress(Exception):  # a refused body: its error is garbage too
            parse_feed(body, start=NOW, end=NOW + timedelta(days=30), reuse=reuse)
    finally:
        gc.enable()
    try:
        return gc.collect()
    finally:
        gc.unfreeze()


def test_a_plain_feed_leaves_no_cyclic_garbage() -> None:
    body = (FIXTURES / "real" / "google_weekday_series.ics").read_bytes()
    kept = ParsedEvents()
    assert [_left(body, reuse) for reuse in (None, kept, kept)] == [0, 0, 0]


def test_any_feed_leaves_little_cyclic_garbage() -> None:
    """Tracebacks of broken events, series of a cache dropped: thousands of objects, where
    a parse allocates hundreds of thousands."""
    bodies = [random_feed(seed) for seed in range(4)]
    bodies += [path.read_bytes() for path in sorted((FIXTURES / "real").glob("*.ics"))]
    for body in bodies:
        assert max(_left(body, None), _left(body, ParsedEvents())) < 10_000


def test_the_collector_is_paused_during_a_parse_and_resumed_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    parse_feed(random_feed(1), start=NOW, end=NOW + timedelta(days=30))
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_parses_in_threads_resume_it_when_the_last_ends() -> None:
    inside, release = threading.Barrier(3), threading.Event()

    def parse() -> None:
        with collector_paused():
            inside.wait()
            release.wait(10)

    threads = [threading.Thread(target=parse) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert not gc.isenabled()
    release.set()
    for thread in threads:
        thread.join()
    assert gc.isenabled()


def test_a_long_pause_is_broken_by_a_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    collected: list[int] = []
    monkeypatch.setattr(collector, "MAX_PAUSE_S", -1.0)
    monkeypatch.setattr(collector.gc, "collect", lambda *_: collected.append(1) or 0)
    with collector_paused():
        with collector_paused():
            pass
        assert collected == [1]  # the inner one ended while the outer still ran
    assert gc.isenabled()
