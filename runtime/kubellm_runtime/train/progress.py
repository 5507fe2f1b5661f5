"""Training progress as the FineTuneJob's ``status.progress``, written at a bounded rate.

The trainer's rank-0 worker reports after every optimizer step; a :class:`Reporter` turns
that into at most one write per interval (the first step, an evaluation and the end are
always written) through a :class:`Sink`: the Kubernetes API in a cluster, the log elsewhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Where the run is, as the trainer knows it."""

    step: int
    total_steps: int
    epoch: float
    loss: float | None
    eval_loss: float | None
    trained_tokens: int
    """Tokens trained on over the whole run (all workers, every epoch)."""
    tokens_this_attempt: int
    elapsed_s: float
    """Seconds of training in this attempt."""
    steps_this_attempt: int
    """Steps done since this attempt started (a resumed run starts at a checkpoint)."""
    resumed_from_step: int = 0
    """The checkpoint's step this attempt started from (0: from the beginning)."""


def progress(snapshot: Snapshot, now: datetime) -> dict[str, Any]:
    """``status.progress`` of a snapshot (camelCase, as the CRD has it)."""
    s = snapshot
    fields: dict[str, Any] = {
        "step": s.step,
        "totalSteps": s.total_steps,
        "epoch": round(s.epoch, 3),
        "trainedTokens": s.trained_tokens,
        "percent": min(100, math.floor(100 * s.step / s.total_steps)) if s.total_steps else 0,
        "updatedAt": _rfc3339(now),
    }
    if s.loss is not None and math.isfinite(s.loss):
        fields["loss"] = round(s.loss, 4)
    if s.eval_loss is not None and math.isfinite(s.eval_loss):
        fields["evalLoss"] = round(s.eval_loss, 4)
    if s.resumed_from_step:
        fields["resumedFromStep"] = s.resumed_from_step
    if s.elapsed_s > 0:
        fields["tokensPerSecond"] = round(s.tokens_this_attempt / s.elapsed_s, 1)
    if s.elapsed_s > 0 and s.steps_this_attempt > 0:
        left = (s.total_steps - s.step) * s.elapsed_s / s.steps_this_attempt
        fields["eta"] = duration(left)
        fields["estimatedFinish"] = _rfc3339(now + timedelta(seconds=left))
    return fields


def duration(seconds: float) -> str:
    """Like Kubernetes' short durations: 45s, 3m20s, 2h5m, 3d4h."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Sink(Protocol):
    """Where status patches go."""

    def write(self, status: dict[str, Any]) -> None: ...


class LogSink:
    """Progress in the log only (runs outside a cluster, benchmarks)."""

    def write(self, status: dict[str, Any]) -> None:
        log.info("training status", **status)


class Reporter:
    """Rate-limited progress writes; a failed write is logged and the run goes on."""

    def __init__(
        self,
        sink: Sink,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sink = sink
        self.interval_s = interval_s
        self._clock = clock
        self._wall = wall
        self._last: float | None = None
        self.writes = 0

    def report(self, snapshot: Snapshot, *, force: bool = False) -> bool:
        """Write the snapshot if the interval has passed (or ``force``); True if written."""
        now = self._clock()
        if not force and self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return self.write({"progress": progress(snapshot, self._wall())})

    def write(self, status: dict[str, Any]) -> bool:
        try:
            self.sink.write(status)
        except Exception as exc:  # progress must never stop training
            log.warning("status write failed", error=str(exc))
            return False
        self.writes += 1
        return True
