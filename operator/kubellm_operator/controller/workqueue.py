"""A keyed work queue with retries: the one path every reconcile takes.

Kopf never retries event handlers, so work done inside one is lost when an API call fails.
Handlers therefore only add keys here. The queue runs each key at most once at a time (a key
added while it runs is run again right after), collapses repeated adds into one run, and
retries a failed run with exponential backoff until it succeeds; an add during the backoff
runs it at once. It holds one entry per key, so it is bounded by the objects watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Delay before the n-th retry: base, 2 base, 4 base... capped."""

    base_s: float = 0.5
    cap_s: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** max(0, failures - 1)))


Work = Callable[[Hashable, Any], Awaitable[bool | float]]
"""Runs one key with the latest hint added for it: True when done, False (or an exception)
to retry with backoff, a number of seconds to run it again after that long (not a failure)."""


class WorkQueue:
    """Due times per key, a heap to find the next one, and workers that run them."""

    def __init__(
        self,
        work: Work,
        *,
        workers: int = 4,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._work = work
        self._on_wait = on_wait
        self._added: dict[Hashable, float] = {}
        self._workers = workers
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._due: dict[Hashable, float] = {}
        self._hints: dict[Hashable, Any] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._seq = itertools.count()
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._wake = asyncio.Event()

    def add(self, key: Hashable, hint: Any = None, *, after_s: float = 0.0) -> None:
        """Run ``key`` (no later than ``after_s`` from now); the latest hint is the one used."""
        if hint is not None:
            self._hints[key] = hint
        self._added.setdefault(key, self._clock() + after_s)
        if key in self._running:
            self._again.add(key)
            return
        due = self._clock() + after_s
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))
        if len(self._heap) > 2 * len(self._due) + 64:  # drop superseded entries
            self._heap = [(d, s, k) for d, s, k in self._heap if self._due.get(k) == d]
            heapq.heapify(self._heap)
        self._wake.set()

    def forget(self, key: Hashable) -> None:
        """The object is gone: drop its pending run, hint and failure count."""
        self._due.pop(key, None)
        self._added.pop(key, None)
        self._hints.pop(key, None)
        self._failures.pop(key, None)
        self._again.discard(key)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def __len__(self) -> int:
        return len(self._due)

    async def run(self) -> None:
        """The workers; runs until cancelled."""
        await asyncio.gather(*(self._worker() for _ in range(self._workers)))

    async def _next(self) -> Hashable:
        while True:
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # superseded or forgotten
            now = self._clock()
            if self._heap and self._heap[0][0] <= now:
                _, _, key = heapq.heappop(self._heap)
                del self._due[key]
                return key
            timeout = self._heap[0][0] - now if self._heap else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _worker(self) -> None:
        while True:
            key = await self._next()
            added = self._added.pop(key, None)
            if self._on_wait is not None and added is not None:
                self._on_wait(max(0.0, self._clock() - added))
            self._running.add(key)
            try:
                done = await self._work(key, self._hints.pop(key, None))
            # The queue must outlive any one bad run: an unexpected error is logged and the
            # key retried like any failure, instead of stopping every reconcile.
            except Exception:
                logger.exception("reconcile of %s failed unexpectedly", key)
                done = False
            finally:
                self._running.discard(key)
            if done is True:
                self._failures.pop(key, None)
            elif done is not False:
                self._failures.pop(key, None)
                self.add(key, after_s=float(done))
            else:
                self._failures[key] = self._failures.get(key, 0) + 1
                self.add(key, after_s=self._backoff.delay(self._failures[key]))
            if key in self._again:
                self._again.discard(key)
                self.add(key)
