"""A batch PostgreSQL rolled back as deadlocked (two batches written at once) is written
again; any other database error is the caller's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from service.outbox.outcome_writer import Finished, OutcomeWriter


class Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def writer(failures: list[str]) -> tuple[OutcomeWriter, list[int]]:
    engine: Any = type("Engine", (), {"dialect": type("D", (), {"name": "postgresql"})()})()
    w = OutcomeWriter(engine, None, remember=lambda _: None)
    tries: list[int] = []

    async def once(items: Sequence[Finished]) -> list[bool]:
        tries.append(len(items))
        if failures:
            raise sa.exc.DBAPIError("UPDATE outbox ...", {}, Orig(failures.pop(0)))
        return [True] * len(items)

    w._finish_many = once  # type: ignore[method-assign]
    return w, tries


async def test_a_deadlocked_batch_is_written_again() -> None:
    w, tries = writer(["40P01", "40001"])
    assert await w.finish_many([]) == []
    assert len(tries) == 3


async def test_a_deadlock_every_time_gives_up_after_three_tries() -> None:
    w, tries = writer(["40P01"] * 5)
    with pytest.raises(sa.exc.DBAPIError):
        await w.finish_many([])
    assert len(tries) == 3


async def test_other_database_errors_are_not_repeated() -> None:
    w, tries = writer(["23505"])  # unique violation: a bug, not a race
    with pytest.raises(sa.exc.DBAPIError):
        await w.finish_many([])
    assert len(tries) == 1
