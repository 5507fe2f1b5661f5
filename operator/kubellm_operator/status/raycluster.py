"""A RayCluster's own status, and RayClusterReady for the cluster that runs the current spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from kubellm_operator.status.conditions import Verdict
from kubellm_operator.status.pod import PodView
from kubellm_operator.status.rayservice import ServingSide
from kubellm_operator.status.view import View


class RayClusterView(View):
    """A RayCluster's own status (fresher than the RayService's copy of it)."""

    name: str = ""
    state: str = ""
    ready_worker_replicas: int = 0
    available_worker_replicas: int = 0
    desired_worker_replicas: int = 0

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        status = dict(obj.get("status") or {})
        return cls.model_validate({**status, "name": (obj.get("metadata") or {}).get("name", "")})


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
