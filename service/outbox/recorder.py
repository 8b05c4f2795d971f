"""Group commit: outcomes that finish together are recorded in one transaction.

A worker hands its outcome to the recorder and waits for the commit (its entity's next
command may not be claimed before it). While a batch is being written, the next one
gathers; so under load a transaction carries many outcomes, and when idle one. The store
says how many batches may be written at once (`commits_at_once`): on PostgreSQL two, as
one batch at a time capped the dispatcher at about 650 commands a second
(bench/e2e.py: a batch of ~40 outcomes is ~60 ms of round trips on a busy machine).
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
        self._writing: set[asyncio.Task[None]] = set()
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
        await asyncio.gather(*self._writing, return_exceptions=True)
        while self._queue:
            await self._flush(self._take())

    async def _run(self) -> None:
        at_once = max(1, self.store.commits_at_once)
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                if len(self._writing) >= at_once:
                    await asyncio.wait(self._writing, return_when=asyncio.FIRST_COMPLETED)
                    continue
                task = asyncio.create_task(self._flush(self._take()))
                self._writing.add(task)
                task.add_done_callback(self._writing.discard)
                await asyncio.sleep(0)  # let more outcomes gather for the next batch

    def _take(self) -> list[tuple[Finished, asyncio.Future[bool]]]:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        return batch

    async def _flush(self, batch: list[tuple[Finished, asyncio.Future[bool]]]) -> None:
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
