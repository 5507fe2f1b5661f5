"""Bad LLMDeployments are refused by `kubectl apply` itself, with the field and the rule named.

And what slips past an older, permissive schema is caught by the operator: Ready=False,
reason InvalidSpec, the field named, no child created.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.waiting import wait_for
from tests.unit.operator.api.test_sources import ACCEPTED, REFUSED

from .conftest import REPO, E2ECluster
from .refusals import assert_refused, bad
from .test_llmdeployment import PLURAL, condition, get_llmd, kubectl


def manifest(**spec: Any) -> dict[str, Any]:
    base = {"model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}}
    return bad("LLMDeployment", {**base, **spec})


INVALID = [
    ("uri-scheme", manifest(model={"uri": "ftp://host/model"}), ["spec.model.uri", "should match"]),
    (
        "uri-dot-segment",
        manifest(model={"uri": "s3://bucket/models/../../../etc"}),
        ["spec.model.uri", "should match"],
    ),
    (
        "adapter-source-escape",
        manifest(adapterSources=["pvc://claim/adapters/.."]),
        ["spec.adapterSources[0]", "should match"],
    ),
    ("no-model", {**manifest(), "spec": {"replicas": 1}}, ["spec.model", "Required value"]),
    ("unknown-field", manifest(replicaz=2), ['unknown field "spec.replicaz"']),
    ("negative-replicas", manifest(replicas=-1), ["spec.replicas", "greater than or equal to 0"]),
    (
        "gpus-not-multiple-of-tp",
        manifest(resources={"gpusPerReplica": 3, "tensorParallelSize": 2}),
        ["spec.resources.gpusPerReplica", "must be a multiple of tensorParallelSize"],
    ),
    (
        "gpus-not-tp-times-pp",
        manifest(resources={"gpusPerReplica": 4, "tensorParallelSize": 2}),
        ["spec.resources.gpusPerReplica", "must equal tensorParallelSize * pipelineParallelSize"],
    ),
    (
        "cpu-only-with-tp",
        manifest(resources={"gpusPerReplica": 0, "tensorParallelSize": 2}),
        ["spec.resources.gpusPerReplica", "CPU-only replica"],
    ),
    (
        "transformers-with-tp",
        manifest(
            engine={"backend": "transformers"},
            resources={"gpusPerReplica": 2, "tensorParallelSize": 2},
        ),
        ["spec.engine.backend", "transformers backend serves without tensor"],
    ),
    (
        "adapters-without-lora",
        manifest(enableLora=False, adapters=[{"name": "a", "uri": "file:///a"}]),
        ["spec.enableLora", "adapters need LoRA"],
    ),
    (
        "min-over-max",
        manifest(autoscaling={"minReplicas": 3, "maxReplicas": 2}, replicas=3),
        ["spec.autoscaling.minReplicas", "minReplicas must be less than or equal to maxReplicas"],
    ),
    (
        "replicas-outside-autoscaling",
        manifest(autoscaling={"minReplicas": 2, "maxReplicas": 4}, replicas=1),
        ["spec.replicas", "must lie between minReplicas and maxReplicas"],
    ),
    (
        "duplicate-adapters",
        manifest(
            adapters=[
                {"name": "a", "uri": "s3://bucket-b/a"},
                {"name": "a", "uri": "s3://bucket-b/c"},
            ]
        ),
        ["spec.adapters", "adapter names must be unique"],
    ),
    (
        "adapter-two-sources",
        manifest(adapters=[{"name": "a", "uri": "s3://bucket-b/a", "fromFineTuneJob": "job"}]),
        ["spec.adapters[0]", "set exactly one of uri or fromFineTuneJob"],
    ),
    (
        "adapter-no-source",
        manifest(adapters=[{"name": "a"}]),
        ["spec.adapters[0]", "set exactly one of uri or fromFineTuneJob"],
    ),
    (
        "gpu-memory-over-1",
        manifest(engine={"gpuMemoryUtilization": 1.5}),
        ["spec.engine.gpuMemoryUtilization", "less than or equal to 1"],
    ),
    (
        "upgrade-strategy",
        manifest(upgradeStrategy="Rolling"),
        ["spec.upgradeStrategy", "Unsupported value"],
    ),
    (
        "dtype",
        manifest(model={"uri": "hf://a/b", "dtype": "int4"}),
        ["spec.model.dtype", "Unsupported value"],
    ),
    (
        "pool-name",
        manifest(placement={"nodePool": "A100_80GB"}),
        ["spec.placement.nodePool", "should match"],
    ),
    (
        "memory-quantity",
        manifest(resources={"memory": "lots"}),
        ["spec.resources.memory", "should match"],
    ),
    (
        "env-value-and-ref",
        manifest(
            env=[
                {
                    "name": "A",
                    "value": "1",
                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                }
            ]
        ),
        ["spec.env[0]", "set either value or valueFrom, not both"],
    ),
    (
        "extra-arg-key",
        manifest(engine={"extraArgs": {"Enforce Eager": "true"}}),
        ["spec.engine.extraArgs", "keys must match"],
    ),
]


@pytest.mark.parametrize(("uri", "message"), REFUSED, ids=[uri[:40] for uri, _ in REFUSED])
def test_kubectl_apply_rejects_a_claim_or_bucket_its_store_would_refuse(
    cluster: E2ECluster, kubellm_crds: None, scratch_namespace: str, uri: str, message: str
) -> None:
    """The CEL twins of the operator's store rules (tests/unit/operator/api/test_sources.py)."""
    obj = manifest(model={"uri": uri}, adapterSources=[uri])
    expected = ["spec.model.uri", "spec.adapterSources[0]", message]
    assert_refused(cluster, scratch_namespace, PLURAL, obj, expected)


