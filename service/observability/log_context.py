"""What every log line of a command, an event or a feed poll names (its ids), kept in one
context variable.

structlog's `bound_contextvars` keeps one context variable per key: binding three keys
for each of thousands of commands a second was 2% of the dispatcher's CPU
(`bench/e2e.py --py-spy`). Here a binding is one `ContextVar.set` of a small dict, and
`merge_log_context` (a processor in the chain of service/observability/logs.py) adds it
to the lines logged inside.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from structlog.typing import EventDict, WrappedLogger

_BOUND: ContextVar[Mapping[str, Any]] = ContextVar(
    "ucaas_sync_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Lines logged inside name these values too (inner bindings win)."""
    token = _BOUND.set({**_BOUND.get(), **values})
    try:
        yield
    finally:
        _BOUND.reset(token)


def merge_log_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in _BOUND.get().items():
        event_dict.setdefault(key, value)
    return event_dict
