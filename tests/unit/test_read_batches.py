"""ReadBatcher: the keys asked for in one turn of the event loop are loaded together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from service.outbox.read_batches import ReadBatcher


class Table:
    def __init__(self, rows: dict[str, int]) -> None:
        self.rows = rows
        self.loads: list[list[str]] = []
        self.fail: Exception | None = None
        self.pause = 0.0

    async def load(self, keys: Sequence[str]) -> dict[str, int]:
        self.loads.append(list(keys))
        found = {k: self.rows[k] for k in keys if k in self.rows}  # read, then the answer's trip
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.fail is not None:
            raise self.fail
        return found


async def test_reads_of_one_moment_are_one_load_and_each_gets_its_own_answer() -> None:
    table = Table({"a": 1, "b": 2, "c": 3})
    batcher = ReadBatcher(table.load)
    answers = await asyncio.gather(*(batcher.get(k) for k in ["a", "b", "x", "a", "c"]))
    assert answers == [1, 2, None, 1, 3]
    assert table.loads == [["a", "b", "x", "c"]]  # a key asked twice is read once
    assert batcher.batches == 1


async def test_a_read_after_a_batch_left_sees_the_database_anew() -> None:
    table = Table({"a": 1})
    batcher = ReadBatcher(table.load)
    table.pause = 0.05
    first = asyncio.create_task(batcher.get("a"))
    await asyncio.sleep(0.01)  # the first batch is out, not answered yet
    table.rows["a"] = 2
    second = await batcher.get("a")
    assert (await first, second) == (1, 2)
    assert table.loads == [["a"], ["a"]]


async def test_a_failed_load_fails_every_read_of_its_batch_and_not_the_next() -> None:
    table = Table({"a": 1})
    batcher = ReadBatcher(table.load)
    table.fail = ConnectionError("database away")
    results = await asyncio.gather(batcher.get("a"), batcher.get("b"), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    table.fail = None
    assert await batcher.get("a") == 1


async def test_one_reader_cancelled_leaves_the_others_their_answer() -> None:
    table = Table({"a": 1, "b": 2})
    table.pause = 0.05
    batcher = ReadBatcher(table.load)
    cancelled = asyncio.create_task(batcher.get("a"))
    kept = asyncio.create_task(batcher.get("a"))
    other = asyncio.create_task(batcher.get("b"))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert (await kept, await other) == (1, 2)


async def test_a_full_batch_leaves_at_once() -> None:
    table = Table({str(n): n for n in range(10)})
    batcher = ReadBatcher(table.load, max_keys=4)
    answers = await asyncio.gather(*(batcher.get(str(n)) for n in range(10)))
    assert answers == list(range(10))
    assert [len(keys) for keys in table.loads] == [4, 4, 2]
