"""Backpressure: a bounded number of admitted requests per replica; beyond it, 429 at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kubellm_runtime.openai.errors import ApiError


class Admission:
    """Counts admitted requests (single event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0

    def acquire(self) -> None:
        if self.inflight >= self.limit:
            raise ApiError(
                429,
                f"this replica is at capacity ({self.limit} requests in flight); retry shortly",
                type="rate_limit_exceeded",
                code="overloaded",
            )
        self.inflight += 1

    def release(self) -> None:
        self.inflight -= 1

    @contextmanager
    def admit(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
