"""Derives LLMDeployment status from its RayService and pods: a pure function, table-tested."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.common import Condition, ConditionStatus
from kubellm_operator.api.llmdeployment import (
    AdapterStatus,
    LLMDeploymentSpec,
    LLMDeploymentStatus,
    Phase,
)

READY = "Ready"
RAY_CLUSTER_READY = "RayClusterReady"
SERVE_READY = "ServeReady"
ADAPTERS_READY = "AdaptersReady"
INVALID_SPEC = "InvalidSpec"


@dataclass(frozen=True)
class Observed:
    """Everything status is derived from, read by the caller (no client here)."""

    name: str
    generation: int
    now: str
    spec: LLMDeploymentSpec | None
    invalid: str | None = None
    rayservice: dict[str, Any] | None = None
    raycluster: dict[str, Any] | None = None
    """The RayCluster serving now (its status is fresher than the RayService's copy)."""
    pods: tuple[dict[str, Any], ...] = ()
    adapters: tuple[AdapterStatus, ...] = ()
    previous: tuple[Condition, ...] = ()
    cluster_domain: str = "cluster.local"
    namespace: str = ""


def _condition(
    obs: Observed, type_: str, status: ConditionStatus, reason: str, message: str
) -> Condition:
    before = next((c for c in obs.previous if c.type == type_), None)
    keep = before is not None and before.status == status and before.last_transition_time
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=obs.generation,
        last_transition_time=before.last_transition_time if keep and before else obs.now,
    )


def _serving_side(rayservice: dict[str, Any]) -> dict[str, Any]:
    """The active side once a cluster serves; the pending side while the first one starts."""
    status = rayservice.get("status") or {}
    active = status.get("activeServiceStatus") or {}
    if active.get("rayClusterName"):
        return dict(active)
    return dict(status.get("pendingServiceStatus") or {})


def serving_cluster_name(rayservice: dict[str, Any] | None) -> str | None:
    """The RayCluster that serves (or, before the first one is up, the one starting)."""
    return _serving_side(rayservice or {}).get("rayClusterName") or None


def _unschedulable(pods: tuple[dict[str, Any], ...]) -> str | None:
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return (
                    f"pod {pod['metadata']['name']} cannot be scheduled: {cond.get('message', '')}"
                )
    return None


def _cluster_condition(obs: Observed) -> Condition:
    if obs.rayservice is None:
        return _condition(obs, RAY_CLUSTER_READY, "False", "Creating", "RayService not created yet")
    blocked = _unschedulable(obs.pods)
    if blocked:
        return _condition(obs, RAY_CLUSTER_READY, "False", "Unschedulable", blocked)
    cluster = (
        (obs.raycluster or {}).get("status")
        or _serving_side(obs.rayservice).get("rayClusterStatus")
        or {}
    )
    if cluster.get("state") == "ready":
        return _condition(obs, RAY_CLUSTER_READY, "True", "ClusterReady", "all Ray pods are ready")
    ready = cluster.get("readyWorkerReplicas", 0)
    desired = cluster.get("desiredWorkerReplicas", "?")
    return _condition(
        obs,
        RAY_CLUSTER_READY,
        "False",
        "ClusterStarting",
        f"Ray cluster starting: {ready}/{desired} workers ready",
    )


def _serve_condition(obs: Observed) -> Condition:
    apps = (_serving_side(obs.rayservice or {}).get("applicationStatuses")) or {}
    app = apps.get(names.SERVE_APP)
    if app is None:
        return _condition(obs, SERVE_READY, "False", "NotDeployed", "model server not deployed yet")
    status = app.get("status", "")
    if status == "RUNNING":
        return _condition(obs, SERVE_READY, "True", "Running", "model server is running")
    reasons = {
        "DEPLOY_FAILED": "DeployFailed",
        "UNHEALTHY": "Unhealthy",
        "DEPLOYING": "Deploying",
        "DELETING": "Deleting",
    }
    reason = reasons.get(status, "NotRunning")
    return _condition(
        obs,
        SERVE_READY,
        "False",
        reason,
        _serve_message(app) or f"Ray Serve application is {status}",
    )


