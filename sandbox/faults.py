"""Fault injection: latency, error rates, a rate limit with Retry-After, dropped connections.

Set with `POST /_sandbox/faults` or the CLI flags of the same names. `only` narrows every
fault to calls whose label (e.g. "POST /users") starts with one of its entries.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DROP_PHASES = ("before", "after", "random")


@dataclass
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    rate_limit: float = 0.0  # requests per second over all matching calls; 0 is off
    retry_after_s: int | None = None  # None: the seconds left in the current window
    drop_rate: float = 0.0
    drop_phase: str = "random"  # before: nothing done; after: done, answer lost
    token_lifetime_s: float = 900.0
    only: list[str] = field(default_factory=list)
    _window: int = field(default=0, repr=False)
    _window_count: int = field(default=0, repr=False)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if not f.name.startswith("_")]

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Apply known keys; return the unknown or invalid ones."""
        bad: list[str] = []
        for key, value in changes.items():
            if key not in self.field_names():
                bad.append(key)
                continue
            current = getattr(self, key)
            try:
                if key == "only":
                    value = [str(v) for v in (value or [])]
                elif key == "drop_phase":
                    if value not in DROP_PHASES:
                        raise ValueError(value)
                elif key == "retry_after_s":
                    value = None if value is None else int(value)
                elif key == "error_status":
                    value = int(value)
                    if not 400 <= value <= 599:
                        raise ValueError(value)
                elif isinstance(current, float):
                    value = float(value)
                    if value < 0 or (key.endswith("_rate") and value > 1):
                        raise ValueError(value)
            except (TypeError, ValueError):
                bad.append(key)
                continue
            setattr(self, key, value)
        return bad

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def applies(self, label: str) -> bool:
        return not self.only or any(label.startswith(prefix) for prefix in self.only)

    def delay_s(self) -> float:
        if not self.latency_ms and not self.jitter_ms:
            return 0.0
        return (self.latency_ms + random.uniform(0, self.jitter_ms)) / 1000.0

    def rate_limited(self) -> int | None:
        """Seconds to put in Retry-After when this call is over the limit, else None."""
        if self.rate_limit <= 0:
            return None
        now = time.monotonic()
        window = int(now)
        if window != self._window:
            self._window, self._window_count = window, 0
        self._window_count += 1
        if self._window_count <= self.rate_limit:
            return None
        if self.retry_after_s is not None:
            return self.retry_after_s
        return max(1, math.ceil(window + 1 - now))

    def error(self) -> int | None:
        if self.error_rate and random.random() < self.error_rate:
            return self.error_status
        return None

    def drop(self) -> str | None:
        """'before' or 'after' when this call's connection is to be dropped."""
        if not self.drop_rate or random.random() >= self.drop_rate:
            return None
        if self.drop_phase == "random":
            return random.choice(("before", "after"))
        return self.drop_phase