@pytest.mark.parametrize("uri", ACCEPTED, ids=[uri[:40] for uri in ACCEPTED])
def test_kubectl_apply_accepts_the_names_the_stores_accept(
    cluster: E2ECluster, kubellm_crds: None, scratch_namespace: str, uri: str
) -> None:
    obj = manifest(model={"uri": uri}, adapterSources=[uri])
    result = kubectl(
        cluster,
        *("apply", "--dry-run=server", "-n", scratch_namespace, "-f", "-"),
        input=yaml.safe_dump(obj),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("case", "obj", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_kubectl_apply_rejects_with_the_field_and_rule(
    cluster: E2ECluster,
    kubellm_crds: None,
    scratch_namespace: str,
    case: str,
    obj: dict[str, Any],
    expected: list[str],
) -> None:
    assert_refused(cluster, scratch_namespace, PLURAL, obj, expected)


@pytest.fixture
def permissive_crd(cluster: E2ECluster, kubellm_operator: OperatorProcess) -> Any:
    """An older CRD without our rules, as after a partial upgrade; the real one is restored."""
    path = REPO / "crds" / "kubellm.io_llmdeployments.yaml"
    strict = yaml.safe_load(path.read_text())
    loose = copy.deepcopy(strict)
    version = loose["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    version["additionalPrinterColumns"] = []
    del version["subresources"]["scale"]

    def apply(crd: dict[str, Any]) -> None:
        result = kubectl(
            cluster,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=yaml.safe_dump(crd),
        )
        assert result.returncode == 0, result.stderr

    apply(loose)
    try:
        yield
    finally:
        apply(strict)


def test_an_invalid_spec_that_slipped_past_the_schema_is_reported_and_creates_nothing(
    cluster: E2ECluster, namespace: str, permissive_crd: Any
) -> None:
    obj = manifest(resources={"gpusPerReplica": 3, "tensorParallelSize": 2})
    result = kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))
    assert result.returncode == 0, result.stderr

    reported = wait_for(
        lambda: get_llmd(cluster, namespace, "bad"),
        lambda o: condition(o, "Ready").get("reason") == "InvalidSpec",
        timeout=60,
        what="Ready=False reason InvalidSpec",
    )
    ready = condition(reported, "Ready")
    assert ready["status"] == "False"
    assert "spec.resources.gpusPerReplica" in ready["message"]
    assert "multiple of tensorParallelSize" in ready["message"]
    assert reported["status"]["phase"] == "Failed"
    rayservices = cluster.custom.list_namespaced_custom_object(
        "ray.io", "v1", namespace, "rayservices"
    )
    assert rayservices["items"] == []
    # Events are posted in the background, after the status: poll for it with a deadline.
    wait_for(
        lambda: [
            e.message or "" for e in cluster.events_for(namespace, "bad") if e.type == "Warning"
        ],
        lambda messages: any("spec.resources.gpusPerReplica" in m for m in messages),
        timeout=30,
        what="a Warning event naming spec.resources.gpusPerReplica",
    )
