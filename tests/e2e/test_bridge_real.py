"""Real bridge: KubeRay deploys onto a real local Ray, and HTTPMode RayJobs really run."""

from __future__ import annotations

import json
import urllib.request

import pytest

from kubellm_dev.rayapps.hello import GREETING
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .manifests import ray_job, ray_service

pytestmark = pytest.mark.realray
TIMEOUT = 180.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> str:
    with NO_PROXY.open(url, timeout=10) as resp:
        return str(resp.read().decode())


def _ready(rayservice: dict) -> bool:
    conditions = rayservice.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_a_rayservice_is_deployed_on_real_ray_serve_and_becomes_ready(
    cluster: E2ECluster, namespace: str, real_ray: None
) -> None:
    cluster.bridge.set_mode(namespace, "real")
    app = f"hello-{namespace}"
    cluster.create_ray(namespace, ray_service("hello", app, "kubellm_dev.rayapps.hello:app"))

    service = wait_for(
        lambda: cluster.get_ray(namespace, "RayService", "hello"),
        _ready,
        timeout=TIMEOUT,
        what="RayService hello to become Ready on real Ray",
    )

    apps = service["status"]["activeServiceStatus"]["applicationStatuses"]
    assert apps[app]["status"] == "RUNNING"
    assert cluster.core.read_namespaced_service("hello-serve-svc", namespace).spec.selector
    # The application answers on the real Serve proxy: KubeRay's PUT reached Ray.
    assert _get(f"http://127.0.0.1:8000/{app}") == GREETING


def test_an_http_mode_rayjob_runs_on_real_ray_and_succeeds(
    cluster: E2ECluster, namespace: str, real_ray: None
) -> None:
    cluster.bridge.set_mode(namespace, "real")
    entrypoint = (
        'python -c "import ray; ray.init(); '
        "print('answer', ray.get(ray.remote(lambda: 6 * 7).remote()))\""
    )
    cluster.create_ray(namespace, ray_job("answer", entrypoint))

    status = wait_for(
        lambda: cluster.get_ray(namespace, "RayJob", "answer").get("status", {}),
        lambda s: s.get("jobDeploymentStatus") in {"Complete", "Failed"},
        timeout=TIMEOUT,
        what="RayJob answer to finish",
    )
    assert status["jobStatus"] == "SUCCEEDED", status

    logs = json.loads(_get(f"http://127.0.0.1:8265/api/jobs/{status['jobId']}/logs"))["logs"]
    assert "answer 42" in logs
