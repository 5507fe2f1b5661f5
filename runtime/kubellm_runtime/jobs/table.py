"""The job table: one entry per job_id, bounded by count, bytes and age (pure, clock injected).

An entry is *pending* while one caller generates it (held for a lease: an owner that dies
does not block the id forever) and *done* once its result is stored (kept for the TTL). Done
entries leave oldest first when the count or the bytes pass their bound; pending ones are
bounded by admission (each holds a generation slot) and never stall eviction.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pending:
    """Another caller is generating this job_id."""

    route: str
    fingerprint: str


@dataclass(frozen=True)
class Done:
    """The stored result of this job_id."""

    route: str
    fingerprint: str
    result: str


Held = Pending | Done


@dataclass
class _Entry:
    held: Held
    expires: float


class JobTable:
    """Claim, finish, release and peek job entries; what another caller holds is returned."""

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._pending: dict[str, _Entry] = {}
        self._done: OrderedDict[str, _Entry] = OrderedDict()  # finish order = expiry order
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._pending) + len(self._done)

    def peek(self, job_id: str) -> Held | None:
        now = self._clock()
        self._expire(now)
        entry = self._pending.get(job_id) or self._done.get(job_id)
        if entry is None:
            return None
        if entry.expires <= now:  # a pending lease ran out: its owner is presumed gone
            self._pending.pop(job_id, None)
            return None
        return entry.held

    def claim(self, job_id: str, route: str, fingerprint: str, lease_s: float) -> Held | None:
        """None: the caller now owns the job and must finish or release it. Otherwise what
        is already held under this id (the caller compares fingerprints)."""
        held = self.peek(job_id)
        if held is not None:
            return held
        now = self._clock()
        if len(self._pending) >= self.max_entries:  # owners that died without a release
            self._pending = {k: e for k, e in self._pending.items() if e.expires > now}
        self._pending[job_id] = _Entry(Pending(route, fingerprint), now + lease_s)
        return None

    def finish(self, job_id: str, fingerprint: str, result: str) -> bool:
        """Store the owner's result; False if the lease was lost (or the result is too big
        to keep: the caller still answers it, a later duplicate generates again)."""
        entry = self._pending.get(job_id)
        if entry is None or entry.held.fingerprint != fingerprint:
            return False
        del self._pending[job_id]
        size = len(result.encode())
        if size > self.max_bytes:
            return False
        now = self._clock()
        self._done[job_id] = _Entry(Done(entry.held.route, fingerprint, result), now + self.ttl_s)
        self.bytes += size
        self._expire(now)
        while len(self._done) > self.max_entries or self.bytes > self.max_bytes:
            self._drop_oldest()
        return True

    def release(self, job_id: str, fingerprint: str) -> None:
        """The owner failed: the id is free again (the client may retry it)."""
        entry = self._pending.get(job_id)
        if entry is not None and entry.held.fingerprint == fingerprint:
            del self._pending[job_id]

    def _expire(self, now: float) -> None:
        while self._done and next(iter(self._done.values())).expires <= now:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, entry = self._done.popitem(last=False)
        assert isinstance(entry.held, Done)
        self.bytes -= len(entry.held.result.encode())
