"""One reconcile through the retried path: status written, API failures visible and retried."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.config import OperatorConfig
from kubellm_operator.controller.llmdeployment import Reconciler
from kubellm_operator.controller.watched import WatchedCluster, WatchedStore
from kubellm_operator.controller.workqueue import Backoff, WorkQueue
from kubellm_operator.edge.events import event_body
from kubellm_operator.errors import KubeError
from tests.unit.operator.controller.test_workqueue import until
from tests.unit.operator.service.test_llmdeployment import MemoryCluster

KEY = ("ns", "m")
SPEC = {"model": {"uri": "hf://a/b"}}
NOW = "2026-11-22T10:00:00Z"


def llmd(spec: dict[str, Any] = SPEC, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "kubellm.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {
            "name": "m",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": generation,
            "creationTimestamp": "2026-11-22T10:00:00Z",
        },
        "spec": spec,
    }


class Events(list[tuple[str, str, str]]):
    def __init__(self) -> None:
        super().__init__()
        self.involved: list[dict[str, Any]] = []
        """The involvedObject of each Event, as the client edge posts it."""

    def __call__(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        self.append((type_, reason, message))
        self.involved.append(event_body(ref, type_, reason, message)["involvedObject"])


def reconciler(cluster: MemoryCluster) -> tuple[Reconciler, Events]:
    events = Events()
    # No pacing of progress writes here: each reconcile's status is written (pacing has its
    # own tests below).
    config = OperatorConfig(status_interval_s=0)
    return Reconciler(cluster, config, events, clock=lambda: NOW), events


def condition(cluster: MemoryCluster, type_: str) -> dict[str, Any]:
    status = cluster.llmdeployments[KEY].get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def kuberay_reports(cluster: MemoryCluster, app: str) -> None:
    """What KubeRay writes once the cluster serves (app RUNNING, UNHEALTHY...)."""
    child = cluster.rayservices[KEY]
    child["metadata"]["generation"] = 1
    child["status"] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True"}],
        "activeServiceStatus": {
            "rayClusterName": "m-x1",
            "applicationStatuses": {"llm": {"status": app}},
        },
    }
    cluster.rayclusters[("ns", "m-x1")] = {
        "metadata": {"name": "m-x1"},
        "status": {"state": "ready", "readyWorkerReplicas": 1, "availableWorkerReplicas": 1},
    }


def test_a_first_reconcile_creates_the_child_and_writes_status() -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    run, events = reconciler(cluster)
    assert run(KEY, None) is True
    assert KEY in cluster.rayservices
    assert condition(cluster, "Ready")["reason"] == "WaitingForKubeRay"
    assert condition(cluster, "Reconciling")["status"] == "True"
    assert ("Normal", "WaitingForKubeRay") in {(t, r) for t, r, _ in events}
    assert cluster.writes == 2  # the RayService and the status, nothing else


def test_every_event_is_about_the_llmdeployment_itself() -> None:
    """`kubectl describe llmd` lists the Events whose involvedObject is the object (kind and
    uid), also when the reconcile works on the body it kept from the watch."""
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    run, events = reconciler(cluster)
    run(KEY, None)
    run.remember(KEY, cluster.llmdeployments[KEY])
    kuberay_reports(cluster, "RUNNING")
    run(KEY, None)
    assert len(events.involved) > 1
    assert {tuple(sorted(i.items())) for i in events.involved} == {
        (
            ("apiVersion", "kubellm.io/v1alpha1"),
            ("kind", "LLMDeployment"),
            ("name", "m"),
            ("namespace", "ns"),
            ("uid", "uid-1"),
        )
    }


def test_a_second_reconcile_with_nothing_new_writes_nothing() -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    run, _ = reconciler(cluster)
    run(KEY, None)
    run(KEY, None)
    assert cluster.writes == 2


def test_our_own_status_write_is_recognised_as_an_echo() -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    run, _ = reconciler(cluster)
    run(KEY, None)
    echo = copy.deepcopy(cluster.llmdeployments[KEY])
    assert run.is_echo(KEY, echo)
    echo["metadata"]["generation"] = 2
    assert not run.is_echo(KEY, echo)


def test_an_invalid_spec_is_written_once_and_not_retried() -> None:
    cluster = MemoryCluster(
        llmdeployments={KEY: llmd({"model": {"uri": "hf://a/b"}, "replicas": -1})}
    )
    run, events = reconciler(cluster)
    assert run(KEY, None) is True  # nothing to retry until the spec changes
    assert (condition(cluster, "Stalled")["status"], condition(cluster, "Ready")["reason"]) == (
        "True",
        "InvalidSpec",
    )
    assert "spec.replicas" in condition(cluster, "Ready")["message"]
    assert cluster.rayservices == {}
    assert [t for t, r, _ in events if r == "InvalidSpec"] == ["Warning"]


@pytest.mark.parametrize(
    ("error", "reason", "stalled"),
    [
        (KubeError(403, "apply RayService m: rayservices.ray.io is forbidden"), "Forbidden", True),
        (
            KubeError(404, "rayservices.ray.io/v1 is not served by this API server"),
            "KubeRayMissing",
            True,
        ),
        (KubeError(422, "apply RayService m: spec.x: Invalid value"), "ChildRejected", True),
        (KubeError(503, "apply RayService m: etcdserver: leader changed"), "ApiError", False),
        (KubeError(0, "apply RayService m: API server unreachable"), "ApiError", False),
    ],
)
def test_an_apply_failure_is_a_condition_with_the_api_message_and_is_retried(
    error: KubeError, reason: str, stalled: bool
) -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()}, fail={"apply": [error]})
    run, _ = reconciler(cluster)
    assert run(KEY, None) is False  # the queue retries
    ready = condition(cluster, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert error.message in ready["message"]
    assert condition(cluster, "Stalled")["status"] == ("True" if stalled else "False")
    assert cluster.rayservices == {}  # nothing half-created
    assert run(KEY, None) is True  # fixed (RBAC granted, KubeRay installed): it converges
    assert KEY in cluster.rayservices
    assert condition(cluster, "Ready")["reason"] == "WaitingForKubeRay"


def test_a_failed_status_write_is_retried() -> None:
    cluster = MemoryCluster(
        llmdeployments={KEY: llmd()},
        fail={"patch_llmdeployment_status": [KubeError(500, "patch status of m: timeout")]},
    )
    run, _ = reconciler(cluster)
    assert run(KEY, None) is False
    assert "status" not in cluster.llmdeployments[KEY]
    assert run(KEY, None) is True
    assert condition(cluster, "Ready")["reason"] == "WaitingForKubeRay"


@pytest.fixture
async def queue_for() -> AsyncIterator[Callable[[Reconciler], WorkQueue]]:
    tasks: list[asyncio.Task[None]] = []

    def start(run: Reconciler) -> WorkQueue:
        async def work(key: Any, body: Any) -> bool:
            return await asyncio.to_thread(run, key, body)

        queue = WorkQueue(work, workers=2, backoff=Backoff(base_s=0.001, cap_s=0.01))
        tasks.append(asyncio.create_task(queue.run()))
        return queue

    yield start
    for task in tasks:
        task.cancel()


async def test_status_converges_when_the_write_fails_during_the_event_that_matters(
    queue_for: Callable[[Reconciler], WorkQueue],
) -> None:
    """KubeRay says UNHEALTHY; the reads and the status patch of that very refresh fail.
    Kopf would not retry the event handler: the queue does, and Ready turns False."""
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    run, _ = reconciler(cluster)
    queue = queue_for(run)
    queue.add(KEY)
    await until(lambda: bool(condition(cluster, "Ready")), "the first status")
    kuberay_reports(cluster, "RUNNING")
    queue.add(KEY)  # the RayService event
    await until(lambda: condition(cluster, "Ready").get("status") == "True", "Ready=True")

    cluster.fail["get_rayservice"] = [KubeError(500, "get rayservices m: timeout")]
    cluster.fail["patch_llmdeployment_status"] = [
        KubeError(500, "patch status of m: etcd timeout"),
        KubeError(403, "patch status of m: forbidden"),
    ]
    kuberay_reports(cluster, "UNHEALTHY")
    queue.add(KEY)  # the one event that says UNHEALTHY; no other event follows

    await until(lambda: condition(cluster, "Ready").get("reason") == "Unhealthy", "Ready=False")
    assert condition(cluster, "Ready")["status"] == "False"
    assert cluster.fail == {"get_rayservice": [], "patch_llmdeployment_status": []}
    await until(lambda: queue.failures(KEY) == 0, "the failures to clear")


def test_while_the_head_has_not_confirmed_the_config_it_is_asked_again() -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    run, _ = reconciler(cluster)
    run(KEY, None)
    kuberay_reports(cluster, "RUNNING")
    cluster.heads[("ns", "m-x1")] = None  # no answer from its dashboard
    assert run(KEY, None) == OperatorConfig().head_recheck_s
    assert condition(cluster, "Ready")["reason"] == "ConfirmingConfig"
    del cluster.heads[("ns", "m-x1")]
    assert run(KEY, None) is True
    assert condition(cluster, "Ready")["status"] == "True"


def test_a_childs_event_uses_the_watched_body_instead_of_reading_the_object() -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    run, _ = reconciler(cluster)
    run.remember(KEY, llmd())
    cluster.fail["get_llmdeployment"] = [KubeError(500, "must not be read")]
    assert run(KEY, None) is True
    assert cluster.fail["get_llmdeployment"]  # never called
    assert KEY in cluster.rayservices


def test_a_deleted_object_is_forgotten() -> None:
    cluster = MemoryCluster()
    run, _ = reconciler(cluster)
    assert run(KEY, None) is True
    assert run.written == {}


def test_child_events_are_reconciled_from_the_watched_bodies_without_reads() -> None:
    """After the first apply, KubeRay's status reaches Ready from the watch events alone:
    the API is never asked for the RayService, the RayCluster or the pods."""
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    store = WatchedStore()
    run = Reconciler(WatchedCluster(cluster, store), OperatorConfig(), Events(), clock=lambda: NOW)
    assert run(KEY, None) is True
    kuberay_reports(cluster, "RUNNING")
    store.rayservice_changed(cluster.rayservices[KEY], deleted=False)
    store.raycluster_changed(
        {**cluster.rayclusters[("ns", "m-x1")], "metadata": {"name": "m-x1", "namespace": "ns"}},
        deleted=False,
    )
    unread = KubeError(500, "read from the API")
    cluster.fail = {"get_rayservice": [unread], "list_pending_pods": [unread]}
    cluster.rayclusters.clear()  # a GET of the cluster would find nothing
    version = cluster.rayservices[KEY]["metadata"]["resourceVersion"]
    assert run(KEY, None) is True
    assert condition(cluster, "Ready")["status"] == "True"
    assert cluster.rayservices[KEY]["metadata"]["resourceVersion"] == version  # not applied again
    assert cluster.fail == {"get_rayservice": [unread], "list_pending_pods": [unread]}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def paced(cluster: MemoryCluster, clock: Clock) -> Reconciler:
    config = OperatorConfig(status_interval_s=5.0)
    return Reconciler(cluster, config, Events(), clock=lambda: NOW, monotonic=clock)


def test_progress_within_the_interval_is_held_back_and_written_with_what_follows() -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    clock = Clock()
    run = paced(cluster, clock)
    assert run(KEY, None) is True  # the first status is written at once
    first = copy.deepcopy(cluster.llmdeployments[KEY]["status"])
    # KubeRay creates the cluster: progress detail only, Ready stays False for the same reason.
    cluster.rayservices[KEY]["status"] = {
        "pendingServiceStatus": {"rayClusterName": "m-x1"},
    }
    clock.now += 1
    wait = run(KEY, None)
    assert wait == pytest.approx(4.0)  # asked to come back when the interval is over
    assert cluster.llmdeployments[KEY]["status"] == first  # nothing written yet
    clock.now += 4
    assert run(KEY, None) is True
    after = cluster.llmdeployments[KEY]["status"]
    assert after != first
    assert condition(cluster, "RayClusterReady")["reason"] == "ClusterStarting"


def test_a_change_of_ready_is_written_at_once_inside_the_interval() -> None:
    cluster = MemoryCluster(llmdeployments={KEY: llmd()})
    clock = Clock()
    run = paced(cluster, clock)
    assert run(KEY, None) is True
    kuberay_reports(cluster, "RUNNING")
    clock.now += 0.5
    assert run(KEY, None) is True
    assert condition(cluster, "Ready")["status"] == "True"
