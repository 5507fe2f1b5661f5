"""kube-controller-manager and API schema validation are really running."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .manifests import ray_cluster, ray_job, ray_service, worker_group


def test_deleting_an_owner_garbage_collects_what_it_owns(
    cluster: E2ECluster, namespace: str
) -> None:
    owner = cluster.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    cluster.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="owned", owner_references=[reference])
        ),
    )

    cluster.core.delete_namespaced_config_map("owner", namespace)

    names = wait_for(
        lambda: {c.metadata.name for c in cluster.core.list_namespaced_config_map(namespace).items},
        lambda found: "owned" not in found,
        timeout=60,
        what="the garbage collector to delete the owned ConfigMap",
    )
    assert "owner" not in names


def test_kube_controller_manager_runs_replicasets(cluster: E2ECluster, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    client.AppsV1Api(cluster.api).create_namespaced_deployment(namespace, deployment)
    ready = wait_for(
        lambda: client.AppsV1Api(cluster.api).read_namespaced_deployment("web", namespace).status,
        lambda s: (s.ready_replicas or 0) == 2,
        timeout=60,
        what="Deployment web to have 2 ready replicas (ReplicaSet controller + kwok)",
    )
    assert ready.replicas == 2


def test_the_api_server_rejects_a_value_outside_a_crd_enum(
    cluster: E2ECluster, namespace: str
) -> None:
    bad_job = ray_job("bad", "python -c pass")
    bad_job["spec"]["deletionStrategy"] = {"onSuccess": {"policy": "Explode"}}

    with pytest.raises(ApiException) as rejected:
        cluster.create_ray(namespace, bad_job)

    assert rejected.value.status == 422
    assert "spec.deletionStrategy.onSuccess.policy" in rejected.value.body
    assert "Unsupported value" in rejected.value.body


def test_the_api_server_rejects_a_missing_required_field(
    cluster: E2ECluster, namespace: str
) -> None:
    bad_service = ray_service("bad", "app", "x:y")
    del bad_service["spec"]["rayClusterConfig"]

    with pytest.raises(ApiException) as rejected:
        cluster.create_ray(namespace, bad_service)

    assert rejected.value.status == 422
    assert "spec.rayClusterConfig: Required value" in rejected.value.body


def test_the_api_server_rejects_a_wrongly_typed_field(cluster: E2ECluster, namespace: str) -> None:
    bad_cluster = ray_cluster("typed", [worker_group(gpus=1, pool=None, tolerate_gpu=True)])
    bad_cluster["spec"]["workerGroupSpecs"][0]["replicas"] = "two"

    with pytest.raises(ApiException) as rejected:
        cluster.create_ray(namespace, bad_cluster)

    assert rejected.value.status == 422
    assert "spec.workerGroupSpecs[0].replicas" in rejected.value.body
