"""The work queue every reconcile takes: one run per key at a time, retries with backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any

import pytest

from kubellm_operator.controller.workqueue import Backoff, WorkQueue

FAST = Backoff(base_s=0.001, cap_s=0.01)


DEADLINE_S = 5.0


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll with a deadline (no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


class Recorder:
    """Work that records each run; scripted results per key (default: done)."""

    def __init__(self) -> None:
        self.runs: list[tuple[Hashable, Any]] = []
        self.results: dict[Hashable, list[bool | float | Exception]] = {}
        self.gate: asyncio.Event | None = None
        self.concurrent = 0
        self.most_concurrent: dict[Hashable, int] = {}
        self._active: dict[Hashable, int] = {}

    async def __call__(self, key: Hashable, hint: Any) -> bool | float:
        self.runs.append((key, hint))
        self._active[key] = self._active.get(key, 0) + 1
        self.most_concurrent[key] = max(self.most_concurrent.get(key, 0), self._active[key])
        try:
            if self.gate is not None:
                await self.gate.wait()
            queued = self.results.get(key)
            result = queued.pop(0) if queued else True
            if isinstance(result, Exception):
                raise result
            return result
        finally:
            self._active[key] -= 1


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Recorder], Awaitable[WorkQueue]]]:
    tasks: list[asyncio.Task[None]] = []

    async def start(work: Recorder) -> WorkQueue:
        queue = WorkQueue(work, workers=3, backoff=FAST)
        tasks.append(asyncio.create_task(queue.run()))
        return queue

    yield start
    for task in tasks:
        task.cancel()


async def test_a_failed_run_is_retried_until_it_succeeds(running: Any) -> None:
    work = Recorder()
    work.results["a"] = [False, RuntimeError("boom"), False, True]
    queue = await running(work)
    queue.add("a", "hint")
    await until(lambda: len(work.runs) == 4 and queue.failures("a") == 0, "four runs")
    assert [k for k, _ in work.runs] == ["a"] * 4
    assert work.runs[0] == ("a", "hint")  # the hint goes with the first run only


async def test_adds_while_waiting_collapse_into_one_run_with_the_latest_hint(
    running: Any,
) -> None:
    work = Recorder()
    queue = WorkQueue(work, workers=1, backoff=FAST)
    for hint in ("v1", "v2", "v3"):
        queue.add("a", hint)
    assert len(queue) == 1
    task = asyncio.create_task(queue.run())
    try:
        await until(lambda: len(work.runs) == 1, "one run")
        await until(lambda: len(queue) == 0, "the queue to drain")
        assert work.runs == [("a", "v3")]
    finally:
        task.cancel()


async def test_a_key_added_while_it_runs_runs_again_after_never_beside_itself(
    running: Any,
) -> None:
    work = Recorder()
    work.gate = asyncio.Event()
    queue = await running(work)
    queue.add("a")
    await until(lambda: len(work.runs) == 1, "the first run to start")
    queue.add("a", "newer")
    queue.add("b")
    await until(lambda: any(k == "b" for k, _ in work.runs), "b to start beside a")
    work.gate.set()
    await until(lambda: len(work.runs) == 3, "a to run again")
    assert work.runs[-1] == ("a", "newer")
    assert work.most_concurrent["a"] == 1


async def test_an_add_during_backoff_runs_at_once() -> None:
    work = Recorder()
    work.results["a"] = [False]
    queue = WorkQueue(work, workers=1, backoff=Backoff(base_s=3600, cap_s=3600))
    task = asyncio.create_task(queue.run())
    try:
        queue.add("a")
        await until(lambda: queue.failures("a") == 1, "the failure")
        queue.add("a")  # an event arrives: no need to wait an hour
        await until(lambda: len(work.runs) == 2 and queue.failures("a") == 0, "the rerun")
    finally:
        task.cancel()


def test_backoff_doubles_and_is_capped() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]


async def test_a_forgotten_key_does_not_run() -> None:
    work = Recorder()
    queue = WorkQueue(work, workers=1, backoff=FAST)
    queue.add("gone", "body")
    queue.forget("gone")
    queue.add("kept")
    task = asyncio.create_task(queue.run())
    try:
        await until(lambda: len(work.runs) == 1, "one run")
        await until(lambda: len(queue) == 0, "the queue to drain")
        assert work.runs == [("kept", None)]
    finally:
        task.cancel()


async def test_a_run_that_asks_to_be_run_again_is_rerun_without_counting_a_failure() -> None:
    work = Recorder()
    work.results["a"] = [0.001, 0.001, True]
    queue = WorkQueue(work, workers=1, backoff=Backoff(base_s=3600, cap_s=3600))
    task = asyncio.create_task(queue.run())
    try:
        queue.add("a")
        await until(lambda: len(work.runs) == 3, "three runs")
        assert queue.failures("a") == 0
    finally:
        task.cancel()
