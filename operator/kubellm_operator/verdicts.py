"""The verdict of each sub-condition, from typed child views (pure; status.py stamps them).

RayClusterReady and ServeReady describe the side that runs, or will run, the current spec;
AdaptersReady the requested adapters; the head's confirmation replaces KubeRay's possibly
stale copy of the application status once KubeRay reports the current spec running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubellm_operator.api.common import ConditionStatus
from kubellm_operator.api.llmdeployment import AdapterStatus
from kubellm_operator.children import (
    DeployedApp,
    PodView,
    RayClusterView,
    RayServiceView,
    ServedModels,
    ServingSide,
)


@dataclass(frozen=True)
class Verdict:
    """One condition's status, reason and message, before it is stamped for the object."""

    status: ConditionStatus
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"


def cluster_verdict(
    side: ServingSide | None, clusters: Mapping[str, RayClusterView], pods: tuple[PodView, ...]
) -> Verdict:
    """RayClusterReady for the cluster that runs (or will run) the current spec."""
    if side is None:
        return Verdict("False", "Creating", "waiting for KubeRay to create the Ray cluster")
    name = side.ray_cluster_name
    refused = sorted(
        (p for p in pods if p.cluster == name and p.unschedulable is not None),
        key=lambda p: p.name,
    )
    if refused:
        pod = refused[0]
        why = f"pod {pod.name} cannot be scheduled: {pod.unschedulable}"
        return Verdict("False", "Unschedulable", why)
    cluster = clusters.get(name)
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


def serve_verdict(side: ServingSide | None) -> Verdict:
    """ServeReady from KubeRay's copy of that side's application status."""
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


def _served_state(a: AdapterStatus, served: bool, listing: ServedModels | None) -> AdapterStatus:
    """Loaded only when the application that lists the adapter runs the current config and
    the Serve endpoint's /v1/models names it: never "loaded" on Ray Serve's word alone."""
    if not (served and a.state == "Pending" and a.uri):
        return a
    if listing is None:
        message = "loads with the model server; confirming through /v1/models"
    elif listing.error is not None:
        message = f"cannot confirm it is served: {listing.error}"
    elif a.name not in listing.models:
        message = "not listed by the serving replica's /v1/models yet"
    else:
        return a.model_copy(update={"state": "Loaded", "message": ""})
    return a.model_copy(update={"message": message})


def unlisted(adapters: tuple[AdapterStatus, ...], listing: ServedModels | None) -> bool:
    """An adapter waits on the probe alone (nothing in Kubernetes says when it is over)."""
    return any(
        a.state == "Pending" and a.uri and (listing is None or a.name not in listing.models)
        for a in adapters
    )


def adapters_verdict(
    adapters: tuple[AdapterStatus, ...], served: bool, listing: ServedModels | None = None
) -> tuple[Verdict, list[AdapterStatus]]:
    """Adapters with a source are served once the application that lists them runs the
    current config and a serving replica lists them. Those still waiting for a FineTuneJob
    are not."""
    states = [_served_state(a, served, listing) for a in adapters]
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


def confirmed_verdict(
    rs: RayServiceView,
    deployed: DeployedApp | None,
    expected_args: Mapping[str, Any] | None,
    expected_user_config: Mapping[str, Any] | None = None,
) -> Verdict:
    """The head's own answer: has it applied the current config, and does it run it?"""
    name = rs.active.ray_cluster_name if rs.active else ""
    if deployed is None:
        return Verdict(
            "False",
            "ConfirmingConfig",
            f"cannot confirm the config Ray cluster {name} runs: its dashboard did not answer",
        )
    if deployed.args != expected_args or deployed.user_config != expected_user_config:
        return Verdict(
            "False", "Deploying", f"Ray cluster {name} has not applied the current config yet"
        )
    if deployed.status != "RUNNING":
        reason = SERVE_REASONS.get(deployed.status, "NotRunning")
        return Verdict("False", reason, f"the current config is {deployed.status} on {name}")
    return Verdict("True", "Running", f"model server runs the current config on {name}")
