"""Status derivation, case by case: Ready only while the current spec is served.

Each case builds the child views KubeRay and the scheduler would report and checks what a user
(or kubectl wait, Argo CD, Flux) reads: Ready, Reconciling, Stalled, phase, endpoint, replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kubellm_operator.api.common import Condition
from kubellm_operator.api.llmdeployment import AdapterStatus, LLMDeploymentSpec
from kubellm_operator.errors import KubeError
from kubellm_operator.status.llmdeployment import Observed, awaits_head, derive
from kubellm_operator.status.pod import PodView
from kubellm_operator.status.raycluster import RayClusterView
from kubellm_operator.status.rayhead import DeployedApp, ServedModels
from kubellm_operator.status.rayservice import RayServiceView

SPEC = LLMDeploymentSpec.parse({"model": {"uri": "hf://a/b"}, "replicas": 2})
NOW = "2026-11-22T10:00:00Z"
OLD, NEW = "m-old11", "m-new22"
ENDPOINT = "http://m-serve-svc.ns.svc.cluster.local:8000/v1"


def side(cluster: str, app: str | None, message: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {"rayClusterName": cluster}
    if app:
        found["applicationStatuses"] = {"llm": {"status": app, "message": message}}
    return found


def rayservice(
    *,
    active: dict[str, Any] | None = None,
    pending: dict[str, Any] | None = None,
    endpoints: bool = False,
    generation: int = 1,
    observed: int | None = None,
) -> RayServiceView:
    status: dict[str, Any] = {
        "observedGeneration": generation if observed is None else observed,
        "activeServiceStatus": active or {},
        "pendingServiceStatus": pending or {},
    }
    if endpoints:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    return RayServiceView.parse({"metadata": {"generation": generation}, "status": status})


def raycluster(name: str, *, ready: bool = True, workers: int = 2, desired: int = 2) -> Any:
    return RayClusterView.parse(
        {
            "metadata": {"name": name},
            "status": {
                "state": "ready" if ready else "",
                "readyWorkerReplicas": workers,
                "availableWorkerReplicas": workers,
                "desiredWorkerReplicas": desired,
            },
        }
    )


def refused_pod(cluster: str) -> PodView:
    return PodView.parse(
        {
            "metadata": {"name": f"{cluster}-gpu-worker-x", "labels": {"ray.io/cluster": cluster}},
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/6 nodes are available: 2 Insufficient nvidia.com/gpu.",
                    }
                ]
            },
        }
    )


ADAPTER = AdapterStatus(name="a", state="Pending", uri="s3://bucket-b/a")
SERVING = rayservice(active=side(OLD, "RUNNING"), endpoints=True)
ARGS = {"model": {"uri": "hf://a/b", "served_name": "b"}}
RUNS_CURRENT = DeployedApp(status="RUNNING", args=ARGS)


def observe(rs: RayServiceView | None = SERVING, *clusters: Any, **kwargs: Any) -> Observed:
    found = clusters if clusters else (raycluster(OLD),)
    defaults: dict[str, Any] = {
        "name": "m",
        "namespace": "ns",
        "generation": 3,
        "now": NOW,
        "spec": SPEC,
        "rayservice": rs,
        "clusters": {c.name: c for c in found},
        "expected_args": ARGS,
        "deployed": RUNS_CURRENT,
    }
    return Observed(**{**defaults, **kwargs})


def of(obs: Observed, type_: str) -> Condition:
    return next(c for c in derive(obs).conditions if c.type == type_)


@dataclass(frozen=True)
class Expect:
    phase: str
    ready: str
    reconciling: bool
    stalled: bool
    endpoint: bool


CASES = {
    "no child yet": (observe(None), Expect("Pending", "Creating", True, False, False)),
    "first cluster starting": (
        observe(rayservice(pending=side(NEW, None)), raycluster(NEW, ready=False, workers=1)),
        Expect("Deploying", "ClusterStarting", True, False, False),
    ),
    "first cluster unschedulable": (
        observe(
            rayservice(pending=side(NEW, None)),
            raycluster(NEW, ready=False),
            pods=(refused_pod(NEW),),
        ),
        Expect("Pending", "Unschedulable", False, True, False),
    ),
    "serve deploying": (
        observe(rayservice(pending=side(NEW, "DEPLOYING")), raycluster(NEW)),
        Expect("Deploying", "Deploying", True, False, False),
    ),
    "first deploy failed": (
        observe(rayservice(pending=side(NEW, "DEPLOY_FAILED", "boom")), raycluster(NEW)),
        Expect("Failed", "DeployFailed", False, True, False),
    ),
    "running without endpoints": (
        observe(rayservice(active=side(OLD, "RUNNING"))),
        Expect("Deploying", "WaitingForEndpoints", True, False, False),
    ),
    "serving the current spec": (observe(), Expect("Ready", "Serving", False, False, True)),
    "spec changed, KubeRay has not observed it": (
        observe(rayservice(active=side(OLD, "RUNNING"), endpoints=True, generation=2, observed=1)),
        Expect("Upgrading", "WaitingForKubeRay", True, False, True),
    ),
    "KubeRay's copy says RUNNING, the head has not applied the new config": (
        observe(deployed=DeployedApp(status="RUNNING", args={"model": {"uri": "old"}})),
        Expect("Upgrading", "Deploying", True, False, True),
    ),
    "the head applied the new config and is deploying it": (
        observe(deployed=DeployedApp(status="DEPLOYING", args=ARGS)),
        Expect("Upgrading", "Deploying", True, False, True),
    ),
    "the head does not answer": (
        observe(deployed=None),
        Expect("Upgrading", "ConfirmingConfig", True, False, True),
    ),
    "in-place update deploying on the serving cluster": (
        observe(rayservice(active=side(OLD, "DEPLOYING"), endpoints=True, generation=2)),
        Expect("Upgrading", "Deploying", True, False, True),
    ),
    "upgrade: new cluster starting, old one serves": (
        observe(
            rayservice(active=side(OLD, "RUNNING"), pending=side(NEW, None), endpoints=True),
            raycluster(OLD),
            raycluster(NEW, ready=False, workers=0),
        ),
        Expect("Upgrading", "ClusterStarting", True, False, True),
    ),
    "upgrade: new side DEPLOY_FAILED": (
        observe(
            rayservice(
                active=side(OLD, "RUNNING"),
                pending=side(NEW, "DEPLOY_FAILED", "no such model"),
                endpoints=True,
            ),
            raycluster(OLD),
            raycluster(NEW),
        ),
        Expect("Failed", "DeployFailed", False, True, True),
    ),
    "upgrade: new cluster unschedulable": (
        observe(
            rayservice(active=side(OLD, "RUNNING"), pending=side(NEW, None), endpoints=True),
            raycluster(OLD),
            raycluster(NEW, ready=False, workers=0),
            pods=(refused_pod(NEW),),
        ),
        Expect("Pending", "Unschedulable", False, True, True),
    ),
    "upgrade: an old cluster's pod refused does not block the new one": (
        observe(
            rayservice(active=side(OLD, "RUNNING"), pending=side(NEW, "RUNNING"), endpoints=True),
            raycluster(OLD),
            raycluster(NEW),
            pods=(refused_pod(OLD),),
        ),
        Expect("Upgrading", "Upgrading", True, False, True),
    ),
    "serving cluster's app unhealthy": (
        observe(rayservice(active=side(OLD, "UNHEALTHY"), endpoints=True)),
        Expect("Upgrading", "Unhealthy", True, False, True),
    ),
    "adapter waits for its FineTuneJob": (
        observe(adapters=(AdapterStatus(name="a", state="Pending", message="waiting for job"),)),
        Expect("Upgrading", "AdaptersPending", True, False, True),
    ),
    "adapter's FineTuneJob failed": (
        observe(adapters=(AdapterStatus(name="a", state="Failed", message="job failed"),)),
        Expect("Failed", "AdapterUnavailable", False, True, True),
    ),
    "start-up adapter listed by the serving replica": (
        observe(adapters=(ADAPTER,), listing=ServedModels(models=frozenset({"b", "a"}))),
        Expect("Ready", "Serving", False, False, True),
    ),
    "start-up adapter not listed by the serving replica": (
        observe(adapters=(ADAPTER,), listing=ServedModels(models=frozenset({"b"}))),
        Expect("Upgrading", "AdaptersPending", True, False, True),
    ),
    "adapter probe unanswered": (
        observe(adapters=(ADAPTER,), listing=ServedModels(error="answered HTTP 503")),
        Expect("Upgrading", "AdaptersPending", True, False, True),
    ),
    "apply forbidden": (
        observe(api_error=KubeError(403, "rayservices is forbidden")),
        Expect("Failed", "Forbidden", False, True, True),
    ),
    "KubeRay not installed": (
        observe(None, api_error=KubeError(404, "rayservices.ray.io/v1 is not served")),
        Expect("Failed", "KubeRayMissing", False, True, False),
    ),
    "API server error": (
        observe(api_error=KubeError(503, "etcd leader changed")),
        Expect("Upgrading", "ApiError", True, False, True),
    ),
    "invalid spec": (
        observe(None, spec=None, invalid="spec.replicas: must be >= 0"),
        Expect("Failed", "InvalidSpec", False, True, False),
    ),
}


@pytest.mark.parametrize(("obs", "expect"), CASES.values(), ids=CASES.keys())
def test_each_case_reads_as_a_user_expects(obs: Observed, expect: Expect) -> None:
    status = derive(obs)
    found = {c.type: c for c in status.conditions}
    assert status.phase == expect.phase
    assert (found["Ready"].status, found["Ready"].reason) == (
        "True" if expect.ready == "Serving" else "False",
        expect.ready,
    )
    assert found["Reconciling"].status == ("True" if expect.reconciling else "False")
    assert found["Stalled"].status == ("True" if expect.stalled else "False")
    assert (status.endpoint == ENDPOINT) is expect.endpoint
    assert (status.endpoint is None) is not expect.endpoint
    assert status.observed_generation == 3
    assert all(c.observed_generation == 3 for c in status.conditions)


def test_ready_after_a_spec_change_waits_for_kuberay_then_for_the_new_config() -> None:
    """Generation 2 applied: not Ready until KubeRay observed it and the head runs it.

    KubeRay v1.6.2 reads the application status, then pushes the new config, then writes both:
    its first status for generation 2 can still say RUNNING about the previous config."""
    previous = DeployedApp(status="RUNNING", args={"model": {"uri": "previous"}})
    steps = [
        (
            rayservice(active=side(OLD, "RUNNING"), endpoints=True, generation=2, observed=1),
            previous,
        ),
        (rayservice(active=side(OLD, "RUNNING"), endpoints=True, generation=2), previous),
        (rayservice(active=side(OLD, "DEPLOYING"), endpoints=True, generation=2), RUNS_CURRENT),
        (rayservice(active=side(OLD, "RUNNING"), endpoints=True, generation=2), RUNS_CURRENT),
    ]
    readiness = [of(observe(rs, deployed=head), "Ready").status for rs, head in steps]
    assert readiness == ["False", "False", "False", "True"]


def test_upgrade_messages_say_what_serves_meanwhile() -> None:
    obs = observe(
        rayservice(active=side(OLD, "RUNNING"), pending=side(NEW, None), endpoints=True),
        raycluster(OLD),
        raycluster(NEW, ready=False, workers=1),
    )
    ready = of(obs, "Ready")
    assert ready.message == (
        f"Ray cluster {NEW} starting: 1/2 workers ready; Ray cluster {OLD} still serves the "
        "previous spec"
    )
    assert of(obs, "Reconciling").message == ready.message


def test_an_unschedulable_new_cluster_names_the_pod_and_the_scheduler_message() -> None:
    obs = CASES["upgrade: new cluster unschedulable"][0]
    stalled = of(obs, "Stalled")
    assert f"pod {NEW}-gpu-worker-x cannot be scheduled" in stalled.message
    assert "Insufficient nvidia.com/gpu" in stalled.message
    assert of(obs, "RayClusterReady").reason == "Unschedulable"


def test_a_failed_upgrade_carries_the_replica_reason() -> None:
    obs = CASES["upgrade: new side DEPLOY_FAILED"][0]
    assert "no such model" in of(obs, "Stalled").message
    assert of(obs, "ServeReady").reason == "DeployFailed"


def test_replicas_come_from_what_serves_not_from_the_spec() -> None:
    """status.replicas (the scale subresource's current count) and readyReplicas are read
    from the serving RayCluster itself, not the RayService's stale copy or the spec."""
    stale = RayServiceView.parse(
        {
            "metadata": {"generation": 1},
            "status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True"}],
                "activeServiceStatus": {
                    **side(OLD, "RUNNING"),
                    "rayClusterStatus": {"readyWorkerReplicas": 0, "desiredWorkerReplicas": 2},
                },
            },
        }
    )
    one = RayClusterView.parse(
        {
            "metadata": {"name": OLD},
            "status": {"state": "ready", "readyWorkerReplicas": 1, "availableWorkerReplicas": 1},
        }
    )
    status = derive(observe(stale, one))
    assert (status.replicas, status.ready_replicas) == (1, 1)
    assert status.selector == "kubellm.io/llmdeployment=m"


