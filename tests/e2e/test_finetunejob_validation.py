"""Bad FineTuneJobs are refused by `kubectl apply` itself, with the field and the rule named;
the training inputs of an existing job cannot be changed, while suspend can."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from .conftest import E2ECluster
from .refusals import assert_refused, bad
from .test_llmdeployment import GROUP, VERSION, kubectl

PLURAL = "finetunejobs"


def manifest(**spec: Any) -> dict[str, Any]:
    base = {
        "baseModel": {"uri": "pvc://models/smollm2"},
        "dataset": {"uri": "pvc://data/train.jsonl", "format": "instruction"},
        "output": {"uri": "pvc://adapters/out"},
    }
    return bad("FineTuneJob", {**base, **spec})


INVALID = [
    (
        "dataset-claim-name",
        manifest(dataset={"uri": "pvc://Training_Data/x.jsonl", "format": "text"}),
        ["spec.dataset.uri", "pvc:// claim name"],
    ),
    (
        "output-bucket-name",
        manifest(output={"uri": "s3://ab/adapters"}),
        ["spec.output.uri", "s3:// bucket name must be 3-63"],
    ),
    (
        "dataset-format",
        manifest(dataset={"uri": "pvc://data/x.jsonl", "format": "csv"}),
        ["spec.dataset.format", "Unsupported value", '"text", "instruction", "chat"'],
    ),
    (
        "dataset-scheme",
        manifest(dataset={"uri": "ftp://host/train.jsonl"}),
        ["spec.dataset.uri", "should match"],
    ),
    (
        "dataset-dot-segment",
        manifest(dataset={"uri": "pvc://data/../../etc/passwd"}),
        ["spec.dataset.uri", "should match"],
    ),
    ("no-base-model", {**manifest(), "spec": {"dataset": {"uri": "pvc://d/x"}}}, ["Required"]),
    (
        "output-to-hub",
        manifest(output={"uri": "hf://me/adapter"}),
        ["spec.output.uri", "not to a hub"],
    ),
    (
        "qlora-on-cpu",
        manifest(method="qlora", resources={"gpusPerWorker": 0}),
        ["spec.method", "qlora needs GPU workers"],
    ),
    (
        "fp16-and-bf16",
        manifest(hyperparameters={"fp16": True, "bf16": True}),
        ["spec.hyperparameters.bf16", "set at most one of fp16 and bf16"],
    ),
    (
        "lora-rank-zero",
        manifest(hyperparameters={"loraR": 0}),
        ["spec.hyperparameters.loraR", "greater than or equal to 1"],
    ),
    (
        "dropout-one",
        manifest(hyperparameters={"loraDropout": 1}),
        ["spec.hyperparameters.loraDropout", "less than 1"],
    ),
    (
        "unknown-hyperparameter",
        manifest(hyperparameters={"learningRat": 0.1}),
        ['unknown field "spec.hyperparameters.learningRat"'],
    ),
    ("method", manifest(method="full"), ["spec.method", "Unsupported value"]),
    ("workers-zero", manifest(resources={"workers": 0}), ["spec.resources.workers"]),
    (
        "negative-backoff",
        manifest(backoffLimit=-1),
        ["spec.backoffLimit", "greater than or equal to 0"],
    ),
    (
        "deploy-to-name",
        manifest(deployTo="Not_A_Name"),
        ["spec.deployTo", "should match"],
    ),
]


@pytest.mark.parametrize(("case", "obj", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_kubectl_apply_rejects_a_bad_finetunejob_with_the_field_and_rule(
    cluster: E2ECluster,
    kubellm_crds: None,
    scratch_namespace: str,
    case: str,
    obj: dict[str, Any],
    expected: list[str],
) -> None:
    assert_refused(cluster, scratch_namespace, PLURAL, obj, expected)


def test_the_training_inputs_of_a_job_cannot_change_but_suspend_can(
    cluster: E2ECluster, kubellm_crds: None, scratch_namespace: str
) -> None:
    # The API server's transition rules decide, whether or not the operator acts on it.
    job = manifest(suspend=True)
    job["metadata"]["name"] = "fixed"

    def apply(obj: dict[str, Any]) -> Any:
        return kubectl(
            cluster, "apply", "-n", scratch_namespace, "-f", "-", input=yaml.safe_dump(obj)
        )

    assert apply(job).returncode == 0
    try:
        changed = manifest(suspend=True, hyperparameters={"learningRate": 0.01})
        changed["metadata"]["name"] = "fixed"
        refused = apply(changed)
        assert refused.returncode != 0
        assert "spec.hyperparameters" in refused.stderr
        assert "cannot change once the job exists" in refused.stderr
        resumed = manifest(suspend=False)
        resumed["metadata"]["name"] = "fixed"
        assert apply(resumed).returncode == 0
        found = cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, scratch_namespace, PLURAL, "fixed"
        )
        assert found["spec"]["suspend"] is False
    finally:
        cluster.custom.delete_namespaced_custom_object(
            GROUP, VERSION, scratch_namespace, PLURAL, "fixed"
        )
