"""Kopf handlers without a cluster: status written through the patch, errors as Kopf expects."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from kubellm_operator import handlers
from kubellm_operator.kube import KubeError

from .test_service import MemoryCluster


def body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> kopf.Body:
    raw = {
        "apiVersion": "kubellm.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {
            "name": "m",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "creationTimestamp": "2026-11-22T10:00:00Z",
        },
        "spec": spec,
        "status": status or {},
    }
    return kopf.Body(raw)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    posted: list[dict[str, str]] = []
    monkeypatch.setattr(
        handlers,
        "post_event",
        lambda obj, *, type, reason, message: posted.append(
            {"type": type, "reason": reason, "message": message}
        ),
    )
    return posted


def memo(cluster: Any) -> kopf.Memo:
    m = kopf.Memo()
    m["cluster"] = cluster
    return m


SPEC = {"model": {"uri": "hf://a/b"}}


def test_create_writes_the_child_and_the_status_through_the_patch(
    events: list[dict[str, str]],
) -> None:
    cluster = MemoryCluster()
    patch = kopf.Patch()
    handlers.reconcile(body=body(SPEC), patch=patch, memo=memo(cluster), reason="create")
    assert ("ns", "m") in cluster.rayservices
    status = patch["status"]
    assert status["phase"] == "Deploying"
    assert status["endpoint"] is None  # cleared explicitly in the merge patch
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "RayClusterReady",
        "ServeReady",
        "AdaptersReady",
    }
    assert {e["reason"] for e in events} >= {"ClusterStarting", "NotDeployed"}


def test_an_unchanged_status_is_not_written_again(events: list[dict[str, str]]) -> None:
    cluster = MemoryCluster()
    first = kopf.Patch()
    handlers.reconcile(body=body(SPEC), patch=first, memo=memo(cluster), reason="create")
    written = {k: v for k, v in first["status"].items() if v is not None}
    again = kopf.Patch()
    handlers.reconcile(body=body(SPEC, written), patch=again, memo=memo(cluster), reason="resume")
    assert "status" not in again
    assert cluster.writes == 1  # the RayService, once


def test_an_invalid_spec_is_permanent_and_visible_on_the_object(
    events: list[dict[str, str]],
) -> None:
    cluster = MemoryCluster()
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match=r"spec\.replicas"):
        handlers.reconcile(
            body=body({**SPEC, "replicas": -5}), patch=patch, memo=memo(cluster), reason="create"
        )
    (ready,) = patch["status"]["conditions"]
    assert (ready["reason"], ready["status"]) == ("InvalidSpec", "False")
    assert cluster.rayservices == {}
    assert events == [
        {"type": "Warning", "reason": "InvalidSpec", "message": f"Ready: {ready['message']}"}
    ]


class FailingCluster(MemoryCluster):
    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        raise KubeError(self.status, "boom")


def test_api_conflicts_and_server_errors_are_retried(events: list[dict[str, str]]) -> None:
    for status in (409, 429, 500, 503):
        with pytest.raises(kopf.TemporaryError):
            handlers.reconcile(
                body=body(SPEC),
                patch=kopf.Patch(),
                memo=memo(FailingCluster(status)),
                reason="create",
            )


def test_a_forbidden_write_is_permanent(events: list[dict[str, str]]) -> None:
    with pytest.raises(kopf.PermanentError, match="403"):
        handlers.reconcile(
            body=body(SPEC), patch=kopf.Patch(), memo=memo(FailingCluster(403)), reason="create"
        )


def test_only_unschedulable_ray_pods_trigger_a_resync() -> None:
    refused = {
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    }
    placed = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    assert handlers._unschedulable(status=refused)
    assert not handlers._unschedulable(status=placed)