MAX_MESSAGE = 1024


def _serve_message(app: dict[str, Any]) -> str:
    """The application's message and, for each deployment that says why, the last line of
    its message: where Ray Serve puts the replica's exception ("SourceError: ...")."""
    parts = [str(app.get("message") or "").strip()]
    deployments = app.get("serveDeploymentStatuses") or {}
    for name in sorted(deployments):
        lines = [ln.strip() for ln in str(deployments[name].get("message") or "").splitlines()]
        last = next((ln for ln in reversed(lines) if ln), "")
        if last:
            parts.append(f"{name}: {last}")
    text = " ".join(p for p in parts if p)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _adapters_condition(obs: Observed) -> Condition:
    failed = [a for a in obs.adapters if a.state == "Failed"]
    if failed:
        text = "; ".join(f"{a.name}: {a.message}" for a in failed)
        return _condition(obs, ADAPTERS_READY, "False", "AdapterUnavailable", text)
    if not obs.adapters:
        return _condition(obs, ADAPTERS_READY, "True", "NoAdapters", "no LoRA adapters requested")
    if all(a.state == "Loaded" for a in obs.adapters):
        return _condition(obs, ADAPTERS_READY, "True", "Loaded", "all adapters are served")
    return _condition(
        obs, ADAPTERS_READY, "Unknown", "NotVerified", "adapters configured, not yet verified"
    )


def _rayservice_ready(rayservice: dict[str, Any] | None) -> bool:
    conditions = ((rayservice or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _phase(ready: Condition, cluster: Condition, serve: Condition, has_child: bool) -> Phase:
    if ready.status == "True":
        return "Ready"
    if serve.reason == "DeployFailed":
        return "Failed"
    if not has_child or cluster.reason == "Unschedulable":
        return "Pending"
    return "Deploying"


def _ready_replicas(obs: Observed, spec: LLMDeploymentSpec) -> int:
    cluster = _serving_side(obs.rayservice or {}).get("rayClusterStatus") or {}
    workers = int(cluster.get("readyWorkerReplicas") or 0)
    return min(spec.replicas, workers // spec.resources.pipeline_parallel_size)


def derive(obs: Observed) -> LLMDeploymentStatus:
    """The whole status, from scratch; conditions keep their transition time while unchanged."""
    if obs.spec is None:
        invalid = _condition(obs, READY, "False", INVALID_SPEC, obs.invalid or "invalid spec")
        return LLMDeploymentStatus(
            phase="Failed", conditions=[invalid], observed_generation=obs.generation
        )
    spec = obs.spec
    cluster = _cluster_condition(obs)
    serve = _serve_condition(obs)
    adapters = _adapters_condition(obs)
    serving = cluster.status == serve.status == "True" and _rayservice_ready(obs.rayservice)
    if serving:
        ready = _condition(obs, READY, "True", "Serving", "the model answers requests")
    else:
        blocker = cluster if cluster.status != "True" else serve
        if blocker.status == "True":
            blocker = _condition(
                obs, READY, "False", "WaitingForEndpoints", "waiting for KubeRay to report Ready"
            )
        ready = _condition(obs, READY, "False", blocker.reason, blocker.message)
    rayservice_name = names.rayservice_name(obs.name)
    return LLMDeploymentStatus(
        phase=_phase(ready, cluster, serve, obs.rayservice is not None),
        conditions=[ready, cluster, serve, adapters],
        observed_generation=obs.generation,
        endpoint=names.endpoint(rayservice_name, obs.namespace, obs.cluster_domain)
        if serving
        else None,
        replicas=spec.replicas,
        ready_replicas=_ready_replicas(obs, spec),
        selector=names.pod_selector(obs.name),
        adapters=list(obs.adapters),
        ray_service_name=rayservice_name if obs.rayservice is not None else None,
    )
