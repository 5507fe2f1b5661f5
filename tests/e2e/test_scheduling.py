"""The real scheduler places Ray pods on the kwok GPU pools, or refuses with the real reason."""

from __future__ import annotations

from kubellm_dev.kwok import POOL_LABEL
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .manifests import ray_cluster, worker_group

SCHEDULED = 30.0
READY = 90.0


def _node_pool(cluster: E2ECluster, node_name: str) -> str:
    return str(cluster.core.read_node(node_name).metadata.labels[POOL_LABEL])


def _worker_pods(cluster: E2ECluster, namespace: str, name: str) -> list:
    return cluster.pods(namespace, f"ray.io/cluster={name},ray.io/node-type=worker")


def _scheduling_failures(cluster: E2ECluster, namespace: str, pod: str) -> str:
    return " | ".join(
        e.message or ""
        for e in cluster.events_for(namespace, pod)
        if e.reason == "FailedScheduling"
    )


def test_gpu_workers_land_on_the_requested_pool_and_the_cluster_becomes_ready(
    cluster: E2ECluster, namespace: str
) -> None:
    workers = worker_group(gpus=8, pool="a100-80gb", tolerate_gpu=True, replicas=2)
    cluster.create_ray(namespace, ray_cluster("a100", [workers]))

    status = wait_for(
        lambda: cluster.get_ray(namespace, "RayCluster", "a100").get("status", {}),
        lambda s: s.get("state") == "ready",
        timeout=READY,
        what="RayCluster a100 to reach state ready",
    )
    assert status["readyWorkerReplicas"] == 2

    pods = _worker_pods(cluster, namespace, "a100")
    assert len(pods) == 2
    # Each worker takes all 8 GPUs of a node: two workers need both a100 nodes.
    assert {_node_pool(cluster, p.spec.node_name) for p in pods} == {"a100-80gb"}
    assert len({p.spec.node_name for p in pods}) == 2
    head = cluster.pods(namespace, "ray.io/cluster=a100,ray.io/node-type=head")[0]
    assert _node_pool(cluster, head.spec.node_name) == "cpu"


def test_more_gpus_than_any_node_has_stays_pending_with_insufficient_gpu(
    cluster: E2ECluster, namespace: str
) -> None:
    workers = worker_group(gpus=16, pool="a100-80gb", tolerate_gpu=True)
    cluster.create_ray(namespace, ray_cluster("huge", [workers]))

    pod = wait_for(
        lambda: _worker_pods(cluster, namespace, "huge"),
        lambda pods: len(pods) == 1,
        timeout=SCHEDULED,
        what="the worker pod of RayCluster huge",
    )[0]
    message = wait_for(
        lambda: _scheduling_failures(cluster, namespace, pod.metadata.name),
        lambda m: "Insufficient nvidia.com/gpu" in m,
        timeout=SCHEDULED,
        what="a FailedScheduling event naming Insufficient nvidia.com/gpu",
    )
    assert "Insufficient nvidia.com/gpu" in message
    current = cluster.core.read_namespaced_pod(pod.metadata.name, namespace)
    assert current.status.phase == "Pending"
    assert not current.spec.node_name


def test_pods_without_the_gpu_toleration_never_land_on_a_gpu_node(
    cluster: E2ECluster, namespace: str
) -> None:
    workers = worker_group(gpus=1, pool=None, tolerate_gpu=False)
    cluster.create_ray(namespace, ray_cluster("untolerated", [workers]))

    pod = wait_for(
        lambda: _worker_pods(cluster, namespace, "untolerated"),
        lambda pods: len(pods) == 1,
        timeout=SCHEDULED,
        what="the worker pod of RayCluster untolerated",
    )[0]
    message = wait_for(
        lambda: _scheduling_failures(cluster, namespace, pod.metadata.name),
        lambda m: "untolerated taint" in m,
        timeout=SCHEDULED,
        what="a FailedScheduling event naming the untolerated GPU taint",
    )
    # Only GPU nodes have GPUs, and every one of them carries the taint.
    assert "nvidia.com/gpu" in message
    assert not cluster.core.read_namespaced_pod(pod.metadata.name, namespace).spec.node_name

    head = wait_for(
        lambda: cluster.pods(namespace, "ray.io/cluster=untolerated,ray.io/node-type=head"),
        lambda pods: len(pods) == 1 and bool(pods[0].spec.node_name),
        timeout=SCHEDULED,
        what="the head pod to be scheduled",
    )[0]
    assert _node_pool(cluster, head.spec.node_name) == "cpu"
