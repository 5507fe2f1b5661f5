"""Derives LLMDeployment status from typed child views: a pure function, table-tested.

What the conditions promise (README "Status", mapped onto kstatus so kubectl wait, Argo CD and
Flux need no scripts):

* ``Ready=True`` only while the current spec is served: KubeRay has observed the RayService
  generation the operator applied for it, no upgrade is pending, the serving cluster and its
  Serve application run that config, every requested adapter is served, and the serve Service
  has endpoints. Otherwise ``Ready=False`` with what it waits for or what failed.
* ``Reconciling=True`` while a rollout or recovery is under way; ``Stalled=True`` when it cannot
  go on without somebody acting (invalid spec, unschedulable pods, a failed deploy, a failed
  FineTuneJob, a forbidden or rejected write, KubeRay missing). The operator keeps retrying.
* ``endpoint`` stays set while any cluster serves (the old one during an upgrade).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.common import Condition, ConditionStatus
from kubellm_operator.api.llmdeployment import (
    AdapterStatus,
    LLMDeploymentSpec,
    LLMDeploymentStatus,
    Phase,
)
from kubellm_operator.children import (
    DeployedApp,
    PodView,
    RayClusterView,
    RayServiceView,
    ServingSide,
)
from kubellm_operator.errors import KubeError

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
RAY_CLUSTER_READY = "RayClusterReady"
SERVE_READY = "ServeReady"
ADAPTERS_READY = "AdaptersReady"
INVALID_SPEC = "InvalidSpec"

# Why Ready is False when only an action by somebody can move it on: Stalled, not Reconciling.
FAILURES = frozenset(
    {
        INVALID_SPEC,
        "Unschedulable",
        "DeployFailed",
        "AdapterUnavailable",
        "Forbidden",
        "KubeRayMissing",
        "ChildRejected",
    }
)
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Observed:
    """Everything status is derived from, read by the caller (no client here)."""

    name: str
    generation: int
    now: str
    spec: LLMDeploymentSpec | None
    invalid: str | None = None
    rayservice: RayServiceView | None = None
    clusters: Mapping[str, RayClusterView] = field(default_factory=dict)
    """The RayClusters named by the RayService's sides (fresher than KubeRay's copies)."""
    pods: tuple[PodView, ...] = ()
    adapters: tuple[AdapterStatus, ...] = ()
    """Each requested adapter: Pending (with its resolved uri, if known) or Failed."""
    api_error: KubeError | None = None
    """An API call of this reconcile failed (the write did not happen)."""
    expected_args: Mapping[str, Any] | None = None
    """The runtime contract the operator wrote for the current spec."""
    deployed: DeployedApp | None = None
    """What the serving cluster's Ray head says it applied and runs (None: not answered)."""
    previous: tuple[Condition, ...] = ()
    cluster_domain: str = "cluster.local"
    namespace: str = ""


@dataclass(frozen=True)
class Verdict:
    """One condition's status, reason and message, before it is stamped for the object."""

    status: ConditionStatus
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"


def _stamp(obs: Observed, type_: str, verdict: Verdict) -> Condition:
    before = next((c for c in obs.previous if c.type == type_), None)
    keep = before is not None and before.status == verdict.status and before.last_transition_time
    return Condition(
        type=type_,
        status=verdict.status,
        reason=verdict.reason,
        message=_cap(verdict.message),
        observed_generation=obs.generation,
        last_transition_time=before.last_transition_time if keep and before else obs.now,
    )


