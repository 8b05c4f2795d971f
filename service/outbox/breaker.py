"""Pause and probe: when the UCaaS API fails for everyone, stop dispatching and probe.

After `threshold` API failures in a row (5xx, no answer) the breaker opens: no more
claims, so the backlog keeps its attempts. After `probe_s` one call is let through (half
open). Its success closes the breaker; its failure reopens it with the wait doubled, up
to `probe_cap_s`. A 429 is not an outage but a request to slow down: every claim waits
until its Retry-After has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from service.backoff import backoff_s


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class OutageBreaker:
    threshold: int = 5
    probe_s: float = 2.0
    probe_cap_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened: int = 0  # how many times an outage was detected
    _probe_at: float = 0.0
    _failed_probes: int = 0  # in this outage: each doubles the wait for the next
    _probe_out: bool = False
    _calm_until: float = field(default=0.0)

    def slots(self, wanted: int) -> int:
        """How many commands may be claimed now (0 while paused, 1 for a probe)."""
        now = self.clock()
        if now < self._calm_until:
            return 0
        if self.state is BreakerState.CLOSED:
            return wanted
        if self.state is BreakerState.OPEN and now >= self._probe_at:
            self.state = BreakerState.HALF_OPEN
        if self.state is BreakerState.HALF_OPEN and not self._probe_out and wanted > 0:
            self._probe_out = True
            return 1
        return 0

    def unused(self, slots: int) -> None:
        """Slots from `slots()` that no API call will use (nothing was due, the claim
        failed, the command ended before calling): a probe that did not happen is offered
        again, else the breaker would wait forever for its answer."""
        if slots > 0 and self.state is BreakerState.HALF_OPEN:
            self._probe_out = False

    def paused(self) -> bool:
        return self.state is not BreakerState.CLOSED

    def success(self) -> None:
        self.failures = 0
        self._probe_out = False
        self._failed_probes = 0
        self.state = BreakerState.CLOSED

    def failure(self) -> None:
        """An API failure (5xx or no answer)."""
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._failed_probes += 1
            wait_s = backoff_s(
                self._failed_probes + 1,
                base_s=self.probe_s,
                cap_s=self.probe_cap_s,
                jitter="none",
            )
            self._open(wait_s)
        elif self.state is BreakerState.CLOSED and self.failures >= self.threshold:
            self.opened += 1
            self._open(self.probe_s)

    def slow_down(self, retry_after_s: float) -> None:
        """A 429: nobody calls before Retry-After has passed."""
        self._calm_until = max(self._calm_until, self.clock() + retry_after_s)

    def _open(self, wait_s: float) -> None:
        self.state = BreakerState.OPEN
        self._probe_at = self.clock() + wait_s
        self._probe_out = False
