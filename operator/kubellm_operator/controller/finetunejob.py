"""One reconcile of one FineTuneJob, as its work queue runs it: read, sync, write, report.

Returns whether it is done; False makes the queue retry with backoff, a number runs it again
that many seconds later (a finished job's TTL). The trainer's own status
writes (progress) arrive as events too: they cost a reconcile that writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubellm_operator import metrics, names
from kubellm_operator.api.refs import Key, ObjectRef
from kubellm_operator.config import OperatorConfig
from kubellm_operator.controller.runner import PostEvent, now, trimmed
from kubellm_operator.errors import KubeError
from kubellm_operator.service.finetunejob import status_patch, sync
from kubellm_operator.service.ports import FineTuneJobCluster
from kubellm_operator.status.patch import changed

logger = logging.getLogger(__name__)
KIND = names.FINETUNEJOB_KIND
WARNING_PHASES = frozenset({"Failed"})


@dataclass
class Reconciler:
    cluster: FineTuneJobCluster
    config: OperatorConfig
    post_event: PostEvent
    clock: Callable[[], str] = now
    bodies: dict[Key, dict[str, Any]] = field(default_factory=dict)
    """The latest body of each job from its watch: a RayJob's event needs no GET."""
    phases: metrics.PhaseTracker = field(default_factory=lambda: metrics.PhaseTracker(KIND))
    series: metrics.ObjectSeries = field(default_factory=metrics.ObjectSeries)

    def remember(self, key: Key, body: Mapping[str, Any]) -> None:
        self.bodies[key] = trimmed(body)

    def forget(self, key: Key) -> None:
        self.bodies.pop(key, None)
        self.phases.set(f"{key[0]}/{key[1]}", None)
        self.series.set(f"{key[0]}/{key[1]}", [])

    def __call__(self, key: Key, body: Mapping[str, Any] | None = None) -> bool | float:
        namespace, name = key
        try:
            job = body or self.bodies.get(key) or self.cluster.get_finetunejob(namespace, name)
        except KubeError as exc:
            logger.warning("reading FineTuneJob %s/%s failed, will retry: %s", namespace, name, exc)
            return False
        if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
            self.forget(key)
            return True
        ref = ObjectRef.from_body(job)
        with metrics.reconciling(KIND):
            outcome = sync(ref, self.cluster, self.config, self.clock())
        for what in outcome.writes:
            metrics.API_WRITES.labels(KIND, what).inc()
        if outcome.error is not None:
            metrics.RECONCILE_ERRORS.labels(KIND, outcome.error.reason).inc()
            logger.warning("FineTuneJob %s/%s: %s, will retry", namespace, name, outcome.error)
        self.phases.set(f"{namespace}/{name}", outcome.status.phase)
        progress = dict(ref.status.get("progress") or {})
        self.series.set(
            f"{namespace}/{name}",
            metrics.job_series(namespace, name, outcome.status.phase, progress),
        )
        patch = status_patch(outcome, ref.status)
        if changed(patch, ref.status):
            try:
                self.cluster.patch_finetunejob_status(namespace, name, patch)
            except KubeError as exc:
                logger.warning("FineTuneJob %s/%s: status not written: %s", namespace, name, exc)
                return False
            metrics.API_WRITES.labels(KIND, "status").inc()
            self._report(ref, outcome.status.phase, outcome.status.message)
            # What was written is the body now (its event follows); the trainer's fields stay.
            self.bodies[key] = {
                **trimmed(job),
                "status": {**ref.status, **patch},
            }
        if outcome.error is not None:
            return False
        return outcome.recheck_s if outcome.recheck_s is not None else True

    def _report(self, ref: ObjectRef, phase: Any, message: str) -> None:
        if ref.status.get("phase") == phase or phase is None:
            return
        kind = "Warning" if phase in WARNING_PHASES else "Normal"
        self.post_event(ref, kind, str(phase), message)
        logger.info("FineTuneJob %s: %s (%s)", ref.name, phase, message)
