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
from kubellm_operator.api.common import Condition
from kubellm_operator.api.llmdeployment import (
    AdapterStatus,
    LLMDeploymentSpec,
    LLMDeploymentStatus,
    Phase,
)
from kubellm_operator.errors import KubeError
from kubellm_operator.status.adapters import adapters_verdict, unlisted
from kubellm_operator.status.conditions import Verdict, missing_claims, stamp
from kubellm_operator.status.pod import PodView
from kubellm_operator.status.raycluster import RayClusterView, cluster_verdict
from kubellm_operator.status.rayhead import DeployedApp, ServedModels, confirmed_verdict
from kubellm_operator.status.rayservice import (
    RayServiceView,
    ServingSide,
    needs_confirmation,
    serve_verdict,
)
from kubellm_operator.status.reasons import (
    ADAPTERS_READY,
    CLAIM_NOT_FOUND,
    FAILURES,
    INVALID_SPEC,
    RAY_CLUSTER_READY,
    READY,
    RECONCILING,
    SERVE_READY,
    STALLED,
)


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
    missing_claims: Mapping[str, str] = field(default_factory=dict)
    """PersistentVolumeClaims the spec names that do not exist (claim → field): the
    RayService for this spec is not applied until they do."""
    expected_args: Mapping[str, Any] | None = None
    """The runtime contract the operator wrote for the current spec."""
    expected_user_config: Mapping[str, Any] | None = None
    """The model deployment's user_config (the adapters) written for the current spec."""
    deployed: DeployedApp | None = None
    """What the serving cluster's Ray head says it applied and runs (None: not answered)."""
    listing: ServedModels | None = None
    """What the Serve endpoint's /v1/models lists (None: not asked, only asked for adapters
    once the head runs the current config)."""
    previous: tuple[Condition, ...] = ()
    cluster_domain: str = "cluster.local"
    namespace: str = ""


def _stamp(obs: Observed, type_: str, verdict: Verdict) -> Condition:
    return stamp(obs.previous, type_, verdict, obs.generation, obs.now)


def _confirmed(rs: RayServiceView, obs: Observed) -> Verdict:
    return confirmed_verdict(rs, obs.deployed, obs.expected_args, obs.expected_user_config)


def awaits_head(obs: Observed) -> bool:
    """Ready waits on the head alone (no answer, or the new config not applied or running
    yet): nothing in Kubernetes will change to say when that is over, so ask again soon."""
    rs = obs.rayservice
    if rs is None or not needs_confirmation(rs):
        return False
    return not _confirmed(rs, obs).ok or unlisted(obs.adapters, obs.listing)


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
    cluster, serve = cluster_verdict(target, obs.clusters, obs.pods), serve_verdict(target)
    if rs is not None and serve.ok and needs_confirmation(rs):
        serve = _confirmed(rs, obs)
    served = bool(rs and rs.observed and cluster.ok and serve.ok)
    adapters, adapter_states = adapters_verdict(obs.adapters, served, obs.listing)
    ready = _ready(rs, (cluster, serve, adapters))
    if obs.missing_claims:
        ready = Verdict("False", CLAIM_NOT_FOUND, missing_claims(obs.missing_claims, obs.namespace))
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
