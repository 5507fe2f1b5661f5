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

    def acquire(self, slots: int = 1) -> None:
        """``slots``: a batch takes one per prompt, all or none."""
        if slots > self.limit:
            raise ApiError(
                400,
                f"prompt: at most {self.limit} prompts in one request on this replica",
                param="prompt",
            )
        if self.inflight + slots > self.limit:
            raise ApiError(
                429,
                f"this replica is at capacity ({self.limit} requests in flight); retry shortly",
                type="rate_limit_exceeded",
                code="overloaded",
            )
        self.inflight += slots

    def release(self, slots: int = 1) -> None:
        self.inflight -= slots

    @contextmanager
    def admit(self, slots: int = 1) -> Iterator[None]:
        self.acquire(slots)
        try:
            yield
        finally:
            self.release(slots)
