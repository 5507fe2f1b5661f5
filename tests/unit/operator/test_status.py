"""Status derivation: conditions a user can act on, never Ready while the child is not."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm_operator.api.common import Condition
from kubellm_operator.api.llmdeployment import AdapterStatus
from kubellm_operator.parse import parse_spec
from kubellm_operator.status import Observed, derive

SPEC = parse_spec({"model": {"uri": "hf://a/b"}, "replicas": 2})
NOW = "2026-11-22T10:00:00Z"


def rayservice(
    *,
    ready: bool = False,
    cluster_state: str | None = None,
    app: str | None = None,
    message: str = "",
    active: bool = True,
    ready_workers: int = 0,
) -> dict[str, Any]:
    side: dict[str, Any] = {"rayClusterName": "m-abcde"}
    if cluster_state:
        side["rayClusterStatus"] = {
            "state": cluster_state,
            "readyWorkerReplicas": ready_workers,
            "desiredWorkerReplicas": 2,
        }
    if app:
        side["applicationStatuses"] = {"llm": {"status": app, "message": message}}
    status: dict[str, Any] = {"activeServiceStatus" if active else "pendingServiceStatus": side}
    if ready:
        status["conditions"] = [
            {"type": "Ready", "status": "True", "reason": "NonZeroServeEndpoints"}
        ]
    return {"status": status}


def unschedulable_pod() -> dict[str, Any]:
    return {
        "metadata": {"name": "m-abcde-gpu-worker-x"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/6 nodes are available: 2 Insufficient nvidia.com/gpu.",
                }
            ],
        },
    }


def observe(**kwargs: Any) -> Observed:
    defaults: dict[str, Any] = {
        "name": "m",
        "namespace": "ns",
        "generation": 3,
        "now": NOW,
        "spec": SPEC,
    }
    return Observed(**{**defaults, **kwargs})


def conditions(obs: Observed) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in derive(obs).conditions}


@pytest.mark.parametrize(
    ("obs", "phase", "ready", "cluster", "serve"),
    [
        (
            observe(),
            "Pending",
            ("False", "Creating"),
            ("False", "Creating"),
            ("False", "NotDeployed"),
        ),
        (
            observe(rayservice=rayservice(active=False)),
            "Deploying",
            ("False", "ClusterStarting"),
            ("False", "ClusterStarting"),
            ("False", "NotDeployed"),
        ),
        (
            observe(rayservice=rayservice(active=False), pods=(unschedulable_pod(),)),
            "Pending",
            ("False", "Unschedulable"),
            ("False", "Unschedulable"),
            ("False", "NotDeployed"),
        ),
        (
            observe(rayservice=rayservice(cluster_state="ready", app="DEPLOYING", active=False)),
            "Deploying",
            ("False", "Deploying"),
            ("True", "ClusterReady"),
            ("False", "Deploying"),
        ),
        (
            observe(
                rayservice=rayservice(cluster_state="ready", app="DEPLOY_FAILED", message="boom")
            ),
            "Failed",
            ("False", "DeployFailed"),
            ("True", "ClusterReady"),
            ("False", "DeployFailed"),
        ),
        (
            observe(rayservice=rayservice(cluster_state="ready", app="RUNNING")),
            "Deploying",
            ("False", "WaitingForEndpoints"),
            ("True", "ClusterReady"),
            ("True", "Running"),
        ),
        (
            observe(rayservice=rayservice(ready=True, cluster_state="ready", app="RUNNING")),
            "Ready",
            ("True", "Serving"),
            ("True", "ClusterReady"),
            ("True", "Running"),
        ),
    ],
    ids=[
        "no-child",
        "cluster-starting",
        "unschedulable",
        "serve-deploying",
        "deploy-failed",
        "running-without-endpoints",
        "ready",
    ],
)
def test_conditions_and_phase(
    obs: Observed,
    phase: str,
    ready: tuple[str, str],
    cluster: tuple[str, str],
    serve: tuple[str, str],
) -> None:
    status = derive(obs)
    assert status.phase == phase
    found = conditions(obs)
    assert (found["Ready"], found["RayClusterReady"], found["ServeReady"]) == (
        ready,
        cluster,
        serve,
    )
    assert all(c.observed_generation == 3 for c in status.conditions)


def test_the_endpoint_is_set_only_while_ready() -> None:
    ready = derive(observe(rayservice=rayservice(ready=True, cluster_state="ready", app="RUNNING")))
    assert ready.endpoint == "http://m-serve-svc.ns.svc.cluster.local:8000/v1"
    starting = derive(observe(rayservice=rayservice(cluster_state="ready", app="DEPLOYING")))
    assert starting.endpoint is None


def test_unschedulable_message_says_why() -> None:
    status = derive(observe(rayservice=rayservice(active=False), pods=(unschedulable_pod(),)))
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert "Insufficient nvidia.com/gpu" in ready.message
    assert "m-abcde-gpu-worker-x" in ready.message


def test_deploy_failure_message_comes_from_ray_serve() -> None:
    obs = observe(rayservice=rayservice(cluster_state="ready", app="DEPLOY_FAILED", message="OOM"))
    serve = next(c for c in derive(obs).conditions if c.type == "ServeReady")
    assert serve.message == "OOM"


def test_invalid_spec_is_a_failed_ready_condition_with_the_message() -> None:
    status = derive(observe(spec=None, invalid="spec.replicas: must be >= 0"))
    assert status.phase == "Failed"
    (ready,) = status.conditions
    assert (ready.type, ready.status, ready.reason) == ("Ready", "False", "InvalidSpec")
    assert ready.message == "spec.replicas: must be >= 0"


def test_transition_time_is_kept_while_the_status_does_not_change() -> None:
    before = Condition(
        type="Ready", status="False", reason="Creating", message="", last_transition_time="earlier"
    )
    same = next(c for c in derive(observe(previous=(before,))).conditions if c.type == "Ready")
    assert same.last_transition_time == "earlier"
    flipped = derive(
        observe(
            previous=(before,),
            rayservice=rayservice(ready=True, cluster_state="ready", app="RUNNING"),
        )
    )
    assert next(c for c in flipped.conditions if c.type == "Ready").last_transition_time == NOW


def test_ready_replicas_count_whole_replicas_and_selector_serves_scale() -> None:
    status = derive(
        observe(
            rayservice=rayservice(ready=True, cluster_state="ready", app="RUNNING", ready_workers=1)
        )
    )
    assert (status.replicas, status.ready_replicas) == (2, 1)
    assert status.selector == "kubellm.io/llmdeployment=m"


@pytest.mark.parametrize(
    ("adapters", "expected"),
    [
        ((), ("True", "NoAdapters")),
        ((AdapterStatus(name="a", state="Pending"),), ("Unknown", "NotVerified")),
        (
            (AdapterStatus(name="a", state="Failed", message="job failed"),),
            ("False", "AdapterUnavailable"),
        ),
        ((AdapterStatus(name="a", state="Loaded"),), ("True", "Loaded")),
    ],
)
def test_adapters_condition(adapters: tuple[AdapterStatus, ...], expected: tuple[str, str]) -> None:
    assert conditions(observe(adapters=adapters))["AdaptersReady"] == expected


def test_worker_readiness_comes_from_the_raycluster_not_the_stale_copy() -> None:
    """KubeRay v1.6.2 leaves the RayService's copy of the cluster status behind when only the
    cluster changed; the RayCluster's own status decides."""
    stale = rayservice(ready=True, cluster_state="", app="RUNNING", ready_workers=1)
    stale["status"]["activeServiceStatus"]["rayClusterStatus"] = {
        "readyWorkerReplicas": 1,
        "desiredWorkerReplicas": 2,
    }
    fresh = {"status": {"state": "ready", "readyWorkerReplicas": 2, "desiredWorkerReplicas": 2}}
    without = derive(observe(rayservice=stale))
    assert next(c for c in without.conditions if c.type == "RayClusterReady").message == (
        "Ray cluster starting: 1/2 workers ready"
    )
    status = derive(observe(rayservice=stale, raycluster=fresh))
    assert next(c for c in status.conditions if c.type == "RayClusterReady").status == "True"
    assert status.phase == "Ready"


def test_a_failed_deploy_names_the_replica_exception() -> None:
    """Ray Serve's application message is generic; the deployment's ends with the error."""
    service = rayservice(
        cluster_state="ready",
        app="DEPLOY_FAILED",
        message="Failed to update the deployments ['LLMServer'].",
    )
    service["status"]["activeServiceStatus"]["applicationStatuses"]["llm"][
        "serveDeploymentStatuses"
    ] = {
        "LLMServer": {
            "status": "DEPLOY_FAILED",
            "message": "The deployment failed to start 3 times in a row.\nTraceback (most "
            'recent call last):\n  File "loading.py", line 40\n'
            "kubellm_runtime.sources.errors.SourceError: file:///m: no such model directory /m\n",
        }
    }
    serve = next(
        c for c in derive(observe(rayservice=service)).conditions if c.type == "ServeReady"
    )
    assert serve.reason == "DeployFailed"
    assert serve.message == (
        "Failed to update the deployments ['LLMServer']. LLMServer: "
        "kubellm_runtime.sources.errors.SourceError: file:///m: no such model directory /m"
    )
