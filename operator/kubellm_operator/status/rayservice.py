"""A RayService as status needs it (both serving sides and their Serve applications), and
ServeReady from KubeRay's copy of the application status.

Child objects are parsed into typed views (``status/<child>.py``), once, so status derivation
takes typed input instead of walking raw dicts.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field

from kubellm_operator.status.conditions import Verdict
from kubellm_operator.status.reasons import SERVE_REASONS
from kubellm_operator.status.view import View
from kubellm_runtime.contract import SERVE_APP


class KubeCondition(View):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""


class DeploymentStatus(View):
    """One Ray Serve deployment of an application."""

    status: str = ""
    message: str = ""


class AppStatus(View):
    """A Ray Serve application as KubeRay reports it (RUNNING, DEPLOYING, DEPLOY_FAILED...)."""

    status: str = ""
    message: str = ""
    serve_deployment_statuses: dict[str, DeploymentStatus] = Field(default_factory=dict)


class ServingSide(View):
    """The active or the pending side of a RayService: a cluster and its applications."""

    ray_cluster_name: str = ""
    application_statuses: dict[str, AppStatus] = Field(default_factory=dict)

    @property
    def app(self) -> AppStatus | None:
        return self.application_statuses.get(SERVE_APP)


class RayServiceStatus(View):
    observed_generation: int = 0
    conditions: list[KubeCondition] = Field(default_factory=list)
    active_service_status: ServingSide = ServingSide()
    pending_service_status: ServingSide = ServingSide()


class RayServiceView(View):
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


def needs_confirmation(rs: RayServiceView | None) -> bool:
    """Whether Ready hinges on asking the serving head: KubeRay reports the current spec
    running on it, but its copy of the application status may predate the config push."""
    app = rs.active.app if rs and rs.active else None
    return bool(rs and rs.observed and rs.pending is None and app and app.status == "RUNNING")