def test_during_an_upgrade_replicas_are_those_of_the_cluster_that_serves() -> None:
    obs = observe(
        rayservice(active=side(OLD, "RUNNING"), pending=side(NEW, None), endpoints=True),
        raycluster(OLD, workers=2),
        raycluster(NEW, ready=False, workers=0),
    )
    status = derive(obs)
    assert (status.replicas, status.ready_replicas) == (2, 2)


def test_pipeline_stages_count_as_one_replica() -> None:
    spec = LLMDeploymentSpec.parse({"model": {"uri": "hf://a/b"}, "resources": {"gpusPerReplica": 2,
                       "pipelineParallelSize": 2}})  # fmt: skip
    status = derive(observe(SERVING, raycluster(OLD, workers=3), spec=spec))
    assert (status.replicas, status.ready_replicas) == (1, 1)


def test_adapters_are_loaded_only_when_running_and_listed_by_the_serving_replica() -> None:
    adapters, listed = (ADAPTER,), ServedModels(models=frozenset({"b", "a"}))
    deploying = derive(
        observe(
            rayservice(active=side(OLD, "DEPLOYING"), endpoints=True),
            adapters=adapters,
            listing=listed,
        )
    )
    assert [a.state for a in deploying.adapters] == ["Pending"]
    unprobed = derive(observe(adapters=adapters))
    assert [(a.state, a.message) for a in unprobed.adapters] == [
        ("Pending", "loads with the model server; confirming through /v1/models")
    ]
    missing = derive(observe(adapters=adapters, listing=ServedModels(models=frozenset({"b"}))))
    assert [(a.state, a.message) for a in missing.adapters] == [
        ("Pending", "not listed by the serving replica's /v1/models yet")
    ]
    unanswered = observe(adapters=adapters, listing=ServedModels(error="x answered HTTP 401"))
    assert of(unanswered, "AdaptersReady").message == (
        "a: cannot confirm it is served: x answered HTTP 401"
    )
    served = derive(observe(adapters=adapters, listing=listed))
    assert [a.state for a in served.adapters] == ["Loaded"]
    assert next(c for c in served.conditions if c.type == "AdaptersReady").reason == "Loaded"


