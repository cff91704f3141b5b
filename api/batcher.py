"""Dynamic micro-batching of triage requests, with a bound on the work in flight.

Concurrent calls to ``POST /v1/triage`` and ``/v1/triage/batch`` do not each run the model on
their own: :class:`MicroBatcher` gathers what arrives within ``window`` seconds of the first
waiting request (or until ``max_batch`` texts are gathered) into one call of the processing
function — one encode, one pass of the heads, one transaction for the records — and answers
each caller with its own slice. A lone request waits at most ``window``. While a batch is being
computed (in one worker thread: the encoder's cores are shared anyway) the next one gathers, so
under load batches grow by themselves and a quiet service adds only the window.

The work in flight is bounded: when accepting a request would take the texts queued or being
computed past ``max_in_flight``, it is refused at once with ``SERVICE_OVERLOADED`` (503 and a
``Retry-After`` header) instead of waiting in a queue without end. A request whose client has
gone (the route cancels its future) is dropped from its batch if that batch has not started.

The batcher is started and stopped in the app's lifespan (``app.state.batcher``).
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from api.errors import ApiError

log = logging.getLogger(__name__)

# process(items) -> one result per item, in order; runs in the worker thread
Process = Callable[[list[Any]], list[Any]]


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.items)


class MicroBatcher:
    """``await batcher.submit(items)`` → the results for ``items`` (in order), computed together
    with whatever else arrived within the window."""

    def __init__(self, process: Process, window: float = 0.005, max_batch: int = 64,
                 max_in_flight: int = 256, retry_after: int = 1) -> None:
        self.process = process
        self.window = max(window, 0.0)
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.in_flight = 0                     # texts accepted and not yet answered
        self.batches = 0                       # batches computed (for tests and metrics)
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._held: _Job | None = None         # a job that did not fit the last batch

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "MicroBatcher":
        self._queue = asyncio.Queue()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="triage-batch")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for job in self._drain():
            if not job.future.done():
                job.future.set_exception(ApiError("MODEL_NOT_READY", "the service is shutting down; retry shortly"))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._task = self._pool = self._queue = None

    # ------------------------------------------------------------------ callers
    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """The results for ``items``. Raises ``SERVICE_OVERLOADED`` when the bound is reached;
        a cancelled caller's job is dropped if its batch has not started."""
        if self._queue is None:
            raise ApiError("MODEL_NOT_READY", "the service is still starting; retry shortly")
        n = len(items)
        if self.in_flight + n > self.max_in_flight and self.in_flight > 0:
            raise ApiError("SERVICE_OVERLOADED",
                           f"{self.in_flight} texts are already being triaged (limit {self.max_in_flight}); "
                           f"retry in {self.retry_after} s", headers={"Retry-After": str(self.retry_after)})
        job = _Job(list(items), asyncio.get_running_loop().create_future())
        self.in_flight += n
        try:
            self._queue.put_nowait(job)
            return await job.future
        finally:
            self.in_flight -= n

    # ------------------------------------------------------------------ the worker
    def _drain(self) -> list[_Job]:
        jobs = [self._held] if self._held is not None else []
        self._held = None
        while self._queue is not None and not self._queue.empty():
            jobs.append(self._queue.get_nowait())
        return jobs

    async def _gather(self) -> list[_Job]:
        """The next batch: the first waiting job, then whatever arrives within the window, up to
        ``max_batch`` texts (a job is never split; one larger than that runs alone)."""
        assert self._queue is not None
        first = self._held or await self._queue.get()
        self._held = None
        batch, size = [first], first.size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            if size + job.size > self.max_batch:
                self._held = job
                break
            batch.append(job)
            size += job.size
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [job for job in await self._gather() if not job.future.done()]   # callers gone: dropped
            if not batch:
                continue
            items = [it for job in batch for it in job.items]
            try:
                results = await loop.run_in_executor(self._pool, self._compute, items)
            except Exception as exc:  # noqa: BLE001 - one caller's failure must not fail the others
                if len(batch) == 1:
                    batch[0].future.done() or batch[0].future.set_exception(exc)
                    continue
                for job in batch:                      # each job again on its own
                    try:
                        alone = await loop.run_in_executor(self._pool, self._compute, job.items)
                    except Exception as exc_one:  # noqa: BLE001
                        job.future.done() or job.future.set_exception(exc_one)
                    else:
                        job.future.done() or job.future.set_result(alone)
                continue
            self.batches += 1
            start = 0
            for job in batch:
                if not job.future.done():
                    job.future.set_result(results[start:start + job.size])
                start += job.size

    def _compute(self, items: list[Any]) -> list[Any]:
        results = self.process(items)
        if len(results) != len(items):
            raise RuntimeError(f"the batch function returned {len(results)} results for {len(items)} items")
        return results

