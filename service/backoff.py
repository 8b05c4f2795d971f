"""How long to wait before the next attempt: one small pure function, for every retry.

The ceiling doubles per failed attempt from `base_s` up to `cap_s`; the wait is drawn
below it by `jitter`:

- "full" (the default): uniform in [0, ceiling] (AWS architecture blog, "Exponential
  Backoff And Jitter"), for many clients retrying one server: commands, say;
- "half": uniform in [ceiling/2, ceiling], still spread but never much sooner: feeds;
- "none": the ceiling itself, for one waiter alone: a reconnect, a paused batch, a probe.

Never less than the server's Retry-After. `rand` is injected so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

Jitter = Literal["none", "half", "full"]


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    jitter: Jitter = "full",
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
    # The exponent is clamped: 2.0 ** 1024 raises OverflowError, and far before that the
    # cap has won anyway (a product past the float range is inf, which min() handles).
    ceiling: float = min(cap_s, base_s * 2.0 ** min(max(0, attempt - 1), 1000))
    if jitter == "full":
        delay = ceiling * rand()
    elif jitter == "half":
        delay = ceiling * (0.5 + rand() / 2)
    else:
        delay = ceiling
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay
