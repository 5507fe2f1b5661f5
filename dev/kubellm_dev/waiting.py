"""Polling with a deadline: how tests and the harness wait, instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    observe: Callable[[], T],
    accept: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> T:
    """Call ``observe`` until ``accept`` holds for its result; on timeout fail with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        last = observe()
        if accept(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}"
            )
        time.sleep(interval)
