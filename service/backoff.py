"""How long to wait before the next attempt: one small pure function.

Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): uniform in [0, min(cap, base * 2**(attempt-1))], never less than the server's
Retry-After. `rand` is injected so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
    # The exponent is clamped: 2.0 ** 1024 raises OverflowError, and far before that the
    # cap has won anyway (a product past the float range is inf, which min() handles).
    ceiling: float = min(cap_s, base_s * 2.0 ** min(max(0, attempt - 1), 1000))
    delay = ceiling * rand()
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay
