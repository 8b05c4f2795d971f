"""A service process sets the garbage collector's thresholds for a long run (gc_thresholds.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from service.app import bootstrap as bootstrap_module
from service.app import gc_thresholds
from service.app import runner as runner_module
from service.app.runner import Parts
from service.cli import main


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_service_sets_the_collectors_thresholds_once_started(
    thresholds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    seen: list[tuple[int, int, int]] = []

    async def bootstrap() -> object:
        seen.append(gc.get_threshold())  # not yet while the service is wired
        return object()

    async def serve(service: Any, parts: Parts, stop: asyncio.Event) -> None:
        seen.append(gc.get_threshold())

    monkeypatch.setattr(bootstrap_module, "bootstrap", bootstrap)
    monkeypatch.setattr(runner_module, "serve", serve)
    asyncio.run(main._serve(Parts()))
    assert seen == [(700, 10, 10), gc_thresholds.THRESHOLDS]
    assert gc_thresholds.THRESHOLDS[0] > 700  # collected less often than by default
