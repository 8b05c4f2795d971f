"""Group commit: outcomes that finish together are recorded in one transaction.

A worker hands its outcome to the recorder and waits for the commit (its entity's next
command may not be claimed before it). While one batch is being written, the next one
gathers; so under load a transaction carries many outcomes, and when idle one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from connectors.ucaas import CallRecord
from service.outbox.claims import Claim
from service.outbox.outcome_writer import Finished
from service.outbox.outcomes import Outcome
from service.outbox.ports import OutcomeStore

log = logging.getLogger("ucaas_sync.dispatcher")


class Recorder:
    def __init__(self, store: OutcomeStore, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: list[tuple[Finished, asyncio.Future[bool]]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def record(self, claim: Claim, outcome: Outcome, calls: Sequence[CallRecord]) -> bool:
        """True once committed; False when the lease was lost; raises if the write failed."""
        if self._task is None or self._task.done():
            [recorded] = await self.store.finish_many([(claim, outcome, calls)])
            return recorded
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(((claim, outcome, calls), future))
        self._ready.set()
        return await future

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outcome-recorder")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        while self._queue:
            await self._flush()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                await self._flush()

    async def _flush(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        try:
            answers = await self.store.finish_many([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)