def _cap(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _cluster(obs: Observed, side: ServingSide | None) -> Verdict:
    if side is None:
        return Verdict("False", "Creating", "waiting for KubeRay to create the Ray cluster")
    name = side.ray_cluster_name
    refused = sorted(
        (p for p in obs.pods if p.cluster == name and p.unschedulable is not None),
        key=lambda p: p.name,
    )
    if refused:
        pod = refused[0]
        why = f"pod {pod.name} cannot be scheduled: {pod.unschedulable}"
        return Verdict("False", "Unschedulable", why)
    cluster = obs.clusters.get(name)
    if cluster is not None and cluster.state == "ready":
        return Verdict("True", "ClusterReady", f"Ray cluster {name}: all pods are ready")
    ready = cluster.ready_worker_replicas if cluster else 0
    desired = cluster.desired_worker_replicas if cluster else "?"
    return Verdict(
        "False", "ClusterStarting", f"Ray cluster {name} starting: {ready}/{desired} workers ready"
    )


SERVE_REASONS = {
    "DEPLOY_FAILED": "DeployFailed",
    "UNHEALTHY": "Unhealthy",
    "DEPLOYING": "Deploying",
    "DELETING": "Deleting",
}


def _serve(side: ServingSide | None) -> Verdict:
    app = side.app if side else None
    if app is None:
        return Verdict("False", "NotDeployed", "model server not deployed yet")
    if app.status == "RUNNING":
        return Verdict("True", "Running", "model server is running")
    reason = SERVE_REASONS.get(app.status, "NotRunning")
    # Ray Serve's application message is generic; each deployment's last line carries the
    # replica's exception ("SourceError: ...").
    parts = [app.message.strip()]
    for name in sorted(app.serve_deployment_statuses):
        lines = [ln.strip() for ln in app.serve_deployment_statuses[name].message.splitlines()]
        last = next((ln for ln in reversed(lines) if ln), "")
        if last:
            parts.append(f"{name}: {last}")
    message = " ".join(p for p in parts if p) or f"Ray Serve application is {app.status}"
    return Verdict("False", reason, message)


def _adapters(obs: Observed, served: bool) -> tuple[Verdict, list[AdapterStatus]]:
    """Start-up adapters are served once the application that lists them runs: the runtime
    refuses to start without them. Adapters still waiting for a FineTuneJob are not."""
    states = [
        a.model_copy(update={"state": "Loaded", "message": ""})
        if served and a.state == "Pending" and a.uri
        else a
        for a in obs.adapters
    ]
    failed = [a for a in states if a.state == "Failed"]
    waiting = [a for a in states if a.state == "Pending"]
    if failed:
        text = "; ".join(f"{a.name}: {a.message}" for a in failed)
        return Verdict("False", "AdapterUnavailable", text), states
    if not states:
        return Verdict("True", "NoAdapters", "no LoRA adapters requested"), states
    if not waiting:
        return Verdict("True", "Loaded", "all adapters are served"), states
    text = "; ".join(f"{a.name}: {a.message or 'loads with the model server'}" for a in waiting)
    return Verdict("False", "AdaptersPending", text), states


def needs_confirmation(rs: RayServiceView | None) -> bool:
    """Whether Ready hinges on asking the serving head: KubeRay reports the current spec
    running on it, but its copy of the application status may predate the config push."""
    app = rs.active.app if rs and rs.active else None
    return bool(rs and rs.observed and rs.pending is None and app and app.status == "RUNNING")


def _confirmed(obs: Observed, rs: RayServiceView) -> Verdict:
    """The head's own answer: has it applied the current config, and does it run it?"""
    name = rs.active.ray_cluster_name if rs.active else ""
    deployed = obs.deployed
    if deployed is None:
        return Verdict(
            "False",
            "ConfirmingConfig",
            f"cannot confirm the config Ray cluster {name} runs: its dashboard did not answer",
        )
    if deployed.args != obs.expected_args:
        return Verdict(
            "False", "Deploying", f"Ray cluster {name} has not applied the current config yet"
        )
    if deployed.status != "RUNNING":
        reason = SERVE_REASONS.get(deployed.status, "NotRunning")
        return Verdict("False", reason, f"the current config is {deployed.status} on {name}")
    return Verdict("True", "Running", f"model server runs the current config on {name}")


def awaits_head(obs: Observed) -> bool:
    """Ready waits on the head alone (no answer, or the new config not applied or running
    yet): nothing in Kubernetes will change to say when that is over, so ask again soon."""
    rs = obs.rayservice
    return rs is not None and needs_confirmation(rs) and not _confirmed(obs, rs).ok


def _ready(rs: RayServiceView | None, checks: tuple[Verdict, ...]) -> Verdict:
    if rs is None:
        return Verdict("False", "Creating", "RayService not created yet")
    if not rs.observed:
        return Verdict(
            "False",
            "WaitingForKubeRay",
            f"KubeRay has not yet observed RayService generation {rs.generation} "
            f"(its status describes generation {rs.status.observed_generation})",
        )
    old = rs.active.ray_cluster_name if rs.pending and rs.active else None
    still = f"; Ray cluster {old} still serves the previous spec" if old else ""
    blocker = next((c for c in checks if not c.ok), None)
    if blocker is not None:
        return Verdict("False", blocker.reason, blocker.message + still)
    if rs.pending:
        return Verdict(
            "False",
            "Upgrading",
            f"Ray cluster {rs.pending.ray_cluster_name} runs the current spec; waiting for "
            f"KubeRay to move traffic to it{still}",
        )
    if not rs.has_endpoints:
        return Verdict("False", "WaitingForEndpoints", "the serve Service has no ready endpoint")
    return Verdict("True", "Serving", "the current spec is served")


def _api_failure(error: KubeError) -> Verdict:
    return Verdict("False", error.reason, f"{error.message} (HTTP {error.status}; retrying)")


def _progress(ready: Verdict) -> tuple[Verdict, Verdict]:
    """Reconciling and Stalled, kstatus' abnormal-true conditions, from Ready."""
    if ready.ok:
        done = Verdict("False", "Serving", "the current spec is served")
        return done, done
    if ready.reason in FAILURES:
        stopped = Verdict("False", ready.reason, "stopped: " + ready.message)
        return stopped, Verdict("True", ready.reason, ready.message)
    return Verdict("True", ready.reason, ready.message), Verdict("False", "Progressing", "")


def _phase(ready: Verdict, rs: RayServiceView | None, serving: bool) -> Phase:
    if ready.ok:
        return "Ready"
    if ready.reason == "Unschedulable":
        return "Pending"
    if ready.reason in FAILURES:
        return "Failed"
    if rs is None:
        return "Pending"
    return "Upgrading" if serving else "Deploying"


def _replicas(obs: Observed, spec: LLMDeploymentSpec, side: ServingSide | None) -> tuple[int, int]:
    """Model replicas on the serving cluster: worker pods that run, and those ready."""
    cluster = obs.clusters.get(side.ray_cluster_name) if side else None
    if cluster is None:
        return 0, 0
    stages = spec.resources.pipeline_parallel_size
    return cluster.available_worker_replicas // stages, cluster.ready_worker_replicas // stages


def derive(obs: Observed) -> LLMDeploymentStatus:
    """The whole status, from scratch; conditions keep their transition time while unchanged."""
    if obs.spec is None:
        invalid = Verdict("False", INVALID_SPEC, obs.invalid or "invalid spec")
        reconciling, stalled = _progress(invalid)
        return LLMDeploymentStatus(
            phase="Failed",
            conditions=[
                _stamp(obs, READY, invalid),
                _stamp(obs, RECONCILING, reconciling),
                _stamp(obs, STALLED, stalled),
            ],
            observed_generation=obs.generation,
        )
    spec, rs = obs.spec, obs.rayservice
    target = rs.target if rs else None
    cluster, serve = _cluster(obs, target), _serve(target)
    if rs is not None and serve.ok and needs_confirmation(rs):
        serve = _confirmed(obs, rs)
    served = bool(rs and rs.observed and cluster.ok and serve.ok)
    adapters, adapter_states = _adapters(obs, served)
    ready = _ready(rs, (cluster, serve, adapters))
    if obs.api_error is not None:
        ready = _api_failure(obs.api_error)
    reconciling, stalled = _progress(ready)
    serving = bool(rs and rs.active and rs.has_endpoints)
    rayservice_name = names.rayservice_name(obs.name)
    replicas, ready_replicas = _replicas(obs, spec, rs.active if rs else None)
    return LLMDeploymentStatus(
        phase=_phase(ready, rs, serving),
        conditions=[
            _stamp(obs, READY, ready),
            _stamp(obs, RECONCILING, reconciling),
            _stamp(obs, STALLED, stalled),
            _stamp(obs, RAY_CLUSTER_READY, cluster),
            _stamp(obs, SERVE_READY, serve),
            _stamp(obs, ADAPTERS_READY, adapters),
        ],
        observed_generation=obs.generation,
        endpoint=names.endpoint(rayservice_name, obs.namespace, obs.cluster_domain)
        if serving
        else None,
        replicas=replicas,
        ready_replicas=ready_replicas,
        selector=names.pod_selector(obs.name),
        adapters=adapter_states,
        ray_service_name=rayservice_name if rs is not None else None,
    )
