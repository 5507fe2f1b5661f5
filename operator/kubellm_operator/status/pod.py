"""A Ray pod as status needs it: its cluster, and why the scheduler refuses it, if it does."""

from __future__ import annotations

from typing import Any, Self

from kubellm_operator.status.view import View

# The label KubeRay puts on every pod of a RayCluster.
RAY_CLUSTER_LABEL = "ray.io/cluster"


class PodView(View):
    """A Ray pod: which cluster it belongs to and why the scheduler refuses it, if it does."""

    name: str
    cluster: str = ""
    unschedulable: str | None = None

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        meta = obj.get("metadata") or {}
        refused = next(
            (
                c
                for c in (obj.get("status") or {}).get("conditions") or []
                if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
            ),
            None,
        )
        return cls(
            name=meta.get("name", ""),
            cluster=(meta.get("labels") or {}).get(RAY_CLUSTER_LABEL, ""),
            unschedulable=None if refused is None else str(refused.get("message") or ""),
        )
