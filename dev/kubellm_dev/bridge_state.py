"""What the Ray bridge knows and answers when scripted: who a proxied call was meant for, the
per-namespace modes and scripted statuses, and the Ray dashboard's (and the runtime's
``/v1/models``) answers built from them. Pure data; the HTTP side is ``kubellm_dev.bridge``."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["scripted", "real"]
_HEAD_HOST = re.compile(r"^(?P<cluster>.+)-head-svc\.(?P<ns>[^.]+)\.svc")
_SERVE_HOST = re.compile(r"^(?P<rayservice>.+)-serve-svc\.(?P<ns>[^.]+)\.svc")
SERVE_PORT = 8000


@dataclass(frozen=True)
class Target:
    """Who was meant to be called: a head Service (cluster, namespace), a RayService's serve
    Service (rayservice, namespace) or a bare pod address."""

    host: str
    namespace: str | None
    cluster: str | None
    rayservice: str | None = None


def parse_target(host: str) -> Target:
    if (match := _HEAD_HOST.match(host)) is not None:
        return Target(host=host, namespace=match["ns"], cluster=match["cluster"])
    if (match := _SERVE_HOST.match(host)) is not None:
        return Target(
            host=host, namespace=match["ns"], cluster=None, rayservice=match["rayservice"]
        )
    return Target(host=host, namespace=None, cluster=None)


@dataclass
class BridgeState:
    """Everything the bridge knows; guarded by one lock because handlers run in threads."""

    default_mode: Mode = "scripted"
    real_dashboard: str | None = None
    real_serve: str | None = None
    modes: dict[str, Mode] = field(default_factory=dict)
    # namespace -> app name -> {"status", "message"} (scripted answers)
    apps: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # namespace -> job id prefix -> {"status", "message"}
    jobs: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # head host -> last serve config KubeRay PUT (scripted)
    serve_configs: dict[str, Any] = field(default_factory=dict)
    # (namespace, job id) -> submission body (scripted)
    submitted: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=2000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mode_for(self, target: Target) -> Mode:
        if target.namespace is None:
            # A pod address (Serve health check): real when any namespace uses a real Ray.
            return (
                "real" if "real" in self.modes.values() and self.real_serve else self.default_mode
            )
        return self.modes.get(target.namespace, self.default_mode)

    def snapshot(self) -> dict[str, Any]:
        return {
            "defaultMode": self.default_mode,
            "realDashboard": self.real_dashboard,
            "realServe": self.real_serve,
            "modes": dict(self.modes),
            "apps": {ns: dict(a) for ns, a in self.apps.items()},
            "jobs": {ns: dict(j) for ns, j in self.jobs.items()},
            "serveConfigs": dict(self.serve_configs),
            "submitted": [
                {"namespace": ns, "jobId": jid, **body}
                for (ns, jid), body in self.submitted.items()
            ],
            "requests": list(self.requests),
        }


def scripted_serve_details(state: BridgeState, target: Target) -> dict[str, Any]:
    config = state.serve_configs.get(target.host, {})
    overrides = state.apps.get(target.namespace or "", {})
    apps: dict[str, Any] = {}
    for app in config.get("applications", []):
        name = app["name"]
        chosen = overrides.get(name, {})
        status = chosen.get("status", "RUNNING")
        healthy = status == "RUNNING"
        deployments = {
            dep["name"]: {
                "name": dep["name"],
                "status": "HEALTHY" if healthy else "UNHEALTHY",
                "message": "" if healthy else chosen.get("message", ""),
            }
            for dep in app.get("deployments", [])
        }
        apps[name] = {
            "name": name,
            "status": status,
            "message": chosen.get("message", ""),
            "route_prefix": app.get("route_prefix", "/"),
            "docs_path": None,
            "deployments": deployments,
            "deployed_app_config": app,  # as Ray reports the config it last applied
        }
    return {"applications": apps, "deploy_mode": "MULTI_APP"}


def scripted_models(state: BridgeState, target: Target) -> dict[str, Any] | None:
    """What the runtime's /v1/models lists on the RayService's newest cluster (as KubeRay put
    its config): the served model and the adapters of its user_config; None before a config."""
    prefix = f"{target.rayservice}-"
    suffix = f"-head-svc.{target.namespace}.svc"
    config = next(
        (
            c
            for host, c in reversed(state.serve_configs.items())
            if host.startswith(prefix) and suffix in host
        ),
        None,
    )
    for app in (config or {}).get("applications", []):
        served = (app.get("args") or {}).get("model", {}).get("served_name")
        adapters = [
            a["name"]
            for dep in app.get("deployments", [])
            for a in (dep.get("user_config") or {}).get("adapters", [])
        ]
        ids = [i for i in (served, *adapters) if i]
        return {"object": "list", "data": [{"id": i, "object": "model"} for i in ids]}
    return None


def scripted_job(state: BridgeState, target: Target, job_id: str) -> dict[str, Any] | None:
    namespace = target.namespace or ""
    override = next(
        (v for prefix, v in state.jobs.get(namespace, {}).items() if job_id.startswith(prefix)),
        None,
    )
    body = state.submitted.get((namespace, job_id))
    if body is None:
        # Never submitted: 404, so KubeRay's HTTPMode submits it (a scripted status applies then).
        return None
    now = int(time.time() * 1000)
    status = (override or {}).get("status", "SUCCEEDED")
    terminal = status in {"SUCCEEDED", "FAILED", "STOPPED"}
    return {
        "job_id": job_id,
        "submission_id": job_id,
        "type": "SUBMISSION",
        "status": status,
        "message": (override or {}).get(
            "message", f"Job {status.lower()} (scripted by the bridge)"
        ),
        "entrypoint": body.get("entrypoint", ""),
        "start_time": now - 1000,
        "end_time": now if terminal else None,
        "metadata": body.get("metadata") or {},
        "runtime_env": body.get("runtime_env") or {},
    }
