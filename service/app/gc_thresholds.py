"""The garbage collector, set for a long-running service process.

CPython's cyclic collector runs its youngest generation every 700 allocations (net of
frees) by default, and an older one every 10 of those. The service allocates many
short-lived objects per event (records, envelopes, rows, requests), and each collection
walks every young object. With the youngest generation collected every 20,000
allocations and the older ones less often, the service's CPU per event fell by a fifth
and its events/s rose by a fifth (`bench/e2e.py --events 8000`, PostgreSQL, two pairs back to back:
1.52, 1.41 → 1.10, 1.19 ms per event at 0 ms API latency; 1.97, 1.89 → 1.50, 1.74 at
50 ms). Cycles are still collected, a little later. A calendar feed's parse pauses the
collector altogether while it runs (connectors/calendar/collector.py): with a large
heap, the full collections a parse set off were a fifth of it even at these thresholds.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 50, 100)


def tune() -> None:
    """Set the collector's thresholds for the rest of the process's life."""
    gc.set_threshold(*THRESHOLDS)
