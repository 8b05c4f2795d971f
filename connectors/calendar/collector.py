"""Python's cyclic garbage collector paused while feeds are parsed.

A parse allocates about a million objects (components, properties, parameters, rule
sets). Each such burst made the collector run its full collections, which walk every
object alive in the process (the parsed VEVENTs kept for reuse among them): a fifth of
a 10,000-event feed's cold parse (bench/calendar_feeds.py), growing with the process's
heap. Yet a parse leaves little for the collector: what it drops is freed by reference
counting, save the cycles of an exception's traceback for a broken event and of the
series a cache drops (none for the benchmark's feed, a few thousand objects for a feed
of broken events: tests/unit/test_ics_collector.py). So the collector is paused while
any parse runs and resumed when the last one ends, and collects them then. So that
parses following one another in several threads cannot keep it paused for long, one
that ends with the collector paused for over `MAX_PAUSE_S` runs a collection.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_PAUSE_S = 60.0


class _Pauses:
    """The parses under way and the collector's state before the first of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.resume = False  # the collector was enabled when the first of them began
        self.since = 0.0  # when the collector last ran (or the pause began)

    def begin(self) -> None:
        with self.lock:
            if self.running == 0:
                self.resume = gc.isenabled()
                self.since = time.monotonic()
                gc.disable()
            self.running += 1

    def end(self) -> None:
        with self.lock:
            self.running -= 1
            if self.running == 0:
                if self.resume:
                    gc.enable()
            elif self.resume and time.monotonic() - self.since > MAX_PAUSE_S:
                gc.collect()
                self.since = time.monotonic()


_PAUSES = _Pauses()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector paused for the duration, unless it was disabled already."""
    _PAUSES.begin()
    try:
        yield
    finally:
        _PAUSES.end()
