"""Idempotency by client job_id: one generation per id, shared by concurrent duplicates."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable


class JobStore:
    """Results (and in-flight generations) by job_id; the oldest finished entries go first."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._jobs: OrderedDict[str, asyncio.Future[str]] = OrderedDict()
        self.generations = 0  # how many times work actually ran

    async def run_once(self, job_id: str, work: Callable[[], Awaitable[str]]) -> str:
        existing = self._jobs.get(job_id)
        if existing is not None:
            return await asyncio.shield(existing)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._jobs[job_id] = future
        self.generations += 1
        try:
            result = await work()
        except BaseException as exc:
            # A failed or cancelled job is not remembered: the client may retry it.
            del self._jobs[job_id]
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # marked retrieved; duplicates still get it when they await
            raise
        future.set_result(result)
        self._evict()
        return result

    def _evict(self) -> None:
        while len(self._jobs) > self.capacity:
            oldest, future = next(iter(self._jobs.items()))
            if not future.done():
                break
            del self._jobs[oldest]