def test_the_head_is_asked_again_while_an_adapter_is_not_listed() -> None:
    assert awaits_head(observe(adapters=(ADAPTER,), listing=ServedModels(models=frozenset())))
    listed = ServedModels(models=frozenset({"a"}))
    assert not awaits_head(observe(adapters=(ADAPTER,), listing=listed))
    assert not awaits_head(observe())


def test_an_api_failure_shows_the_api_message() -> None:
    obs = CASES["apply forbidden"][0]
    assert of(obs, "Ready").message == "rayservices is forbidden (HTTP 403; retrying)"


def test_transition_time_is_kept_while_the_status_does_not_change() -> None:
    before = Condition(
        type="Ready", status="False", reason="Creating", message="", last_transition_time="earlier"
    )
    same = of(observe(None, previous=(before,)), "Ready")
    assert same.last_transition_time == "earlier"
    assert of(observe(previous=(before,)), "Ready").last_transition_time == NOW


def test_a_failed_deploy_names_the_replica_exception() -> None:
    """Ray Serve's application message is generic; the deployment's ends with the error."""
    failed = side(NEW, "DEPLOY_FAILED", "Failed to update the deployments ['LLMServer'].")
    failed["applicationStatuses"]["llm"]["serveDeploymentStatuses"] = {
        "LLMServer": {
            "status": "DEPLOY_FAILED",
            "message": "The deployment failed to start 3 times in a row.\nTraceback (most "
            'recent call last):\n  File "loading.py", line 40\n'
            "kubellm_runtime.sources.errors.SourceError: file:///m: no such model directory /m\n",
        }
    }
    serve = of(observe(rayservice(pending=failed), raycluster(NEW)), "ServeReady")
    assert serve.reason == "DeployFailed"
    assert serve.message == (
        "Failed to update the deployments ['LLMServer']. LLMServer: "
        "kubellm_runtime.sources.errors.SourceError: file:///m: no such model directory /m"
    )
