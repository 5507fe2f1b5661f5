"""What the watches deliver, kept in memory: RayClusters and the pods the scheduler refuses."""

from __future__ import annotations

from typing import Any

from kubellm_operator.controller.watched import WatchedCluster, WatchedStore
from kubellm_operator.errors import KubeError
from tests.unit.operator.service.test_llmdeployment import MemoryCluster

PARENT = ("ns", "m")


def pod(name: str, refused: bool) -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": "True"}
    if refused:
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/6 nodes are available",
        }
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": {"ray.io/cluster": "m-x1"}},
        "status": {"phase": "Pending", "conditions": [condition]},
    }


def test_refused_pods_come_and_go_with_their_events() -> None:
    store = WatchedStore()
    view = WatchedCluster(MemoryCluster(), store)
    assert store.pod_changed(PARENT, pod("w1", refused=True), deleted=False) is True
    assert store.pod_changed(PARENT, pod("w1", refused=True), deleted=False) is False  # same
    assert store.pod_changed(PARENT, pod("w2", refused=False), deleted=False) is False
    assert [
        p["metadata"]["name"] for p in view.list_pending_pods("ns", "kubellm.io/llmdeployment=m")
    ] == ["w1"]
    assert store.pod_changed(PARENT, pod("w1", refused=False), deleted=False) is True  # placed
    assert view.list_pending_pods("ns", "kubellm.io/llmdeployment=m") == []
    assert store.refused == {}  # nothing kept for a parent without refused pods


def test_a_deleted_refused_pod_is_dropped() -> None:
    store = WatchedStore()
    store.pod_changed(PARENT, pod("w1", refused=True), deleted=False)
    assert store.pod_changed(PARENT, pod("w1", refused=True), deleted=True) is True
    assert store.refused == {}


def test_a_watched_raycluster_is_answered_from_memory_and_an_unseen_one_from_the_api() -> None:
    api = MemoryCluster()
    api.rayclusters[("ns", "m-old")] = {"metadata": {"name": "m-old"}, "status": {"state": "ready"}}
    store = WatchedStore()
    store.raycluster_changed(
        {"metadata": {"name": "m-x1", "namespace": "ns"}, "status": {"state": "ready"}, "spec": {}},
        deleted=False,
    )
    view = WatchedCluster(api, store)
    assert view.get_raycluster("ns", "m-x1") == {
        "metadata": {"name": "m-x1"},
        "status": {"state": "ready"},
    }
    assert view.get_raycluster("ns", "m-old") == api.rayclusters[("ns", "m-old")]  # not watched yet
    store.raycluster_changed({"metadata": {"name": "m-x1", "namespace": "ns"}}, deleted=True)
    assert view.get_raycluster("ns", "m-x1") is None


def rayservice(generation: int, state: str, spec: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {
            "name": "m",
            "namespace": "ns",
            "generation": generation,
            "managedFields": [{"manager": "kubellm"}],
        },
        "spec": {"serveConfigV2": spec},
        "status": {"serviceStatus": state},
    }


def test_a_watched_rayservice_is_answered_from_memory_without_managed_fields() -> None:
    api = MemoryCluster()
    store = WatchedStore()
    view = WatchedCluster(api, store)
    store.rayservice_changed(rayservice(1, "Running"), deleted=False)
    got = view.get_rayservice("ns", "m")
    assert got is not None
    assert got["status"] == {"serviceStatus": "Running"}
    assert got["spec"] == {"serveConfigV2": "v1"}
    assert "managedFields" not in got["metadata"]
    store.rayservice_changed(rayservice(1, "Running"), deleted=True)
    assert view.get_rayservice("ns", "m") is None  # neither watched nor in the API


def test_an_unseen_rayservice_is_read_once_and_then_kept() -> None:
    api = MemoryCluster()
    api.rayservices[("ns", "m")] = rayservice(3, "Running")
    view = WatchedCluster(api, WatchedStore())
    assert view.get_rayservice("ns", "m") is not None
    api.fail["get_rayservice"] = [KubeError(500, "the API is not asked again")]
    got = view.get_rayservice("ns", "m")
    assert got is not None
    assert got["metadata"]["generation"] == 3


def test_an_older_event_after_an_apply_does_not_replace_the_applied_spec() -> None:
    api = MemoryCluster()
    store = WatchedStore()
    view = WatchedCluster(api, store)
    store.rayservice_changed(rayservice(1, "Running", spec="v1"), deleted=False)
    applied = view.apply(rayservice(0, "", spec="v2"))  # the server makes it generation 1
    assert applied["metadata"]["generation"] == 1
    api.apply(rayservice(0, "", spec="v3"))
    newer = view.apply(rayservice(0, "", spec="v4"))  # generation 3 after v3
    store.rayservice_changed(rayservice(2, "Running", spec="v3"), deleted=False)  # late event
    got = view.get_rayservice("ns", "m")
    assert got is not None
    assert got["spec"] == newer["spec"] == {"serveConfigV2": "v4"}
    store.rayservice_changed(rayservice(3, "Upgrading", spec="v4"), deleted=False)
    got = view.get_rayservice("ns", "m")
    assert got is not None
    assert got["status"] == {"serviceStatus": "Upgrading"}
