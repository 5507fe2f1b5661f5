"""One reconcile of one LLMDeployment, as the work queue runs it: read, sync, write, report.

Returns whether it is done; False makes the queue retry with backoff. Every API failure ends
up here: the status it could derive (with the failure as a condition, when it can still be
written) is written, and the run is retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kubellm_operator import metrics, names
from kubellm_operator.api.refs import Key, ObjectRef
from kubellm_operator.config import OperatorConfig
from kubellm_operator.controller.packed import pack, unpack
from kubellm_operator.controller.runner import PostEvent, log_context, now, trimmed
from kubellm_operator.errors import KubeError
from kubellm_operator.service.defaults import ADOPT_ANNOTATION, RolloutSlots
from kubellm_operator.service.llmdeployment import Outcome, holds_slot, status_patch, sync
from kubellm_operator.service.ports import LLMDeploymentCluster
from kubellm_operator.status.patch import changed
from kubellm_operator.status.reasons import ALERTS, READY, RECONCILING, STALLED

logger = logging.getLogger(__name__)

KIND = names.LLMDEPLOYMENT_KIND
# Reconciling and Stalled restate Ready for kstatus; an Event for them would say it twice.
UNREPORTED = frozenset({RECONCILING, STALLED})
# What a waiting tool (kubectl wait, Argo CD, Flux) reads: a change of these is never paced.
TRANSITIONS = frozenset({READY, RECONCILING, STALLED})


def transition(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether ``after`` changes what a waiting tool decides on (not only progress detail)."""
    was = {c.get("type"): c.get("reason") for c in before.get("conditions") or []}
    if was.get("Ready") in ALERTS:
        return True

    def key(status: Mapping[str, Any]) -> tuple[Any, ...]:
        conditions = {
            c.get("type"): c.get("status")
            for c in status.get("conditions") or []
            if c.get("type") in TRANSITIONS
        }
        return status.get("observedGeneration"), tuple(sorted(conditions.items()))

    return key(before) != key(after)


def _asked(body: Mapping[str, Any]) -> str | None:
    """The object's adopt-defaults annotation (changing it changes no generation)."""
    return ((body.get("metadata") or {}).get("annotations") or {}).get(ADOPT_ANNOTATION)


