"""Operator killed mid-reconcile and restarted: it converges, no duplicate child, no lost status."""

from __future__ import annotations

import yaml

from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .test_llmdeployment import GROUP, PLURAL, READY, VERSION, condition, kubectl, small

COUNT = 6


def test_killed_operator_restarts_and_converges(
    cluster: E2ECluster, namespace: str, kubellm_operator: OperatorProcess
) -> None:
    names = [f"m{i}" for i in range(COUNT)]
    documents = yaml.safe_dump_all([small(n) for n in names])
    result = kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=documents)
    assert result.returncode == 0, result.stderr

    # Kill it as soon as it has started on them: some children exist, others not yet.
    wait_for(
        lambda: cluster.custom.list_namespaced_custom_object(
            "ray.io", "v1", namespace, "rayservices"
        )["items"],
        lambda items: len(items) >= 1,
        timeout=60,
        what="the operator to create a first RayService",
    )
    kubellm_operator.kill()
    kubellm_operator.start()

    def llmds() -> list[dict]:
        return list(
            cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        )

    converged = wait_for(
        llmds,
        lambda items: (
            len(items) == COUNT
            and all(condition(o, "Ready").get("status") == "True" for o in items)
        ),
        timeout=READY * 2,
        what=f"all {COUNT} LLMDeployments Ready after the restart",
    )
    rayservices = cluster.custom.list_namespaced_custom_object(
        "ray.io", "v1", namespace, "rayservices"
    )["items"]
    assert sorted(r["metadata"]["name"] for r in rayservices) == names  # one child each
    rayclusters = cluster.custom.list_namespaced_custom_object(
        "ray.io", "v1", namespace, "rayclusters"
    )["items"]
    assert len(rayclusters) == COUNT
    for obj in converged:
        status = obj["status"]
        assert status["observedGeneration"] == obj["metadata"]["generation"]
        assert {c["type"] for c in status["conditions"]} == {
            "Ready",
            "Reconciling",
            "Stalled",
            "RayClusterReady",
            "ServeReady",
            "AdaptersReady",
        }
        assert status["endpoint"]
