"""Scripted bridge: tests choose what KubeRay's Ray dashboard answers, failures included."""

from __future__ import annotations

from typing import Any

from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .manifests import ray_job, ray_service

TIMEOUT = 120.0


def test_a_rayjob_can_be_driven_to_failed(cluster: E2ECluster, namespace: str) -> None:
    cluster.bridge.set_job_status(
        namespace, "doomed", "FAILED", "scripted: trainer ran out of memory"
    )
    cluster.create_ray(namespace, ray_job("doomed", "python -c 'raise SystemExit(1)'"))

    status = wait_for(
        lambda: cluster.get_ray(namespace, "RayJob", "doomed").get("status", {}),
        lambda s: s.get("jobDeploymentStatus") == "Failed",
        timeout=TIMEOUT,
        what="RayJob doomed to fail",
    )
    assert status["jobStatus"] == "FAILED"
    assert "out of memory" in status.get("message", "")
    # KubeRay really submitted the job (HTTPMode) through the bridge.
    submitted = [s for s in cluster.bridge.state()["submitted"] if s["namespace"] == namespace]
    assert [s["entrypoint"] for s in submitted] == ["python -c 'raise SystemExit(1)'"]


def test_a_rayjob_succeeds_by_default(cluster: E2ECluster, namespace: str) -> None:
    cluster.create_ray(namespace, ray_job("fine", "python -c pass"))
    status = wait_for(
        lambda: cluster.get_ray(namespace, "RayJob", "fine").get("status", {}),
        lambda s: s.get("jobDeploymentStatus") == "Complete",
        timeout=TIMEOUT,
        what="RayJob fine to complete",
    )
    assert status["jobStatus"] == "SUCCEEDED"


def _app_status(rayservice: dict[str, Any], app: str) -> str | None:
    status = rayservice.get("status", {})
    for side in ("pendingServiceStatus", "activeServiceStatus"):
        apps = status.get(side, {}).get("applicationStatuses", {})
        if app in apps:
            return str(apps[app].get("status"))
    return None


def test_a_rayservice_application_can_be_driven_to_deploy_failed(
    cluster: E2ECluster, namespace: str
) -> None:
    cluster.bridge.set_app_status(namespace, "broken", "DEPLOY_FAILED", "scripted: import failed")
    cluster.create_ray(namespace, ray_service("broken", "broken", "nowhere.to.be:found"))

    service = wait_for(
        lambda: cluster.get_ray(namespace, "RayService", "broken"),
        lambda rs: _app_status(rs, "broken") == "DEPLOY_FAILED",
        timeout=TIMEOUT,
        what="RayService broken to report its application DEPLOY_FAILED",
    )
    ready = [c for c in service["status"].get("conditions", []) if c["type"] == "Ready"]
    assert not ready or ready[0]["status"] == "False"
    # The serve config KubeRay PUT is the one in the RayService spec.
    configs = cluster.bridge.state()["serveConfigs"]
    apps = [
        a["name"]
        for host, c in configs.items()
        if f".{namespace}.svc" in host
        for a in c["applications"]
    ]
    assert apps == ["broken"]


def test_a_scripted_rayservice_becomes_ready_with_its_serve_service(
    cluster: E2ECluster, namespace: str
) -> None:
    cluster.create_ray(namespace, ray_service("fine", "fine", "scripted.app:app"))
    service = wait_for(
        lambda: cluster.get_ray(namespace, "RayService", "fine"),
        lambda rs: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in rs.get("status", {}).get("conditions", [])
        ),
        timeout=TIMEOUT,
        what="RayService fine to become Ready",
    )
    assert _app_status(service, "fine") == "RUNNING"
    assert cluster.core.read_namespaced_service("fine-serve-svc", namespace).spec.selector