@dataclass
class Reconciler:
    """Runs sync for a key and writes its status; remembers what it wrote, to skip echoes."""

    cluster: LLMDeploymentCluster
    config: OperatorConfig
    post_event: PostEvent
    clock: Callable[[], str] = now
    written: dict[Key, tuple[int, bytes]] = field(default_factory=dict)
    """(generation, packed status) last written for each object: its echo is skipped."""
    bodies: dict[Key, bytes] = field(default_factory=dict)
    """The latest body of each object from its watch, packed: a child's event needs no GET."""
    phases: metrics.PhaseTracker = field(default_factory=lambda: metrics.PhaseTracker(KIND))
    series: metrics.ObjectSeries = field(default_factory=metrics.ObjectSeries)
    monotonic: Callable[[], float] = time.monotonic
    last_write: dict[Key, float] = field(default_factory=dict)
    """When each object's status was last written, to pace progress-only writes."""
    asked: dict[Key, str | None] = field(default_factory=dict)
    """The adopt-defaults annotation each object's last reconcile saw."""
    slots: RolloutSlots = field(init=False)
    """Moves to the operator's current defaults in flight, over all deployments."""

    def __post_init__(self) -> None:
        self.slots = RolloutSlots(self.config.defaults_rollout_max_in_flight, self._upgrading)

    def _upgrading(self) -> list[Key]:
        """Deployments whose status says they are moving to new defaults (before a restart)."""
        found = self.cluster.list_llmdeployments(self.config.watch_namespaces)
        return [
            (str(body["metadata"]["namespace"]), str(body["metadata"]["name"]))
            for body in found
            if ((body.get("status") or {}).get("defaults") or {}).get("state") == "Upgrading"
        ]

    def is_echo(self, key: Key, body: Mapping[str, Any]) -> bool:
        """The event only shows the status this reconciler wrote for the same generation."""
        generation = int(body.get("metadata", {}).get("generation") or 0)
        written = self.written.get(key)
        if written is None or written[0] != generation or _asked(body) != self.asked.get(key):
            return False
        return written[1] == pack(body.get("status") or {})

    def remember(self, key: Key, body: Mapping[str, Any]) -> None:
        self.bodies[key] = pack(trimmed(body))

    def forget(self, key: Key) -> None:
        self.written.pop(key, None)
        self.bodies.pop(key, None)
        self.last_write.pop(key, None)
        self.asked.pop(key, None)
        self.slots.release(key)
        self.phases.set(f"{key[0]}/{key[1]}", None)
        self.series.set(f"{key[0]}/{key[1]}", [])

    def __call__(self, key: Key, body: Mapping[str, Any] | None) -> bool | float:
        namespace, name = key
        try:
            kept = self.bodies.get(key)
            parent = (
                body
                or (unpack(kept) if kept is not None else None)
                or self.cluster.get_llmdeployment(namespace, name)
            )
        except KubeError as exc:
            logger.warning("reading %s/%s failed, will retry: %s", namespace, name, exc)
            return False
        if parent is None or parent.get("metadata", {}).get("deletionTimestamp"):
            self.forget(key)
            return True
        ref = ObjectRef.from_body(parent)
        if key in self.written:  # newer than a body handed in with an event (the only writer)
            ref = replace(ref, status=unpack(self.written[key][1]))
        with metrics.reconciling(KIND):
            outcome = sync(ref, self.cluster, self.config, self.clock(), self.slots)
        self.asked[key] = ref.annotations.get(ADOPT_ANNOTATION)
        if outcome.applied:
            metrics.API_WRITES.labels(KIND, "rayservice").inc()
        if outcome.error is not None:
            metrics.RECONCILE_ERRORS.labels(KIND, outcome.error.reason).inc()
            logger.warning(
                "reconcile failed, will retry: %s", outcome.error, extra=log_context(ref)
            )
        self.phases.set(f"{namespace}/{name}", outcome.status.phase)
        ready = next((c for c in outcome.status.conditions if c.type == "Ready"), None)
        self.series.set(
            f"{namespace}/{name}",
            metrics.deployment_series(
                namespace,
                name,
                ready is not None and ready.status == "True",
                [a.state for a in outcome.status.adapters],
            ),
        )
        patch = status_patch(outcome, ref.status)
        # The status as written: the patch without the fields it clears (to_wire once).
        wire = {field: value for field, value in patch.items() if value is not None}
        if changed(patch, ref.status):
            if (wait := self._paced(key, ref.status, wire, outcome)) > 0:
                return wait  # written then, with whatever else has changed by that time
            try:
                self.cluster.patch_llmdeployment_status(namespace, name, patch)
            except KubeError as exc:
                logger.warning("status not written, will retry: %s", exc, extra=log_context(ref))
                return False
            metrics.API_WRITES.labels(KIND, "status").inc()
            self.last_write[key] = self.monotonic()
            ready = outcome.status.conditions[0]
            logger.info(
                "status: %s, %s=%s (%s)",
                outcome.status.phase,
                ready.type,
                ready.status,
                ready.reason,
                extra=log_context(ref),
            )
            self._report(ref, parent, outcome)
        self.written[key] = (ref.generation, pack(wire))
        if not holds_slot(outcome.status):  # written: the next deployment may start moving
            self.slots.release(key)
        return self._again(outcome)

    def _again(self, outcome: Outcome) -> bool | float:
        """What the work queue does next: retry (False), look again in N s, or wait (True)."""
        if outcome.error is not None:
            return False
        if outcome.recheck_s is not None:
            return outcome.recheck_s
        return self.config.head_recheck_s if outcome.recheck else True

    def _paced(
        self, key: Key, before: Mapping[str, Any], after: Mapping[str, Any], outcome: Outcome
    ) -> float:
        """Seconds to hold a progress-only write back (0: write now)."""
        last = self.last_write.get(key)
        if last is None or outcome.error is not None or transition(before, after):
            return 0.0
        return max(0.0, last + self.config.status_interval_s - self.monotonic())

    def _report(self, ref: ObjectRef, parent: Mapping[str, Any], outcome: Outcome) -> None:
        """Events for changed conditions; time to Ready."""
        before = ref.status
        old = {c.get("type"): c for c in before.get("conditions") or []}
        for cond in outcome.status.conditions:
            prev = old.get(cond.type) or {}
            if cond.type in UNREPORTED or (prev.get("status"), prev.get("reason")) == (
                cond.status,
                cond.reason,
            ):
                continue
            warning = cond.status == "False" and cond.reason in ALERTS
            kind = "Warning" if warning else "Normal"
            self.post_event(ref, kind, cond.reason, f"{cond.type}: {cond.message}")
            if cond.type == "Ready" and cond.status == "True" and prev.get("status") != "True":
                created = dt.datetime.fromisoformat(parent["metadata"]["creationTimestamp"])
                metrics.TIME_TO_READY.labels(KIND).observe(
                    (dt.datetime.now(dt.UTC) - created).total_seconds()
                )
        defaults = outcome.status.defaults
        was = (before.get("defaults") or {}).get("state")
        if defaults is not None and was is not None and defaults.state != was:
            # Outdated after an operator upgrade, Queued, Upgrading, Current again.
            message = defaults.message or f"built with the operator's defaults {defaults.revision}"
            self.post_event(ref, "Normal", f"Defaults{defaults.state}", message)
