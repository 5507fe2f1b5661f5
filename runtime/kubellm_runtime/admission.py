"""Backpressure: a bounded number of admitted requests per replica; beyond it, 429 at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kubellm_runtime.openai.service import ApiError


class Admission:
    """Counts admitted requests (single event loop: no lock needed)."""

    def __init__(self, limit: int, retry_after_s: int) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.inflight = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.inflight >= self.limit:
            raise ApiError(
                429,
                f"this replica is at capacity ({self.limit} requests in flight); retry shortly",
                type="rate_limit_exceeded",
                code="overloaded",
            )
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1
