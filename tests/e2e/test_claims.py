"""A PersistentVolumeClaim a spec names that does not exist yet: the object says so, naming the
claim and the field, and nothing is created (no Ray cluster that could never start); once the
user creates the claim, the operator goes on by itself."""

from __future__ import annotations

from typing import Any

import yaml

from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.waiting import wait_for

from .conftest import REPO, E2ECluster
from .test_llmdeployment import GROUP, VERSION, condition, get_llmd, provide_claims, small

# The operator looks again every claim_recheck_s (15 s by default), plus a reconcile's time.
NOTICED = 60.0


def _rayservices(cluster: E2ECluster, namespace: str) -> list[dict[str, Any]]:
    found = cluster.custom.list_namespaced_custom_object("ray.io", "v1", namespace, "rayservices")
    return list(found["items"])


def test_a_deployment_waits_for_its_claim_naming_it_then_starts_once_it_exists(
    cluster: E2ECluster, namespace: str, kubellm_operator: OperatorProcess
) -> None:
    doc = small("late", model={"uri": "pvc://late-models/qwen"})
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "llmdeployments", doc)
    waiting = wait_for(
        lambda: get_llmd(cluster, namespace, "late"),
        lambda o: condition(o, "Ready").get("reason") == "ClaimNotFound",
        timeout=NOTICED,
        what="Ready=False reason ClaimNotFound",
    )
    ready = condition(waiting, "Ready")
    assert ready["status"] == "False"
    assert "late-models (spec.model.uri) not found" in ready["message"]
    assert condition(waiting, "Reconciling")["status"] == "True"  # not a failure: it waits
    assert waiting["status"]["phase"] == "Pending"
    assert _rayservices(cluster, namespace) == []

    provide_claims(cluster, namespace, doc["spec"])
    (created,) = wait_for(
        lambda: _rayservices(cluster, namespace),
        lambda found: len(found) == 1,
        timeout=NOTICED,
        what="the RayService once the claim exists",
    )
    (workers,) = created["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    volumes = workers["template"]["spec"]["volumes"]  # the model replicas mount it
    claims = [
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    ]
    assert claims == ["late-models"]
    wait_for(
        lambda: condition(get_llmd(cluster, namespace, "late"), "Ready").get("reason"),
        lambda reason: reason != "ClaimNotFound",
        timeout=NOTICED,
        what="the ClaimNotFound condition to clear",
    )


def test_a_finetunejob_waits_for_its_claim_naming_it_then_runs_once_it_exists(
    cluster: E2ECluster, namespace: str, kubellm_operator: OperatorProcess
) -> None:
    doc = yaml.safe_load((REPO / "examples" / "finetunejobs" / "tiny-cpu.yaml").read_text())
    doc["metadata"] = {"name": "late"}
    custom = cluster.custom

    def job() -> dict[str, Any]:
        return dict(
            custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "finetunejobs", "late")
        )

    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "finetunejobs", doc)
    waiting = wait_for(
        job,
        lambda o: "not found" in (o.get("status") or {}).get("message", ""),
        timeout=NOTICED,
        what="the job to say its claim is missing",
    )
    assert waiting["status"]["phase"] == "Pending"
    assert (
        "PersistentVolumeClaim models (spec.baseModel.uri) not found"
        in waiting["status"]["message"]
    )
    rayjobs = custom.list_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs")["items"]
    assert rayjobs == []
    assert "rayJobName" not in waiting["status"]  # none was made
    accounts = cluster.core.list_namespaced_service_account(namespace).items
    assert "late-trainer" not in {a.metadata.name for a in accounts}

    provide_claims(cluster, namespace, doc["spec"])
    wait_for(
        lambda: custom.list_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs")["items"],
        lambda found: len(found) == 1,
        timeout=NOTICED,
        what="the RayJob once the claim exists",
    )
    started = wait_for(
        job,
        lambda o: bool((o.get("status") or {}).get("rayJobName")),
        timeout=NOTICED,
        what="the job to name its RayJob",
    )
    assert "not found" not in started["status"].get("message", "")
