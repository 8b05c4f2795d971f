"""SQL helpers every outbox module shares."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
# Keeps IN lists well under every driver's limit on bound parameters.
CHUNK = 500


def chunks(values: Iterable[T]) -> Iterator[list[T]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
