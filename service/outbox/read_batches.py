"""Reads that arrive together go to the database together (the DataLoader pattern).

A claim starts dozens of commands at once, and each begins by reading an id mapping: one
statement per read cost more CPU than the command's UCaaS call (a connection checked
out, a statement run, a row converted: ~1 ms of the dispatcher's CPU each on PostgreSQL).
A `ReadBatcher` gathers the keys asked for during one turn of the event loop and loads
them with one statement at the start of the next; each caller gets its own answer. A
read is never answered from an earlier batch: every one sees the database as it is after
it was asked, as a read of its own would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Loader = Callable[[Sequence[K]], Awaitable[dict[K, V]]]


class ReadBatcher(Generic[K, V]):
    def __init__(self, load: Loader[K, V], *, max_keys: int = 500) -> None:
        self._load = load
        self.max_keys = max_keys  # a driver's bound-parameter limit stays far away
        self._waiting: dict[K, asyncio.Future[V | None]] = {}
        self.batches = 0  # statements run: what the benchmarks and tests read
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until they end

    async def get(self, key: K) -> V | None:
        """The value of `key` (None when there is none), loaded with the other keys asked
        for in this turn of the event loop."""
        future = self._waiting.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            if not self._waiting:
                loop.call_soon(self._flush)
            future = loop.create_future()
            self._waiting[key] = future
            if len(self._waiting) >= self.max_keys:
                self._flush()
        # shielded: one caller cancelled (a shutdown) must not fail the others' read
        return await asyncio.shield(future)

    def _flush(self) -> None:
        if not self._waiting:
            return
        batch, self._waiting = self._waiting, {}
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, batch: dict[K, asyncio.Future[V | None]]) -> None:
        self.batches += 1
        try:
            found = await self._load(list(batch))
        except BaseException as exc:  # every caller gets the failure, as its own read would
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, future in batch.items():
            if not future.done():
                future.set_result(found.get(key))
