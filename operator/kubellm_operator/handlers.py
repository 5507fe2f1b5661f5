"""Kopf handlers: they only wire the stages (service.sync) to Kopf, status writes and events."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
from kubernetes import client
from kubernetes import config as kube_config

from kubellm_operator import metrics, names
from kubellm_operator.api.llmdeployment import LLMDeploymentStatus
from kubellm_operator.config import load_config
from kubellm_operator.kube import Kube, KubeError
from kubellm_operator.service import ObjectRef, Outcome, sync

CONFIG = load_config()
KIND = names.LLMDEPLOYMENT_KIND
LLMD = (names.GROUP, names.VERSION, names.LLMDEPLOYMENT_PLURAL)
RAYSERVICES = (names.RAY_GROUP, names.RAY_VERSION, names.RAYSERVICE_PLURAL)
RAYCLUSTERS = (names.RAY_GROUP, names.RAY_VERSION, names.RAYCLUSTER_PLURAL)
PHASES = metrics.PhaseTracker(KIND)
# Where Kubernetes Events go (Kopf's poster); handler tests capture them here instead.
post_event = kopf.event
# False conditions that only mean "not there yet": reported as Normal events, not Warnings.
PROGRESS_REASONS = frozenset({"Creating", "ClusterStarting", "NotDeployed", "Deploying"})
STATUS_FIELDS = tuple(f.alias or n for n, f in LLMDeploymentStatus.model_fields.items())


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cluster(memo: kopf.Memo) -> Kube:
    cluster: Kube = memo["cluster"]
    return cluster


def status_patch(status: LLMDeploymentStatus) -> dict[str, Any]:
    """A merge patch that also clears fields the new status no longer has (endpoint...)."""
    wire = status.to_wire()
    return {name: wire.get(name) for name in STATUS_FIELDS}


def _emit_transitions(body: Mapping[str, Any], before: Mapping[str, Any], outcome: Outcome) -> None:
    old = {c.get("type"): c for c in before.get("conditions") or []}
    for cond in outcome.status.conditions:
        prev = old.get(cond.type) or {}
        if (prev.get("status"), prev.get("reason")) == (cond.status, cond.reason):
            continue
        progressing = cond.status != "False" or cond.reason in PROGRESS_REASONS
        kind = "Normal" if progressing else "Warning"
        post_event(
            cast(kopf.Body, body),
            type=kind,
            reason=cond.reason,
            message=f"{cond.type}: {cond.message}",
        )
        if cond.type == "Ready" and cond.status == "True" and prev.get("status") != "True":
            created = dt.datetime.fromisoformat(body["metadata"]["creationTimestamp"])
            metrics.TIME_TO_READY.labels(KIND).observe(
                (dt.datetime.now(dt.UTC) - created).total_seconds()
            )


def _after_sync(body: Mapping[str, Any], ref: ObjectRef, outcome: Outcome) -> dict[str, Any] | None:
    """Metrics and events for one sync; the status patch to write, or None when unchanged."""
    if outcome.applied:
        metrics.API_WRITES.labels(KIND, "rayservice").inc()
    PHASES.set(f"{ref.namespace}/{ref.name}", outcome.status.phase)
    if not outcome.status_changed(ref.status):
        return None
    _emit_transitions(body, ref.status, outcome)
    metrics.API_WRITES.labels(KIND, "status").inc()
    return status_patch(outcome.status)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Kopf bookkeeping under kubellm.io, events only for warnings, metrics, one API client."""
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.peering.name = "kubellm"
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    memo["cluster"] = Kube(client.ApiClient())
    metrics.serve(CONFIG.metrics_host, CONFIG.metrics_port)


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, trigger: str) -> None:
    ref = ObjectRef.from_body(body)
    with metrics.reconciling(KIND, trigger):
        try:
            outcome = sync(ref, _cluster(memo), CONFIG, _now())
        except KubeError as exc:
            if exc.retryable:
                raise kopf.TemporaryError(str(exc), delay=5) from exc
            raise kopf.PermanentError(str(exc)) from exc
    update = _after_sync(body, ref, outcome)
    if update is not None:
        patch.status.update(update)
    if outcome.invalid is not None:
        raise kopf.PermanentError(f"invalid spec: {outcome.invalid}")


@kopf.on.resume(*LLMD)
@kopf.on.create(*LLMD)
@kopf.on.update(*LLMD, field="spec")
def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, reason: str, **_: Any) -> None:
    """One idempotent reconcile for create, spec update and operator restart."""
    _reconcile(body, patch, memo, str(reason))


def _resync_parent(
    body: kopf.Body,
    memo: kopf.Memo,
    trigger: str,
    child: dict[str, Any] | None,
    raycluster: dict[str, Any] | None = None,
) -> None:
    """Re-derive (and if needed re-apply) the LLMDeployment a child or Ray pod belongs to."""
    parent_name = (body.get("metadata", {}).get("labels") or {}).get(names.LABEL_LLMDEPLOYMENT)
    namespace = body.get("metadata", {}).get("namespace")
    if not parent_name or not namespace:
        return
    cluster = _cluster(memo)
    parent = cluster.get_llmdeployment(namespace, parent_name)
    if parent is None or parent["metadata"].get("deletionTimestamp"):
        return
    ref = ObjectRef.from_body(parent)
    with metrics.reconciling(KIND, trigger):
        outcome = sync(ref, cluster, CONFIG, _now(), child=child, raycluster=raycluster)
    update = _after_sync(parent, ref, outcome)
    if update is not None:
        cluster.patch_llmdeployment_status(namespace, parent_name, update)


# Event-driven refresh instead of a Kopf timer: timers make Kopf put a finalizer on every
# object, and then an LLMDeployment could not be deleted while the operator is down.
@kopf.on.event(*RAYSERVICES, labels={names.LABEL_MANAGED_BY: names.MANAGER})
def rayservice_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A child changed (KubeRay status, deletion): re-derive the parent's status right away."""
    _resync_parent(body, memo, "child", None if type == "DELETED" else dict(body))


@kopf.on.event(*RAYCLUSTERS, labels={names.LABEL_MANAGED_BY: names.MANAGER})
def raycluster_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Workers became ready (or went away): KubeRay does not always rewrite the RayService
    for that, so the RayCluster's own events refresh the parent."""
    _resync_parent(body, memo, "cluster", None, None if type == "DELETED" else dict(body))


def _unschedulable(status: Mapping[str, Any], **_: Any) -> bool:
    conditions = status.get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False" for c in conditions)


@kopf.on.event(
    "", "v1", "pods", labels={names.LABEL_LLMDEPLOYMENT: kopf.PRESENT}, when=_unschedulable
)
def ray_pod_unschedulable(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The scheduler refused a Ray pod: the parent's status says why (once it is scheduled,
    KubeRay's own status change brings the parent back through rayservice_changed)."""
    _resync_parent(body, memo, "pod", None)
