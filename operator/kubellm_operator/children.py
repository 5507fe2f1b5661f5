"""Typed views of what KubeRay and the scheduler report (RayService, RayCluster, Ray pods).

Child objects are parsed here, once, at the edge, so status derivation takes typed input
instead of walking raw dicts. The views are lenient (unknown fields are ignored: KubeRay adds
fields between versions) and keep only what status needs.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubellm_operator import names

# The label KubeRay puts on every pod of a RayCluster.
RAY_CLUSTER_LABEL = "ray.io/cluster"


class _View(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class KubeCondition(_View):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""


class DeploymentStatus(_View):
    """One Ray Serve deployment of an application."""

    status: str = ""
    message: str = ""


class AppStatus(_View):
    """A Ray Serve application as KubeRay reports it (RUNNING, DEPLOYING, DEPLOY_FAILED...)."""

    status: str = ""
    message: str = ""
    serve_deployment_statuses: dict[str, DeploymentStatus] = Field(default_factory=dict)


class ServingSide(_View):
    """The active or the pending side of a RayService: a cluster and its applications."""

    ray_cluster_name: str = ""
    application_statuses: dict[str, AppStatus] = Field(default_factory=dict)

    @property
    def app(self) -> AppStatus | None:
        return self.application_statuses.get(names.SERVE_APP)


class RayServiceStatus(_View):
    observed_generation: int = 0
    conditions: list[KubeCondition] = Field(default_factory=list)
    active_service_status: ServingSide = ServingSide()
    pending_service_status: ServingSide = ServingSide()


class RayServiceView(_View):
    """A RayService: its spec generation, what KubeRay observed, and both serving sides."""

    generation: int = 0
    status: RayServiceStatus = RayServiceStatus()

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        meta = obj.get("metadata") or {}
        return cls.model_validate(
            {"generation": meta.get("generation") or 0, "status": obj.get("status") or {}}
        )

    @property
    def observed(self) -> bool:
        """KubeRay has reconciled the current spec (its status describes this generation)."""
        return self.status.observed_generation == self.generation

    @property
    def active(self) -> ServingSide | None:
        side = self.status.active_service_status
        return side if side.ray_cluster_name else None

    @property
    def pending(self) -> ServingSide | None:
        side = self.status.pending_service_status
        return side if side.ray_cluster_name else None

    @property
    def target(self) -> ServingSide | None:
        """The side that runs the current spec once it is up: pending while one exists."""
        return self.pending or self.active

    @property
    def has_endpoints(self) -> bool:
        """KubeRay's Ready condition: the serve Service has at least one ready endpoint."""
        return any(c.type == "Ready" and c.status == "True" for c in self.status.conditions)


class RayClusterView(_View):
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


class PodView(_View):
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


class DeployedApp(_View):
    """What a Ray head says about the kubellm application: status and the config it applied."""

    status: str = ""
    args: dict[str, Any] | None = None
    user_config: dict[str, Any] | None = None
    """The model deployment's user_config as applied (the adapters)."""

    @classmethod
    def parse(cls, details: dict[str, Any] | None) -> Self | None:
        app = ((details or {}).get("applications") or {}).get(names.SERVE_APP)
        if not isinstance(app, dict):
            return None
        config = app.get("deployed_app_config") or {}
        model = next(
            (
                d
                for d in config.get("deployments") or ()
                if isinstance(d, dict) and d.get("name") == names.SERVE_DEPLOYMENT
            ),
            {},
        )
        return cls(
            status=str(app.get("status") or ""),
            args=config.get("args"),
            user_config=model.get("user_config"),
        )


class ServedModels(_View):
    """What the Serve endpoint's ``/v1/models`` lists: the model and the adapters a serving
    replica has really loaded (the operator's probe; ``error`` when it got no list)."""

    models: frozenset[str] = frozenset()
    error: str | None = None

    @classmethod
    def parse(cls, listing: Any) -> Self:
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            return cls(error="/v1/models answered without a model list")
        ids = (card.get("id") for card in data if isinstance(card, dict))
        return cls(models=frozenset(str(i) for i in ids if i))
